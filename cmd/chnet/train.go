package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/regfile"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

// Built-in demo data: small enough that `chnet train` with no flags trains, tests and writes
// predictions on a 2-core machine in a few minutes.
const (
	demoTrain, demoTest = 96, 24
	demoSize            = 144
	demoEpochs          = 8
	demoBatch           = 8
)

var demoSizes = []int{112, 128, 144}

func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "arch", Value: "chnet", Category: "model", Usage: "network: " + strings.Join(zoo.Archs(), ", ")},
		&cli.StringFlag{Name: "backbone", Value: "v1", Category: "model", Usage: "Res2Net-50 variant: v1 (CHNet's released code) or v1b (PraNet's, the paper's Table 5)"},
		&cli.IntFlag{Name: "head-width", Value: 32, Category: "model", Usage: "CHNet classifier width: 32 (released code) or 128 (paper)"},
		&cli.IntFlag{Name: "head-kernel", Value: 1, Category: "model", Usage: "CHNet head convolutions: 1 (paper) or 3 (Table 6 ablation)"},
		&cli.BoolFlag{Name: "literal-head", Category: "model", Usage: "run CHNet's head as written (upsample, concat, conv) instead of the equivalent factorized order"},
	}
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train a network (CHNet by default) with the official recipe",
		ArgsUsage: " ",
		Description: `Trains on --data (images/ and masks/ paired by base name, PraNet's image/ and
mask/, or nnU-Net's raw 2-D imagesTr/ and labelsTr/) with the released recipe: SGD nesterov
(momentum 0.9, weight decay 5e-4), lr on a per-epoch triangle rising linearly to 0.05 at
mid-run and back (the log prints this run's rates), the structure loss, flips, rotations in
[-10°, 10°) and per-batch sizes 224..352. A share of the data (--val-fraction) is held out and scored every epoch.

The run folder (--out) receives config.json, train.log, metrics.jsonl, progress.png,
splits.json and checkpoint_{latest,best,final}.safetensors; --resume continues it exactly,
and Ctrl-C saves the position first. With --folds K it runs K-fold cross-validation into
fold_0..fold_K-1 and reports mean ± std; --test then scores each fold's model and the K
together (their maps averaged, as nnU-Net's ensemble).

Without --data, chnet trains on a built-in synthetic polyp set for a few minutes, then tests
and writes predictions: a complete run of the main job on any machine.`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "data", Category: "data", Usage: "training folder: images/ and masks/, image/ and mask/, or nnU-Net's imagesTr/ and labelsTr/", DefaultText: "a built-in synthetic set"},
			&cli.StringFlag{Name: "val", Category: "data", Usage: "validation folder", DefaultText: "hold out --val-fraction of --data"},
			&cli.Float64Flag{Name: "val-fraction", Value: 0.1, Category: "data", Usage: "share of --data held out for validation (0: none)"},
			&cli.IntFlag{Name: "folds", Category: "data", Usage: "K-fold cross-validation over --data (as the paper does on BUSI)"},
			&cli.StringSliceFlag{Name: "test", Category: "data", Usage: "test folders to score after training (repeatable)"},
			&cli.BoolFlag{Name: "skip-bad", Category: "data", Usage: "leave out unreadable or unpaired samples (listed) instead of stopping"},
			&cli.IntFlag{Name: "limit", Category: "data", Usage: "train on a seeded sample of at most this many images of --data (a quick try; 0: all)"},
			&cli.IntFlag{Name: "workers", Category: "data", Usage: "data-loading goroutines", DefaultText: "one per core"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Category: "run", Usage: "run folder", DefaultText: "runs/<date-time>"},
			&cli.BoolFlag{Name: "resume", Category: "run", Usage: "continue the run in --out from checkpoint_latest"},
			&cli.IntFlag{Name: "save-every", Value: 1, Category: "run", Usage: "write checkpoint_latest every N epochs (and at the best and last epochs; Ctrl-C always saves); --resume goes back to it"},
			&cli.IntFlag{Name: "val-every", Value: 1, Category: "run", Usage: "validate every N epochs (and after the last)"},
			&cli.StringFlag{Name: "test-on", Value: "final", Category: "run", Usage: "checkpoint --test scores: final (the last epoch's) or best (the best validation Dice's; final without validation)"},
			&cli.IntFlag{Name: "epochs", Value: 50, Category: "recipe", Usage: "epochs (paper: polyp 50, breast 100, lung 200)"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Category: "recipe", Usage: "images per batch"},
			&cli.IntFlag{Name: "size", Value: 352, Category: "recipe", Usage: "base image size; validation and test run at it"},
			&cli.IntSliceFlag{Name: "sizes", Category: "recipe", Usage: "per-batch training sizes (default 224,256,288,320,352 scaled to --size)"},
			&cli.Float64Flag{Name: "lr", Value: 0.05, Category: "recipe", Usage: "top of the per-epoch triangular schedule: epoch e of E trains at lr·(1 − |2e/(E+1) − 1|), e = 1..E, rising linearly to the middle epoch and falling back (so lr itself is reached only when --epochs is odd; the log prints the schedule)"},
			&cli.Float64Flag{Name: "momentum", Value: 0.9, Category: "recipe", Usage: "SGD momentum (nesterov)"},
			&cli.Float64Flag{Name: "weight-decay", Value: 5e-4, Category: "recipe", Usage: "SGD weight decay (L2, added to the gradient)"},
			&cli.StringFlag{Name: "loss", Value: "official", Category: "recipe", Usage: "structure loss: official (global BCE + weighted IoU, as executed) or weighted (F3Net's pixel-weighted BCE)"},
			&cli.BoolFlag{Name: "no-augment", Category: "recipe", Usage: "disable flips and rotations"},
			&cli.Uint64Flag{Name: "seed", Value: 0, Category: "recipe", Usage: "seed for initialisation, splits, shuffling and augmentation"},
			&cli.StringFlag{Name: "backbone-weights", Category: "model", Usage: "ImageNet Res2Net weights (.pth or .safetensors) for the backbone"},
			&cli.StringFlag{Name: "init-from", Category: "model", Usage: "initialise the backbone from another trained checkpoint (decoupling study)"},
			&cli.BoolFlag{Name: "freeze-backbone", Category: "model", Usage: "train only the decoder; the backbone keeps its weights and statistics"},
		}, modelFlags()...), append(append(testOutputFlags(), ttaFlag()), limitFlags()...)...),
		Action: trainAction,
	}
}

