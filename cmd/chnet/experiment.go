package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/experiment"
	"github.com/urfave/cli/v2"
)

// experimentGroups are names that stand for several experiments.
var experimentGroups = map[string][]string{"lung": {"table1", "table6", "decoupling"}}

func experimentCommand() *cli.Command {
	var list []string
	for _, e := range experiment.Experiments() {
		list = append(list, fmt.Sprintf("  %-11s %s", e.Name, e.Title))
	}
	return &cli.Command{
		Name:      "experiment",
		Usage:     "run the paper's experiments (Tables 1, 3/4, 6, the decoupling study) as sets of training runs",
		ArgsUsage: "NAME...",
		Description: `Experiments:
` + strings.Join(list, "\n") + `
  lung        table1, table6 and decoupling together, sharing the runs they have in common

Each run is an ordinary chnet train run folder in OUT/runs/<run>/seed<k>, named by what it
trains, so experiments run into the same --out share runs (Table 1's CHNet is Table 6's
1×1 row and the decoupling study's end-to-end CHNet). Finished runs are skipped and
interrupted ones resumed: after Ctrl-C or a crash, the same command continues. Each
experiment writes OUT/<name>/summary.md and summary.json — the paper's table layout, ours
beside the paper's figures, mean ± std over --seeds, every departure from the paper's recipe
listed — and the decoupling study its Fig. 3/4 panels as decoupling.png.

The defaults are the paper's recipe (352 px, batch 16, lung 200 / polyp 50 epochs, every
image) on ../shared/data (or $CHNET_SHARED/data): covid for the lung experiments, the PraNet
polyp split for polyp, tested on CVC-ClinicDB and Kvasir. For a CPU, scale it down, e.g.
  chnet --backend cpu experiment --size 176 --epochs 50 --frozen-epochs 30 --out runs/lung lung`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "experiment folder (default runs/experiments-<task>)"},
			&cli.StringFlag{Name: "data", Category: "data", Usage: "training folder (default: the paper's set in shared/data)"},
			&cli.StringSliceFlag{Name: "test", Category: "data", Usage: "test folders (repeatable; default: the paper's)"},
			&cli.IntFlag{Name: "limit", Category: "scale", Usage: "train on a seeded sample of at most this many images (0: all)"},
			&cli.IntFlag{Name: "test-limit", Category: "scale", Usage: "test on a seeded sample of at most this many images per test set (0: all)"},
			&cli.IntFlag{Name: "size", Value: experiment.PaperSize, Category: "scale", Usage: "image size; per-batch sizes scale with it"},
			&cli.IntFlag{Name: "epochs", Category: "scale", Usage: "epochs", DefaultText: "the paper's, lung 200, polyp 50"},
			&cli.IntFlag{Name: "frozen-epochs", Category: "scale", Usage: "epochs of the decoupling study's decoders on frozen backbones", DefaultText: "--epochs"},
			&cli.IntFlag{Name: "batch-size", Value: experiment.PaperBatch, Category: "scale", Usage: "images per batch"},
			&cli.IntFlag{Name: "seeds", Value: 1, Category: "scale", Usage: "runs per network with seeds 0..N-1; summaries give mean ± std"},
			&cli.Float64Flag{Name: "val-fraction", Category: "scale", Usage: "hold out a share of the training images for per-epoch validation (paper: 0)"},
			&cli.StringSliceFlag{Name: "archs", Category: "runs", Usage: "networks of table1 and polyp, and of the decoupling study among chnet, unet, attunet, fcn (default: every one of the paper's tables, and FCN-32s)"},
			&cli.IntSliceFlag{Name: "head-widths", Category: "runs", Usage: "CHNet head widths of table6 (default 32,128: the released code's and the paper's)"},
			&cli.StringFlag{Name: "backbone-weights", Category: "runs", Usage: "ImageNet Res2Net-50 weights for every backbone (the paper's); adds Fig. 4(b)'s ImageNet backbone"},
			&cli.StringFlag{Name: "convention", Value: "matlab", Category: "evaluation", Usage: "metric convention: matlab (PraNet's toolbox), pysod or chnet"},
			&cli.IntFlag{Name: "workers", Category: "runs", Usage: "data-loading goroutines per run", DefaultText: "one per core"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print each run's state and the command that would continue it; train nothing"},
			&cli.BoolFlag{Name: "summary-only", Usage: "write the summaries from the runs on disk, under the settings --out was started with; train nothing"},
		},
		Action: experimentAction,
	}
}

