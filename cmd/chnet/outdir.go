package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// defaultOut is where test and predict write when --out is not given: beside the checkpoint,
// never into the current directory (issue 11, point 9). A checkpoint in a run folder (one with
// config.json) writes into that run folder, as OUT/<kind>-<which> (test-best, predictions-final);
// any other file beside itself, as <kind>-<file name>.
func defaultOut(model, kind string) string {
	dir := filepath.Dir(model)
	stem := strings.TrimSuffix(filepath.Base(model), filepath.Ext(model))
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		stem = strings.TrimPrefix(stem, "checkpoint_")
	}
	return filepath.Join(dir, kind+"-"+stem)
}

// outFolder is the --out of test or predict: the flag, else defaultOut, announced.
func outFolder(c *cli.Context, kind string) string {
	if c.IsSet("out") {
		return c.String("out")
	}
	out := defaultOut(c.StringSlice("model")[0], kind)
	if n := len(c.StringSlice("model")); n > 1 {
		out += fmt.Sprintf("-ensemble%d", n)
	}
	fmt.Fprintf(c.App.ErrWriter, "chnet: writing to %s (choose another folder with --out)\n", out)
	return out
}

// refuseOverwrite refuses to replace earlier outputs unless --force is given: existing lists
// the files or folders that would be replaced.
func refuseOverwrite(c *cli.Context, out string, existing []string) error {
	if len(existing) == 0 || c.Bool("force") {
		return nil
	}
	eg := existing[0]
	if len(existing) > 1 {
		eg = fmt.Sprintf("%s and %d more", eg, len(existing)-1)
	}
	return usagef("--out", "%s already holds results that would be replaced (%s); pass --force to replace them, or choose another --out", out, eg)
}

func forceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace the results already in --out"}
}