// runConfig is the effective configuration of a run, written to config.json.
type runConfig struct {
	Model      zoo.Spec     `json:"model"`
	Recipe     train.Config `json:"recipe"`
	Data       string       `json:"data"`
	Val        string       `json:"val,omitempty"`
	Test       []string     `json:"test,omitempty"`
	BatchSize  int          `json:"batch_size"`
	Size       int          `json:"size"`
	Sizes      []int        `json:"sizes"`
	Augment    bool         `json:"augment"`
	Seed       uint64       `json:"seed"`
	Backbone   string       `json:"backbone_weights,omitempty"`
	InitFrom   string       `json:"init_from,omitempty"`
	Freeze     bool         `json:"freeze_backbone,omitempty"`
	Folds      int          `json:"folds,omitempty"`
	Limit      int          `json:"limit,omitempty"`
	ValFrac    float64      `json:"val_fraction"`
	Backend    string       `json:"backend"`
	Version    string       `json:"chnet_version"`
	BuiltinSet bool         `json:"builtin_data,omitempty"`
}

func modelSpec(c *cli.Context) (zoo.Spec, error) {
	s := zoo.Spec{Arch: c.String("arch"), Backbone: c.String("backbone"), HeadWidth: c.Int("head-width"),
		HeadKernel: c.Int("head-kernel"), Factorized: !c.Bool("literal-head") && c.Int("head-kernel") == 1}
	if s.Arch == "chnet" {
		cfg := chnet.Config{Backbone: nn.Res2NetVariant(s.Backbone), HeadWidth: s.HeadWidth, HeadKernel: s.HeadKernel, Factorized: s.Factorized}
		if err := cfg.Validate(); err != nil {
			return s, usageErr(err)
		}
	}
	known := false
	for _, a := range zoo.Archs() {
		known = known || a == s.Arch
	}
	if !known {
		return s, usagef("--arch", "unknown network %q (have %s)", s.Arch, strings.Join(zoo.Archs(), ", "))
	}
	if s.HeadWidth > zoo.MaxHeadWidth {
		return s, usagef("--head-width", "must be at most %d, got %d", zoo.MaxHeadWidth, s.HeadWidth)
	}
	if err := s.Validate(); err != nil {
		return s, usageErr(err)
	}
	return s, nil
}

func trainAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr(fmt.Errorf("unexpected argument %q (folders are given with --data, --val, --test)", c.Args().First()))
	}
	if _, err := backendName(c); err != nil {
		return err
	}
	spec, err := modelSpec(c)
	if err != nil {
		return err
	}
	rc := runConfig{
		Model: spec, Data: c.String("data"), Val: c.String("val"), Test: c.StringSlice("test"),
		BatchSize: c.Int("batch-size"), Size: c.Int("size"), Sizes: c.IntSlice("sizes"), Augment: !c.Bool("no-augment"),
		Seed: c.Uint64("seed"), Backbone: c.String("backbone-weights"), InitFrom: c.String("init-from"),
		Freeze: c.Bool("freeze-backbone"), Folds: c.Int("folds"), ValFrac: c.Float64("val-fraction"), Version: version(),
		Limit: c.Int("limit"),
	}
	rc.Recipe = train.OfficialConfig(c.Int("epochs"))
	rc.Recipe.LR, rc.Recipe.Momentum, rc.Recipe.WeightDecay = c.Float64("lr"), c.Float64("momentum"), c.Float64("weight-decay")
	rc.Recipe.SaveEvery, rc.Recipe.ValEvery = c.Int("save-every"), c.Int("val-every")
	for _, f := range []string{"save-every", "val-every"} {
		if c.Int(f) < 1 {
			return usagef("--"+f, "must be at least 1, got %d", c.Int(f))
		}
	}
	if t := c.String("test-on"); t != "final" && t != "best" {
		return usagef("--test-on", "must be final or best, got %q", t)
	}
	switch c.String("loss") {
	case "official":
	case "weighted":
		rc.Recipe.Loss = ops.StructureLossWeighted
	default:
		return usagef("--loss", "must be official or weighted, got %q", c.String("loss"))
	}
	out := c.String("out")
	if out == "" {
		if c.Bool("resume") {
			return usagef("--resume", "needs --out naming the run folder to continue")
		}
		out = filepath.Join("runs", time.Now().Format("20060102-150405"))
	}
	lim, err := limits(c)
	if err != nil {
		return err
	}
	resume := c.Bool("resume")
	builtin := !resume && rc.Data == ""
	if !resume {
		if builtin {
			useBuiltinData(c, &rc, out)
		}
		if err := resolvePaths(&rc); err != nil {
			return err
		}
		if err := checkRecipe(&rc, lim.MaxPixels); err != nil {
			return err
		}
		rc.Model.InputSize = rc.Size
		if err := train.EnsureDir(out); err != nil {
			return err
		}
	} else if _, err := os.Stat(out); err != nil {
		return usagef("--resume", "nothing to resume: %v", err)
	}
	// From here on the run folder is this process's alone: a second run on it is refused.
	release, temps, err := claimFolder(out, "--out", 3)
	if err != nil {
		return err
	}
	defer release()
	if resume {
		// A resumed run keeps its recorded configuration; a flag set to something else would
		// silently change the run, so it is refused.
		saved, err := readRunConfig(filepath.Join(out, "config.json"), lim.MaxPixels)
		if err != nil {
			return err
		}
		if err := sameRun(c, rc, saved); err != nil {
			return err
		}
		if saved.BuiltinSet {
			// The generated set lives in the run folder, wherever that is now.
			saved.Data = filepath.Join(out, "builtin", "train")
			for i, d := range saved.Test {
				if strings.HasSuffix(filepath.ToSlash(d), "/builtin/test") || d == filepath.Join("builtin", "test") {
					saved.Test[i] = filepath.Join(out, "builtin", "test")
				}
			}
		}
		saved.Backend, saved.Version = "", version()
		rc = saved
	} else {
		// config.json is written first by every run, folds included.
		for _, f := range []string{"config.json", train.LatestName} {
			if _, err := os.Stat(filepath.Join(out, f)); err == nil {
				return usagef("--out", "%s already holds a run; continue it with --resume or choose another folder", out)
			}
		}
	}
	logFile, err := os.OpenFile(filepath.Join(out, "train.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := io.MultiWriter(c.App.ErrWriter, logFile)
	for _, p := range temps {
		fmt.Fprintf(log, "removed %s, left by a write that was killed\n", p)
	}
	if builtin {
		if err := writeBuiltinData(c, rc, out); err != nil {
			return err
		}
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	rc.Backend = b.Name()

	ctx, stop := signalContext(c.Context, c.App.ErrWriter)
	defer stop()

	fmt.Fprintf(log, "%s chnet %s: training %s (%s backbone) on %s with the %s backend; run folder %s\n",
		time.Now().Format("2006-01-02 15:04:05"), version(), spec.Arch, spec.Backbone, rc.Data, b.Name(), out)
	fmt.Fprintf(log, "schedule: %s\n", train.DescribeSchedule(rc.Recipe.LR, rc.Recipe.Epochs))

	// Every file of the run is checked before the run starts.
	folders := []dataFolder{{"train", rc.Data}}
	if rc.Val != "" {
		folders = append(folders, dataFolder{"val", rc.Val})
	}
	for _, d := range rc.Test {
		folders = append(folders, dataFolder{"test " + filepath.Base(filepath.Clean(d)), d})
	}
	checked, err := preflight(ctx, folders, lim, c.Int("workers"))
	if err != nil {
		return err
	}
	if n, list := problemList(checked); n > 0 {
		if !c.Bool("skip-bad") {
			return dataErr(fmt.Errorf("data: %d samples cannot be used (pass --skip-bad to leave them out):%s", n, list))
		}
		fmt.Fprintf(log, "data: --skip-bad: left out %d samples:%s\n", n, list)
	}
	for _, cf := range checked {
		if cf.ignored > 0 {
			fmt.Fprintf(log, "data: %s: %d non-image or hidden files ignored\n", cf.dir, cf.ignored)
		}
	}
	ds := checked[0].ds
	if rc.Limit > 0 && rc.Limit < len(ds.Pairs) {
		if ds, err = limitSet(ds, rc.Limit, rc.Seed); err != nil {
			return err
		}
		fmt.Fprintf(log, "data: --limit %d: training on a seeded sample of %d of the %d images\n", rc.Limit, rc.Limit, len(checked[0].ds.Pairs))
	}
	var valSet *data.Dataset
	samples := len(ds.Pairs)
	if rc.Val != "" {
		valSet = checked[1].ds
		samples += len(valSet.Pairs)
	}
	if err := checkTrainMemory(b, rc, samples, c.Int("workers"), log); err != nil {
		return err
	}
	if err := writeJSONAtomic(filepath.Join(out, "config.json"), rc); err != nil {
		return err
	}
	splits, err := loadOrMakeSplits(filepath.Join(out, "splits.json"), ds, rc)
	if err != nil {
		return err
	}
	folds := 1
	if rc.Folds > 1 {
		folds = rc.Folds
	}
	var results []map[string]float64
	for k := 0; k < folds; k++ {
		dir := out
		if rc.Folds > 1 {
			dir = filepath.Join(out, fmt.Sprintf("fold_%d", k))
			fmt.Fprintf(log, "fold_%d (%d of %d)\n", k, k+1, folds)
		}
		res, err := trainOne(ctx, c, b, rc, ds, valSet, splits, k, dir, log)
		if err != nil {
			if errors.Is(err, train.ErrInterrupted) {
				return classified{exitInterrupted, err}
			}
			return err
		}
		results = append(results, res)
	}
	if rc.Folds > 1 {
		if err := reportFolds(c.App.Writer, log, out, results); err != nil {
			return err
		}
	}
	if len(rc.Test) == 0 {
		fmt.Fprintf(log, "done: checkpoints, progress.png and train.log are in %s\n", out)
		return nil
	}
	tests := checked[len(checked)-len(rc.Test):]
	if rc.Folds <= 1 {
		bad, err := testRunFolder(ctx, c, b, tests, []string{out}, out, log, logFile)
		if err != nil {
			return err
		}
		return leftOutErr(bad)
	}
	// Cross-validation: each fold's model on the test folders, then the folds together (their
	// maps averaged), as nnU-Net predicts with its five folds.
	var bad, dirs []string
	for k := 0; k < folds; k++ {
		dir := filepath.Join(out, fmt.Sprintf("fold_%d", k))
		dirs = append(dirs, dir)
		left, err := testRunFolder(ctx, c, b, tests, []string{dir}, dir, log, logFile)
		if err != nil {
			return err
		}
		bad = append(bad, left...)
	}
	fmt.Fprintf(log, "the ensemble of the %d folds:\n", folds)
	left, err := testRunFolder(ctx, c, b, tests, dirs, out, log, logFile)
	if err != nil {
		return err
	}
	return leftOutErr(append(bad, left...))
}

// testRunFolder scores the checkpoint (--test-on) of each run folder in runs — one, or the folds
// of a cross-validation as an ensemble — on the test folders into dir/test/<folder>, adds each
// table to train.log, and ends with where the reports are.
func testRunFolder(ctx context.Context, c *cli.Context, b ops.Backend, tests []*checkedFolder, runs []string, dir string, log, logFile io.Writer) ([]string, error) {
	var ckpts []string
	for _, run := range runs {
		ckpt, why := filepath.Join(run, train.FinalName), "the last epoch's"
		if c.String("test-on") == "best" {
			if _, err := os.Stat(filepath.Join(run, train.BestName)); err == nil {
				ckpt, why = filepath.Join(run, train.BestName), "the best validation Dice's"
			} else {
				why = "the last epoch's: the best was asked for, but the run has no validation"
			}
		}
		fmt.Fprintf(log, "testing %s (%s checkpoint)\n", ckpt, why)
		ckpts = append(ckpts, ckpt)
	}
	lm, err := loadModels(c, b, ckpts)
	if err != nil {
		return nil, err
	}
	var bad, reports []string
	for _, cf := range tests {
		out := filepath.Join(dir, "test", filepath.Base(filepath.Clean(cf.dir)))
		left, err := testFolder(ctx, c, b, lm, cf, out, log, io.MultiWriter(c.App.Writer, logFile))
		if err != nil {
			return nil, err
		}
		bad = append(bad, left...)
		reports = append(reports, filepath.Join(out, "report.md"))
	}
	fmt.Fprintf(log, "done: reports %s; training curves %s\n", strings.Join(reports, ", "), filepath.Join(dir, "progress.png"))
	return bad, nil
}

// readRunConfig reads a run folder's config.json for --resume: a missing file is a usage error
// (nothing to resume); a damaged one, or one recording what the flags would refuse, is bad data.
func readRunConfig(path string, maxPixels int64) (runConfig, error) {
	b, err := regfile.ReadFile(path, 1<<20)
	if err != nil {
		return runConfig{}, usagef("--resume", "nothing to resume: %v", err)
	}
	rc, err := parseRunConfig(b, maxPixels)
	if err != nil {
		return rc, dataErr(fmt.Errorf("%s: %w", path, err))
	}
	return rc, nil
}

// parseRunConfig decodes config.json and checks it as the flags it came from were checked: the
// file is input, and a resumed run uses it as it stands.
func parseRunConfig(b []byte, maxPixels int64) (runConfig, error) {
	var rc runConfig
	if err := json.Unmarshal(b, &rc); err != nil {
		return rc, err
	}
	if err := rc.Model.Validate(); err != nil {
		return rc, fmt.Errorf("model: %w", err)
	}
	if rc.Data == "" {
		return rc, fmt.Errorf("no data folder")
	}
	if len(rc.Sizes) == 0 {
		return rc, fmt.Errorf("no training sizes")
	}
	if l := rc.Recipe.Loss; l != ops.StructureLossOfficial && l != ops.StructureLossWeighted {
		return rc, fmt.Errorf("unknown loss form %d", l)
	}
	if err := checkRecipe(&rc, maxPixels); err != nil {
		return rc, fmt.Errorf("records what the flags refuse: %w", err)
	}
	return rc, nil
}

// resolvePaths makes the run's paths absolute, so that config.json names the same files from
// any directory and the run can be resumed from anywhere (issue 11, point 4). The built-in set
// is the exception: it lives in the run folder and is found there on resume.
func resolvePaths(rc *runConfig) error {
	ps := []*string{&rc.Data, &rc.Val, &rc.Backbone, &rc.InitFrom}
	for i := range rc.Test {
		ps = append(ps, &rc.Test[i])
	}
	for _, p := range ps {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

// samePath reports whether two paths name the same file or folder: the same once made
// absolute and cleaned, or, where both exist, the same file however reached (links, mounts).
func samePath(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// sameRun checks that every flag given explicitly with --resume agrees with the saved run;
// paths agree when they name the same file, however written.
func sameRun(c *cli.Context, now, saved runConfig) error {
	paths := []struct {
		flag      string
		got, want []string
	}{
		{"data", []string{now.Data}, []string{saved.Data}}, {"val", []string{now.Val}, []string{saved.Val}},
		{"test", now.Test, saved.Test}, {"backbone-weights", []string{now.Backbone}, []string{saved.Backbone}},
		{"init-from", []string{now.InitFrom}, []string{saved.InitFrom}},
	}
	for _, p := range paths {
		if !c.IsSet(p.flag) {
			continue
		}
		same := len(p.got) == len(p.want)
		for i := 0; same && i < len(p.got); i++ {
			same = samePath(p.got[i], p.want[i])
		}
		if !same {
			return usagef("--"+p.flag, "is %s, but the run being resumed was started with %s", strings.Join(p.got, ", "), strings.Join(p.want, ", "))
		}
	}
	checks := []struct {
		flag      string
		got, want any
	}{
		{"epochs", now.Recipe.Epochs, saved.Recipe.Epochs},
		{"batch-size", now.BatchSize, saved.BatchSize}, {"size", now.Size, saved.Size},
		{"sizes", fmt.Sprint(now.Sizes), fmt.Sprint(saved.Sizes)}, {"lr", now.Recipe.LR, saved.Recipe.LR},
		{"momentum", now.Recipe.Momentum, saved.Recipe.Momentum}, {"weight-decay", now.Recipe.WeightDecay, saved.Recipe.WeightDecay},
		{"loss", now.Recipe.Loss, saved.Recipe.Loss}, {"seed", now.Seed, saved.Seed}, {"folds", now.Folds, saved.Folds},
		{"val-fraction", now.ValFrac, saved.ValFrac}, {"arch", now.Model.Arch, saved.Model.Arch},
		{"backbone", now.Model.Backbone, saved.Model.Backbone}, {"head-width", now.Model.HeadWidth, saved.Model.HeadWidth},
		{"head-kernel", now.Model.HeadKernel, saved.Model.HeadKernel}, {"no-augment", !now.Augment, !saved.Augment},
		{"freeze-backbone", now.Freeze, saved.Freeze}, {"limit", now.Limit, saved.Limit},
		{"save-every", now.Recipe.SaveEvery, saved.Recipe.SaveEvery}, {"val-every", now.Recipe.ValEvery, saved.Recipe.ValEvery},
	}
	for _, ch := range checks {
		if c.IsSet(ch.flag) && fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			return usagef("--"+ch.flag, "is %v, but the run being resumed was started with %v", ch.got, ch.want)
		}
	}
	return nil
}

// useBuiltinData points the run at the synthetic demo set (generated into the run folder by
// writeBuiltinData) and scales the recipe to it, unless the user set those flags.
func useBuiltinData(c *cli.Context, rc *runConfig, out string) {
	rc.BuiltinSet = true
	rc.Data = filepath.Join(out, "builtin", "train")
	testDir := filepath.Join(out, "builtin", "test")
	if !c.IsSet("epochs") {
		rc.Recipe.Epochs = demoEpochs
	}
	if !c.IsSet("batch-size") {
		rc.BatchSize = demoBatch
	}
	if !c.IsSet("size") {
		rc.Size = demoSize
	}
	if !c.IsSet("sizes") && !c.IsSet("size") {
		rc.Sizes = demoSizes
	}
	if !c.IsSet("val-fraction") {
		rc.ValFrac = 0.125
	}
	if !c.IsSet("test") {
		rc.Test = []string{testDir}
	}
}

// writeBuiltinData generates the demo set unless the run folder already has it.
func writeBuiltinData(c *cli.Context, rc runConfig, out string) error {
	testDir := filepath.Join(out, "builtin", "test")
	if _, err := os.Stat(rc.Data); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "chnet: no --data given: generating a synthetic polyp set (%d train, %d test images, %d px) in %s\n",
			demoTrain, demoTest, demoSize, filepath.Join(out, "builtin"))
		if err := data.WriteSynthetic(rc.Data, demoTrain, demoSize, demoSize, rc.Seed); err != nil {
			return err
		}
		if err := data.WriteSynthetic(testDir, demoTest, demoSize, demoSize, rc.Seed+1000); err != nil {
			return err
		}
	}
	return nil
}

// checkRecipe validates flag values with messages naming the flag. Sizes are bounded by the
// pixel limit, as images are: --size 3000000000 once panicked allocating its buffers.
func checkRecipe(rc *runConfig, maxPixels int64) error {
	switch {
	case rc.Recipe.Epochs < 1:
		return usagef("--epochs", "must be at least 1, got %d", rc.Recipe.Epochs)
	case rc.BatchSize < 1:
		return usagef("--batch-size", "must be at least 1, got %d", rc.BatchSize)
	case rc.Size < 32:
		return usagef("--size", "must be at least 32 (the network's total stride), got %d", rc.Size)
	// Written so that NaN fails every test (NaN compares false): it once passed them all and
	// ended in config.json as "json: unsupported value: NaN".
	case !(rc.Recipe.LR > 0) || math.IsInf(rc.Recipe.LR, 0):
		return usagef("--lr", "must be positive and finite, got %v", rc.Recipe.LR)
	case !(rc.Recipe.Momentum >= 0 && rc.Recipe.Momentum < 1):
		return usagef("--momentum", "must be in [0, 1), got %v", rc.Recipe.Momentum)
	case !(rc.Recipe.WeightDecay >= 0) || math.IsInf(rc.Recipe.WeightDecay, 0):
		return usagef("--weight-decay", "must be finite and not negative, got %v", rc.Recipe.WeightDecay)
	case !(rc.ValFrac >= 0 && rc.ValFrac < 1):
		return usagef("--val-fraction", "must be in [0, 1), got %v", rc.ValFrac)
	case rc.Folds == 1 || rc.Folds < 0:
		return usagef("--folds", "must be at least 2 (or 0 for none), got %d", rc.Folds)
	case rc.Folds > 1 && rc.Val != "":
		return usagef("--folds", "cross-validation holds out its own folds; drop --val")
	case rc.Limit < 0:
		return usagef("--limit", "must not be negative, got %d", rc.Limit)
	case rc.Recipe.SaveEvery < 0:
		return usagef("--save-every", "must be at least 1, got %d", rc.Recipe.SaveEvery)
	case rc.Recipe.ValEvery < 0:
		return usagef("--val-every", "must be at least 1, got %d", rc.Recipe.ValEvery)
	}
	if len(rc.Sizes) == 0 {
		for _, s := range data.OfficialSizes {
			rc.Sizes = append(rc.Sizes, s*rc.Size/352)
		}
	}
	if int64(rc.Size)*int64(rc.Size) > maxPixels {
		return usagef("--size", "%d² pixels per image is more than --max-pixels %d", rc.Size, maxPixels)
	}
	for _, s := range rc.Sizes {
		if s < 32 {
			return usagef("--sizes", "sizes must be at least 32, got %d", s)
		}
		if int64(s)*int64(s) > maxPixels {
			return usagef("--sizes", "%d² pixels per image is more than --max-pixels %d", s, maxPixels)
		}
	}
	rc.Recipe.Nesterov = true
	return nil
}

// loadOrMakeSplits reuses the run's splits.json or writes a new one.
func loadOrMakeSplits(path string, ds *data.Dataset, rc runConfig) (*data.Splits, error) {
	names := ds.Names()
	if _, err := os.Stat(path); err == nil {
		s, err := data.LoadSplits(path, names)
		if err != nil {
			return nil, dataErr(fmt.Errorf("%s no longer matches %s: %w", path, rc.Data, err))
		}
		return s, nil
	}
	var s *data.Splits
	var err error
	switch {
	case rc.Folds > 1:
		s, err = data.KFold(names, rc.Folds, rc.Seed)
	case rc.Val == "" && rc.ValFrac > 0:
		s, err = data.HoldOut(names, rc.ValFrac, rc.Seed)
	default:
		s, err = data.NoValidation(names, rc.Seed)
	}
	if err != nil {
		return nil, dataErr(err)
	}
	return s, s.Save(path)
}

// trainHook is every Trainer's Hook: nil in the chnet binary; tests running it as a child
// process set it to interrupt or kill a run at an exact point.
var trainHook func(ctx context.Context, point string)

// trainOne trains fold k into dir and returns its final validation metrics.
func trainOne(ctx context.Context, c *cli.Context, b ops.Backend, rc runConfig, ds, valSet *data.Dataset, splits *data.Splits, k int, dir string, log io.Writer) (map[string]float64, error) {
	if err := train.EnsureDir(dir); err != nil {
		return nil, err
	}
	fold, err := splits.Fold(k)
	if err != nil {
		return nil, err
	}
	trainSet, err := ds.Subset(fold.Train)
	if err != nil {
		return nil, dataErr(err)
	}
	lcfg := data.TrainConfig(rc.BatchSize, rc.Seed)
	lim, err := limits(c)
	if err != nil {
		return nil, err
	}
	lcfg.BaseSize, lcfg.Sizes, lcfg.Augment, lcfg.Workers, lcfg.Limits = rc.Size, rc.Sizes, rc.Augment, c.Int("workers"), lim
	loader, err := data.NewLoader(trainSet, lcfg)
	if err != nil {
		return nil, usageErr(err)
	}
	if err := decodeAll(ctx, c, loader, "training", log); err != nil {
		return nil, err
	}
	var val train.Validator
	nVal := 0
	if valSet == nil && len(fold.Val) > 0 {
		if valSet, err = ds.Subset(fold.Val); err != nil {
			return nil, dataErr(err)
		}
	}
	if valSet != nil {
		vcfg := data.EvalConfig(rc.BatchSize)
		vcfg.BaseSize, vcfg.Sizes, vcfg.Workers, vcfg.Limits = rc.Size, []int{rc.Size}, c.Int("workers"), lim
		vl, err := data.NewLoader(valSet, vcfg)
		if err != nil {
			return nil, usageErr(err)
		}
		if err := decodeAll(ctx, c, vl, "validation", log); err != nil {
			return nil, err
		}
		nVal = vl.Len()
		val = train.HeldOut{Data: data.TrainData{Loader: vl}, Loss: rc.Recipe.Loss}
	}
	fmt.Fprintf(log, "data: %d training and %d validation images; %d batches of %d per epoch at sizes %v\n",
		loader.Len(), nVal, loader.Batches(), rc.BatchSize, rc.Sizes)

	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(rc.Seed, 1)}, rc.Model)
	if err != nil {
		return nil, err
	}
	if err := initWeights(b, m, rc, log); err != nil {
		return nil, err
	}
	opt, err := train.NewSGD(b, m, ops.SGDParams{Momentum: float32(rc.Recipe.Momentum), WeightDecay: float32(rc.Recipe.WeightDecay), Nesterov: rc.Recipe.Nesterov})
	if err != nil {
		return nil, err
	}
	meta, err := json.Marshal(rc.Model)
	if err != nil {
		return nil, err
	}
	tty, width, raw := terminalOf(c.App.ErrWriter)
	tr := &train.Trainer{B: b, Model: m, Opt: opt, Data: data.TrainData{Loader: loader}, Val: val, Cfg: rc.Recipe,
		Dir: dir, Log: log, Term: raw, TTY: tty, Width: width, Meta: meta, Hook: trainHook}
	if c.Bool("resume") {
		latest := filepath.Join(dir, train.LatestName)
		switch _, err := os.Stat(latest); {
		case os.IsNotExist(err):
			// Stopped before its first checkpoint (killed in epoch 1): the model above is
			// initialised exactly as the run's was, so starting over is resuming.
			fmt.Fprintf(log, "no %s yet: starting the run from its beginning\n", latest)
			if err := train.TruncateRecords(filepath.Join(dir, "metrics.jsonl"), 0); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			if err := tr.Resume(latest); err != nil {
				return nil, dataErr(err)
			}
			notes, err := tr.Repair()
			for _, n := range notes {
				fmt.Fprintln(log, n)
			}
			if err != nil {
				return nil, err
			}
			if tr.State.Finished {
				fmt.Fprintf(log, "%s: already finished %d epochs\n", dir, tr.State.Epoch)
				return finalMetrics(dir)
			}
			fmt.Fprintf(log, "resuming at epoch %d, step %d\n", tr.State.Epoch+1, tr.State.Step)
		}
	}
	nn.SetTraining(m, true)
	if err := tr.Run(ctx); err != nil {
		return nil, err
	}
	return finalMetrics(dir)
}

