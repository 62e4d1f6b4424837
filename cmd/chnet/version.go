package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/chnet/chnet/ops"
	"github.com/urfave/cli/v2"
)

// vcsRevision is the git revision, set at link time (-ldflags "-X main.vcsRevision=REV[-dirty]",
// as `go tool task build` does) for builds that Go cannot stamp itself: Go records vcs.revision
// only when the module root holds a .git directory, so builds from a git worktree and with
// -buildvcs=false carry none.
var vcsRevision string

// version reports the module version and VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	return versionOf(info, ok, vcsRevision)
}

// versionOf formats a build's version: the module version (a checkout builds as "(devel)",
// printed "devel"), then the commit, "-dirty" if the tree had changes, and the commit's time.
func versionOf(info *debug.BuildInfo, ok bool, linked string) string {
	v, rev, when, dirty := "devel", "", "", false
	if ok {
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			v = mv
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev == "" && linked != "" {
		rev, dirty = strings.CutSuffix(linked, "-dirty")
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v += " " + rev
	if dirty {
		v += "-dirty"
	}
	if when != "" {
		v += " (" + when + ")"
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, Go version, build settings and compiled backends",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "chnet %s\n%s %s/%s\nbackends: %v\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, ops.Registered())
			if !strings.Contains(version(), " ") {
				fmt.Fprintln(c.App.Writer, "no commit recorded: build with `go tool task build`, or with go build from a git clone (not a worktree)")
			}
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "GOEXPERIMENT" || s.Key == "CGO_ENABLED" || s.Key == "GOAMD64" {
						fmt.Fprintf(c.App.Writer, "%s=%s\n", s.Key, s.Value)
					}
				}
			}
			return nil
		},
	}
}
