package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

func limitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "max-pixels", Value: data.DefaultMaxPixels, Category: "data",
			Usage: "refuse images whose header declares more pixels (decompression bombs; Pillow's limit), and network inputs larger than that"},
	}
}

// limits reads --max-pixels.
func limits(c *cli.Context) (data.Limits, error) {
	n := c.Int64("max-pixels")
	if n < 1 {
		return data.Limits{}, usagef("--max-pixels", "must be at least 1, got %d", n)
	}
	return data.Limits{MaxPixels: n}, nil
}

// dataFolder is a folder of image/mask pairs that a command reads, and its role there.
type dataFolder struct{ role, dir string }

// checkedFolder is a folder after the pre-flight check: its usable pairs and, one line each,
// the samples that cannot be used.
type checkedFolder struct {
	dataFolder
	ds       *data.Dataset
	problems []string
	ignored  int
}

// preflight lists every folder and checks every file's header — regular file, size, format,
// pixel limit, pairing, mask size — before any work starts, so that bad files are found
// together and at once rather than one per run, mid-epoch or after training (issue 9, case 6).
// It fails only when a folder cannot be listed (a missing one exits 66) or has no usable pair;
// bad samples are returned for the caller to refuse or leave out.
func preflight(ctx context.Context, folders []dataFolder, lim data.Limits, workers int) ([]*checkedFolder, error) {
	var out []*checkedFolder
	for _, f := range folders {
		cf := &checkedFolder{dataFolder: f}
		ds, rep, err := data.List(f.dir, data.ListOptions{SkipBad: true})
		if rep != nil {
			cf.ignored = len(rep.Ignored)
			for _, p := range rep.OrphanImages {
				cf.problems = append(cf.problems, p+": image without mask")
			}
			for _, p := range rep.OrphanMasks {
				cf.problems = append(cf.problems, p+": mask without image")
			}
			for _, p := range rep.Duplicates {
				cf.problems = append(cf.problems, "ambiguous name "+p)
			}
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s folder: %w", f.role, err)
			}
			return nil, dataErr(fmt.Errorf("%s folder: %w%s", f.role, err, listing(cf.problems)))
		}
		good, bad, err := data.CheckHeaders(ctx, ds, lim, workers)
		if err != nil {
			return nil, err
		}
		for _, e := range bad {
			cf.problems = append(cf.problems, strings.TrimPrefix(e.Error(), "data: "))
		}
		if len(good.Pairs) == 0 {
			return nil, dataErr(fmt.Errorf("%s folder %s: no usable image/mask pair%s", f.role, f.dir, listing(cf.problems)))
		}
		cf.ds = good
		out = append(out, cf)
	}
	return out, nil
}

// problemList is every folder's problems as one indented list, and their number.
func problemList(cs []*checkedFolder) (int, string) {
	n := 0
	var b strings.Builder
	for _, c := range cs {
		for _, p := range c.problems {
			fmt.Fprintf(&b, "\n  %s: %s", c.role, p)
		}
		n += len(c.problems)
	}
	return n, b.String()
}

func listing(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\n  " + strings.Join(lines, "\n  ")
}