// decodeAll decodes every sample of a loader before the first epoch (filling its cache, which
// the first epoch would do anyway), so that damage the header check cannot see — truncated
// pixel data, label-coded masks — stops the run now, listed, or with --skip-bad leaves the
// sample out, instead of failing mid-epoch.
func decodeAll(ctx context.Context, c *cli.Context, l *data.Loader, what string, log io.Writer) error {
	start := time.Now()
	fmt.Fprintf(log, "data: decoding the %d %s images once (then cached)…\n", l.Len(), what)
	defer func() {
		if d := time.Since(start); d >= 5*time.Second {
			fmt.Fprintf(log, "data: decoded in %s\n", train.FormatDuration(d))
		}
	}()
	rep, err := l.Check(ctx, c.Bool("skip-bad"))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rep != nil && len(rep.Bad) > 0 {
			return dataErr(fmt.Errorf("%s data: %w\n(pass --skip-bad to leave them out)", what, err))
		}
		return dataErr(fmt.Errorf("%s data: %w", what, err))
	}
	if len(rep.Bad) > 0 {
		lines := make([]string, len(rep.Bad))
		for i, e := range rep.Bad {
			lines[i] = strings.TrimPrefix(e.Error(), "data: ")
		}
		fmt.Fprintf(log, "data: --skip-bad: left out %d %s samples that do not decode:%s\n", len(rep.Bad), what, listing(lines))
	}
	return nil
}

