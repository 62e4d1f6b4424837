package main

import "github.com/urfave/cli/v2"

// Global flags (--backend, --device) belong to the app, so they are typed before the command:
// `chnet --backend cpu train`. Users type them after it just as often (`chnet train --backend
// cpu`), which urfave/cli would refuse with a "did you mean --backbone?" and the whole help, so
// every command also takes them. A value given after the command wins over one given before it.

// commandGlobalFlags are the command-level copies of the global flags: no default and no
// environment variable of their own, so that an unset copy defers to the app's flag.
func commandGlobalFlags() []cli.Flag {
	var fs []cli.Flag
	for _, f := range backendFlags() {
		sf := f.(*cli.StringFlag)
		fs = append(fs, &cli.StringFlag{Name: sf.Name, Category: sf.Category,
			Usage: "as the global --" + sf.Name + " (may be given before or after the command)"})
	}
	return fs
}

// addGlobalFlags gives every command in cmds, and their sub-commands, the global flags.
func addGlobalFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		c.Flags = append(c.Flags, commandGlobalFlags()...)
		addGlobalFlags(c.Subcommands)
	}
}

// globalString is the value of global flag name: the innermost command that was given it, else
// the app's flag (its environment variable, then its default).
func globalString(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && hasFlag(ctx.Command.Flags, name) {
			if v := ctx.String(name); v != "" {
				return v
			}
		}
	}
	return ""
}

func hasFlag(fs []cli.Flag, name string) bool {
	for _, f := range fs {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
