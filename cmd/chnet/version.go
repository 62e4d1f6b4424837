package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/chnet/chnet/ops"
	"github.com/urfave/cli/v2"
)

// version reports the module version and VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev
		if dirty {
			v += "-dirty"
		}
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, Go version, build settings and compiled backends",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "chnet %s\n%s %s/%s\nbackends: %v\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, ops.Registered())
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