// initWeights loads ImageNet backbone weights or another run's backbone, and freezes it if asked.
func initWeights(b ops.Backend, m nn.Segmenter, rc runConfig, log io.Writer) error {
	bb := zoo.Backbone(m)
	for _, src := range []struct{ flag, path string }{{"--backbone-weights", rc.Backbone}, {"--init-from", rc.InitFrom}} {
		if src.path == "" {
			continue
		}
		if bb == nil {
			return usagef(src.flag, "network %s has no Res2Net backbone", rc.Model.Arch)
		}
		st, err := loadStateFile(src.path)
		if err != nil {
			return err
		}
		rep, err := loadBackbone(b, bb, st)
		if err != nil {
			return dataErr(fmt.Errorf("%s %s: %w", src.flag, src.path, err))
		}
		fmt.Fprintf(log, "loaded %d backbone tensors from %s\n", len(rep.Loaded), src.path)
	}
	if rc.Freeze {
		if bb == nil {
			return usagef("--freeze-backbone", "network %s has no Res2Net backbone", rc.Model.Arch)
		}
		nn.Freeze(bb)
	}
	if rc.Backbone == "" && rc.InitFrom == "" && !rc.BuiltinSet {
		fmt.Fprintln(log, "note: no --backbone-weights: the backbone starts from random initialisation (the paper used ImageNet weights)")
	}
	return nil
}