func experimentAction(c *cli.Context) error {
	if err := flagsAfterArgs(c); err != nil {
		return err
	}
	exps, err := experimentsNamed(c.Args().Slice())
	if err != nil {
		return err
	}
	task := exps[0].Task
	s := experiment.Defaults(task)
	s.Size, s.BatchSize, s.Seeds = c.Int("size"), c.Int("batch-size"), c.Int("seeds")
	s.Limit, s.TestLimit, s.ValFraction = c.Int("limit"), c.Int("test-limit"), c.Float64("val-fraction")
	s.Convention, s.BackboneWeights, s.Workers = c.String("convention"), c.String("backbone-weights"), c.Int("workers")
	if c.IsSet("epochs") {
		s.Epochs = c.Int("epochs")
	}
	s.FrozenEpochs = c.Int("frozen-epochs")
	if c.IsSet("archs") {
		s.Archs = nil
		for _, a := range c.StringSlice("archs") {
			for _, a := range strings.Split(a, ",") {
				if !slices.Contains(zoo.Archs(), a) {
					return usagef("--archs", "unknown network %q (have %s)", a, strings.Join(zoo.Archs(), ", "))
				}
				s.Archs = append(s.Archs, a)
			}
		}
	}
	if c.IsSet("head-widths") {
		s.HeadWidths = c.IntSlice("head-widths")
	}
	if err := experimentData(c, exps[0].Dataset, &s); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return usageErr(err)
	}
	if s.BackboneWeights != "" {
		if _, err := os.Stat(s.BackboneWeights); err != nil {
			return fmt.Errorf("--backbone-weights: %w", err)
		}
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join("runs", "experiments-"+task)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the chnet binary to start runs with: %w", err)
	}
	global := []string{"--backend", globalString(c, "backend")}
	if d := globalString(c, "device"); d != "" {
		global = append(global, "--device", d)
	}
	log := c.App.ErrWriter
	if c.Bool("dry-run") {
		log = c.App.Writer
	}
	ctx, stop := signalContext(c.Context, c.App.ErrWriter)
	defer stop()
	oc, err := experiment.Run(ctx, exps, experiment.Options{
		Out: out, Settings: s, Log: log, DryRun: c.Bool("dry-run"), SummaryOnly: c.Bool("summary-only"),
		Launcher: &experiment.Exec{Path: self, Global: global, Stdout: c.App.ErrWriter, Stderr: c.App.ErrWriter},
	})
	switch {
	case errors.Is(err, experiment.ErrSettingsDiffer):
		err = usagef("--out", "%v", err)
	case errors.Is(err, experiment.ErrRejected):
		err = usageErr(err)
	}
	if oc != nil && !c.Bool("dry-run") {
		for _, sum := range oc.Summaries {
			fmt.Fprintf(c.App.Writer, "%s\n", sum.Markdown())
			fmt.Fprintf(c.App.ErrWriter, "chnet: %s summary: %s\n", sum.Experiment, filepath.Join(out, sum.Experiment, "summary.md"))
		}
	}
	return err
}

// experimentsNamed resolves the command's arguments, which must all score the same task.
func experimentsNamed(names []string) ([]*experiment.Experiment, error) {
	if len(names) == 0 {
		return nil, usageErr(fmt.Errorf("name an experiment: table1, table6, decoupling, polyp, or lung (the three lung ones)"))
	}
	var exps []*experiment.Experiment
	for _, n := range names {
		group, ok := experimentGroups[n]
		if !ok {
			group = []string{n}
		}
		for _, g := range group {
			e, err := experiment.Lookup(g)
			if err != nil {
				return nil, usageErr(err)
			}
			if !slices.ContainsFunc(exps, func(o *experiment.Experiment) bool { return o.Name == e.Name }) {
				exps = append(exps, e)
			}
		}
	}
	for _, e := range exps[1:] {
		if e.Dataset != exps[0].Dataset {
			return nil, usageErr(fmt.Errorf("%s trains on %s data and %s on %s: run them separately, into different --out folders", exps[0].Name, exps[0].Dataset, e.Name, e.Dataset))
		}
	}
	return exps, nil
}

// experimentData fills in the training and test folders: the flags', or the paper's data sets
// in the shared folder.
func experimentData(c *cli.Context, dataset string, s *experiment.Settings) error {
	s.Data, s.Test = c.String("data"), c.StringSlice("test")
	if s.Data != "" && len(s.Test) > 0 {
		return nil
	}
	root := filepath.Join("..", "shared", "data")
	if d := os.Getenv("CHNET_SHARED"); d != "" {
		root = filepath.Join(d, "data")
	}
	base := filepath.Join(root, dataset)
	if s.Data == "" {
		s.Data = filepath.Join(base, "train")
	}
	if len(s.Test) == 0 {
		switch dataset {
		case "polyp":
			s.Test = []string{filepath.Join(base, "test", "CVC-ClinicDB"), filepath.Join(base, "test", "Kvasir")}
		default:
			s.Test = []string{filepath.Join(base, "test")}
		}
	}
	for _, d := range append([]string{s.Data}, s.Test...) {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("%s (the paper's %s data; give --data and --test, or set CHNET_SHARED): %w", d, dataset, err)
		}
	}
	return nil
}