// loadBackbone loads the backbone part of a state in any naming chnet writes or reads:
// ImageNet's conv1/layerN, CHNet's and FCN's encodeN, the baselines' backbone.conv1/layerN;
// everything else (layer4, fc, a decoder) is ignored.
func loadBackbone(b ops.Backend, bb *nn.Res2Net, st *nn.State) (nn.LoadReport, error) {
	rename := func(n string) string {
		n = strings.TrimPrefix(n, "module.")
		n = strings.TrimPrefix(n, "backbone.")
		if strings.HasPrefix(n, "encode") {
			return chnet.ImageNetName(n)
		}
		if strings.HasPrefix(n, "layer4.") || strings.HasPrefix(n, "fc.") {
			return ""
		}
		return n
	}
	rep, err := nn.LoadState(b, bb, st, nn.LoadOptions{Rename: rename, IgnoreUnexpected: true})
	if err != nil {
		return rep, err
	}
	if len(rep.Loaded) == 0 {
		return rep, fmt.Errorf("no backbone tensors found (expected conv1/bn1/layer1-3 or encode1-4 names)")
	}
	return rep, nil
}

// finalMetrics reads the last validation metrics of a run folder.
func finalMetrics(dir string) (map[string]float64, error) {
	rs, err := train.ReadRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[len(rs)-1].Val, nil
}

// reportFolds prints and saves the cross-validation mean ± std of each validation metric.
func reportFolds(w, log io.Writer, out string, results []map[string]float64) error {
	summary := map[string]map[string]float64{}
	for _, k := range []string{"dice", "iou", "mae", "loss"} {
		var vals []float64
		for _, r := range results {
			if v, ok := r[k]; ok {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		var mean, sd float64
		for _, v := range vals {
			mean += v
		}
		mean /= float64(len(vals))
		for _, v := range vals {
			sd += (v - mean) * (v - mean)
		}
		if len(vals) > 1 {
			sd = math.Sqrt(sd / float64(len(vals)-1))
		}
		summary[k] = map[string]float64{"mean": mean, "std": sd}
		fmt.Fprintf(w, "%-5s %.4f ± %.4f  (%d folds)\n", k, mean, sd, len(vals))
	}
	fmt.Fprintf(log, "cross-validation summary written to %s\n", filepath.Join(out, "folds.json"))
	return writeJSONAtomic(filepath.Join(out, "folds.json"), map[string]any{"folds": results, "summary": summary})
}

// writeJSONAtomic writes v as indented JSON, atomically.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// limitSet is a seeded sample of n pairs of ds (--limit), in ds's order: the same on resume.
func limitSet(ds *data.Dataset, n int, seed uint64) (*data.Dataset, error) {
	names := ds.Names()
	pick := tensor.NewRNG(seed, 11).Perm(len(names))[:n]
	slices.Sort(pick)
	sub := make([]string, n)
	for i, k := range pick {
		sub[i] = names[k]
	}
	s, err := ds.Subset(sub)
	if err != nil {
		return nil, dataErr(err)
	}
	return s, nil
}
