package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chnet/chnet/internal/atomicfile"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
	"github.com/chnet/chnet/train/data"
	"github.com/chnet/chnet/train/metrics"
	"github.com/urfave/cli/v2"
)

// ttaFlag is --tta of test, predict and train's --test.
func ttaFlag() cli.Flag {
	return &cli.BoolFlag{Name: "tta", Category: "evaluation", Usage: "flip test-time augmentation: average each map with the mirrored map of the mirrored image (twice the time)"}
}

func testOutputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "convention", Value: "pysod", Category: "evaluation", Usage: "metric definitions: pysod (PySODMetrics), matlab (PraNet's toolbox) or chnet (CHNet's eval.py)"},
		&cli.StringFlag{Name: "task", Value: "polyp", Category: "evaluation", Usage: "metric set of the paper's tables: polyp, lung or breast"},
	}
}

func testCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run a checkpoint over test folders, save the probability maps and score them",
		ArgsUsage: "FOLDER...",
		Description: `Each FOLDER holds images/ and masks/ (or PraNet's image/ and mask/, or nnU-Net's
imagesTr/ and labelsTr/). Maps are predicted at the size the model was
trained at (352 for the official recipe), resized back to each image's own size and written as
8-bit PNGs (probability × 255, no min-max normalisation) to OUT/<folder>/maps. The scores of
--task under --convention are printed and written as metrics.md, metrics.csv, metrics.json and
per_image.csv, with report.md showing sample predictions beside the ground truth.`,
		Flags: append([]cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output folder", DefaultText: "test-<checkpoint> beside the checkpoint (in its run folder)"},
			forceFlag(),
			&cli.IntFlag{Name: "size", Usage: "inference size", DefaultText: "the checkpoint's training size, else 352"},
		}, append(append(append(testOutputFlags(), ttaFlag()), limitFlags()...), modelFlags()...)...),
		Action: func(c *cli.Context) error {
			if err := flagsAfterArgs(c); err != nil {
				return err
			}
			if c.NArg() == 0 {
				return usageErr(fmt.Errorf("name at least one test folder (%s)", data.LayoutNames))
			}
			if _, err := backendName(c); err != nil {
				return err
			}
			out := outFolder(c, "test")
			var existing []string
			for _, dir := range c.Args().Slice() {
				if p := filepath.Join(out, filepath.Base(filepath.Clean(dir))); fileExists(filepath.Join(p, "metrics.json")) || fileExists(filepath.Join(p, "maps")) {
					existing = append(existing, p)
				}
			}
			if err := refuseOverwrite(c, out, existing); err != nil {
				return err
			}
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context, c.App.ErrWriter)
			defer stop()
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			release, temps, err := claimFolder(out, "--out", 2)
			if err != nil {
				return err
			}
			defer release()
			for _, p := range temps {
				fmt.Fprintf(c.App.ErrWriter, "removed %s, left by a write that was killed\n", p)
			}
			lim, err := limits(c)
			if err != nil {
				return err
			}
			var folders []dataFolder
			for _, dir := range c.Args().Slice() {
				folders = append(folders, dataFolder{filepath.Base(filepath.Clean(dir)), dir})
			}
			checked, err := preflight(ctx, folders, lim, 0)
			if err != nil {
				return err
			}
			lm, err := loadModels(c, b, c.StringSlice("model"))
			if err != nil {
				return err
			}
			var bad []string
			for _, cf := range checked {
				left, err := testFolder(ctx, c, b, lm, cf, filepath.Join(out, filepath.Base(filepath.Clean(cf.dir))), c.App.ErrWriter, c.App.Writer)
				if err != nil {
					return err
				}
				bad = append(bad, left...)
			}
			return leftOutErr(bad)
		},
	}
}

// loadedModel is a network rebuilt from a checkpoint, in eval mode.
type loadedModel struct {
	m    nn.Segmenter
	spec zoo.Spec
	size int
	tta  bool // average with the prediction of the mirrored image (--tta)
	// more are the other networks of an ensemble (several --model): their maps are averaged.
	more []nn.Segmenter
}

// modelFlag is test's and predict's --model: one checkpoint, or several for an ensemble.
func modelFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Required: true,
		Usage: "checkpoint (.safetensors from chnet train, or an official CHNet .pth); repeat it to average several (an ensemble, e.g. the folds of --folds)"}
}

// loadModels loads one checkpoint, or several as an ensemble predicting at the first's size.
func loadModels(c *cli.Context, b ops.Backend, paths []string) (*loadedModel, error) {
	lm, err := loadModel(c, b, paths[0])
	if err != nil {
		return nil, err
	}
	for _, p := range paths[1:] {
		o, err := loadModel(c, b, p)
		if err != nil {
			return nil, err
		}
		if o.size != lm.size {
			return nil, usagef("--model", "%s predicts at %d px and %s at %d: give --size for the ensemble", paths[0], lm.size, p, o.size)
		}
		lm.more = append(lm.more, o.m)
	}
	return lm, nil
}

// loadModel rebuilds the network a checkpoint was trained as. chnet checkpoints carry their
// spec; a PyTorch .pth is taken as the official CHNet with the --backbone/--head-* flags.
func loadModel(c *cli.Context, b ops.Backend, path string) (*loadedModel, error) {
	var spec zoo.Spec
	var st *nn.State
	if err := checkWeightFile(path); err != nil {
		return nil, err
	}
	if ck, err := train.LoadCheckpoint(path); err == nil {
		if spec, err = zoo.Parse(ck.ModelConfig); err != nil {
			return nil, dataErr(fmt.Errorf("%s: %w", path, err))
		}
		st = ck.Model
		if err := checkpointModelFlags(c, path, &spec); err != nil {
			return nil, err
		}
	} else {
		if st, err = loadStateFile(path); err != nil {
			return nil, err
		}
		if spec, err = modelSpec(c); err != nil {
			return nil, err
		}
	}
	size, from := spec.InputSize, path+" (its input_size; override with --size)"
	if c.IsSet("size") || size == 0 {
		size, from = c.Int("size"), "--size"
	}
	if size == 0 {
		size = 352
	}
	lim, err := limits(c)
	if err != nil {
		return nil, err
	}
	switch {
	case from == "--size" && size < 32:
		return nil, usagef("--size", "must be at least 32, got %d", size)
	case from == "--size" && int64(size)*int64(size) > lim.MaxPixels:
		return nil, usagef("--size", "%d² pixels per image is more than --max-pixels %d", size, lim.MaxPixels)
	case size < 32 || int64(size)*int64(size) > lim.MaxPixels:
		return nil, dataErr(fmt.Errorf("%s: records input_size %d, outside 32..√(--max-pixels %d); override with --size", path, size, lim.MaxPixels))
	}
	// Checked before the network is built: the size may come from the file.
	if err := checkInferMemory(b, spec, size, from); err != nil {
		return nil, err
	}
	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, spec)
	if err != nil {
		return nil, err
	}
	if _, err := nn.LoadState(b, m, st, nn.LoadOptions{Rename: trimModule}); err != nil {
		return nil, dataErr(fmt.Errorf("%s: %w", path, err))
	}
	nn.SetTraining(m, false)
	return &loadedModel{m: m, spec: spec, size: size, tta: c.Bool("tta")}, nil
}

// checkpointModelFlags applies the model flags to a chnet checkpoint, which records its own
// network: --literal-head (the same function computed in another order) is honoured, and a
// flag that would describe another network is refused rather than ignored.
func checkpointModelFlags(c *cli.Context, path string, spec *zoo.Spec) error {
	for _, f := range []struct {
		flag      string
		got, want any
	}{
		{"arch", c.String("arch"), spec.Arch}, {"backbone", c.String("backbone"), spec.Backbone},
		{"head-width", c.Int("head-width"), spec.HeadWidth}, {"head-kernel", c.Int("head-kernel"), spec.HeadKernel},
	} {
		if c.IsSet(f.flag) && fmt.Sprint(f.got) != fmt.Sprint(f.want) {
			return usagef("--"+f.flag, "is %v, but %s records a network with %v; the model flags describe PyTorch .pth files, whose network is not recorded", f.got, path, f.want)
		}
	}
	if c.Bool("literal-head") {
		spec.Factorized = false
	}
	return nil
}

func trimModule(n string) string {
	if len(n) > 7 && n[:7] == "module." {
		return n[7:]
	}
	return n
}

// predict returns the probability map of one prepared image [3, size, size]. With --tta it is
// the mean of the map and the mirrored map of the mirrored image (flip test-time augmentation).
func (lm *loadedModel) predict(b ops.Backend, pix []float32) ([]float32, error) {
	p, err := lm.forward(b, pix)
	if err != nil || !lm.tta {
		return p, err
	}
	q, err := lm.forward(b, flipW(pix, 3, lm.size, lm.size))
	if err != nil {
		return nil, err
	}
	q = flipW(q, 1, lm.size, lm.size)
	for i := range p {
		p[i] = (p[i] + q[i]) / 2
	}
	return p, nil
}

// forward is the network's map, or the mean of the ensemble's maps.
func (lm *loadedModel) forward(b ops.Backend, pix []float32) ([]float32, error) {
	x, err := ops.FromHost(b, pix, 1, 3, lm.size, lm.size)
	if err != nil {
		return nil, err
	}
	defer b.Release(x.Storage())
	p, err := train.Predict(b, lm.m, x)
	if err != nil || len(lm.more) == 0 {
		return p, err
	}
	for _, m := range lm.more {
		q, err := train.Predict(b, m, x)
		if err != nil {
			return nil, err
		}
		for i := range p {
			p[i] += q[i]
		}
	}
	n := float32(1 + len(lm.more))
	for i := range p {
		p[i] /= n
	}
	return p, nil
}

// flipW mirrors c planes of h×w values left to right, into a new slice.
func flipW(v []float32, c, h, w int) []float32 {
	out := make([]float32, len(v))
	for k := 0; k < c*h; k++ {
		row := v[k*w : (k+1)*w]
		dst := out[k*w : (k+1)*w]
		for x := range row {
			dst[w-1-x] = row[x]
		}
	}
	return out
}

// predictFile returns the probability map of one image at its original size.
func (lm *loadedModel) predictFile(b ops.Backend, path string, lim data.Limits) (*data.Input, []float32, error) {
	in, err := data.LoadInput(path, lm.size, data.ImageNetStats, lim)
	if err != nil {
		return nil, nil, dataErr(err)
	}
	p, err := lm.predict(b, in.Pix)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	full, err := data.ResizeBack(p, lm.size, in.W, in.H)
	if err != nil {
		return nil, nil, err
	}
	return in, full, nil
}

// testFolder predicts every usable pair of a checked folder, writes the maps and scores them
// against the masks. A pair that fails to decode is left out, not fatal: the others are still
// scored (issue 9, case 11). It returns every sample left out, the pre-flight check's included,
// as "folder: path: why" lines; its error is for what stops all work (a device error, Ctrl-C).
// The table of scores goes to table (stdout, and train.log for train's --test).
func testFolder(ctx context.Context, c *cli.Context, b ops.Backend, lm *loadedModel, cf *checkedFolder, out string, log, table io.Writer) ([]string, error) {
	conv, err := metrics.ParseConvention(c.String("convention"))
	if err != nil {
		return nil, usagef("--convention", "%v", err)
	}
	task := c.String("task")
	lim, err := limits(c)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(filepath.Clean(cf.dir))
	var bad []string
	for _, p := range cf.problems {
		bad = append(bad, name+": "+p)
	}
	maps := filepath.Join(out, "maps")
	if err := os.MkdirAll(maps, 0o755); err != nil {
		return nil, err
	}
	// Maps are named like the images: written into the images or masks folder, they would
	// replace them (as predict -o once did: issue 9, case 2).
	if mst, err := os.Stat(maps); err == nil {
		for _, sub := range []string{"images", "masks"} {
			if st, err := os.Stat(filepath.Join(cf.dir, sub)); err == nil && os.SameFile(mst, st) {
				return nil, usagef("--out", "%s is the %s folder of %s; choose another folder", maps, sub, cf.dir)
			}
		}
	}
	ev, err := metrics.New(conv)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var samples []reportSample
	pairs := cf.ds.Pairs
	for i, p := range pairs {
		if err := ctx.Err(); err != nil {
			return nil, classified{exitInterrupted, err}
		}
		grey, gt, err := testPair(b, lm, p, lim, maps)
		if isDataErr(err) {
			bad = append(bad, name+": "+strings.TrimPrefix(err.Error(), "data: "))
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := ev.Add(p.Name, grey, gt.Pix, gt.W, gt.H); err != nil {
			bad = append(bad, name+": "+p.Image+": "+err.Error())
			continue
		}
		samples = append(samples, reportSample{name: p.Name, image: p.Image, gt: gt, pred: grey})
		if (i+1)%20 == 0 || i+1 == len(pairs) {
			fmt.Fprintf(log, "%s: %d/%d images (%.1f img/s)\n", name, i+1, len(pairs), float64(i+1)/time.Since(start).Seconds())
		}
	}
	if len(samples) == 0 {
		return nil, dataErr(fmt.Errorf("%s: no image could be scored:%s", cf.dir, listing(bad)))
	}
	res := ev.Result()
	if err := writeResults(table, out, name, res, task, bad); err != nil {
		return nil, err
	}
	return bad, writeReport(out, name, task, res, samples)
}

// testPair predicts one pair, writes its map into maps and reads its ground truth.
func testPair(b ops.Backend, lm *loadedModel, p data.Pair, lim data.Limits, maps string) ([]uint8, metrics.Gray, error) {
	in, prob, err := lm.predictFile(b, p.Image, lim)
	if err != nil {
		return nil, metrics.Gray{}, err
	}
	gt, err := readGT(p, lim)
	if err != nil {
		return nil, gt, dataErr(err)
	}
	if gt.W != in.W || gt.H != in.H {
		return nil, gt, dataErr(fmt.Errorf("%s: mask is %dx%d, image %s is %dx%d", p.Masks[0], gt.W, gt.H, p.Image, in.W, in.H))
	}
	grey := data.Grey(prob)
	if err := data.WriteGreyPNG(filepath.Join(maps, in.Name+".png"), in.W, in.H, grey); err != nil {
		return nil, gt, err
	}
	return grey, gt, nil
}

// leftOutErr is the error of a command that did every usable sample but had to leave some out
// (exit 65, after all outputs are written), or nil.
func leftOutErr(bad []string) error {
	if len(bad) == 0 {
		return nil
	}
	return dataErr(fmt.Errorf("%d samples could not be used; the others were done:%s", len(bad), listing(bad)))
}

// isDataErr reports an error about one input file: exit 65.
func isDataErr(err error) bool {
	var c classified
	return errors.As(err, &c) && c.code == exitData
}

// readGT reads a pair's mask as 8-bit grey, taking the maximum over several mask files (BUSI).
func readGT(p data.Pair, lim data.Limits) (metrics.Gray, error) {
	var gt metrics.Gray
	for i, path := range p.Masks {
		g, err := metrics.ReadGrayLimited(path, lim.MaxPixels)
		if err != nil {
			return gt, err
		}
		if p.LabelMap {
			// nnU-Net's label maps: foreground is label 1 (any non-zero value).
			for j, v := range g.Pix {
				if v > 0 {
					g.Pix[j] = 255
				}
			}
		} else if err := notLabelCoded(path, g); err != nil {
			return gt, err
		}
		if i == 0 {
			gt = g
			continue
		}
		if g.W != gt.W || g.H != gt.H {
			return gt, fmt.Errorf("%s: %dx%d, but %s is %dx%d", path, g.W, g.H, p.Masks[0], gt.W, gt.H)
		}
		for j, v := range g.Pix {
			gt.Pix[j] = max(gt.Pix[j], v)
		}
	}
	return gt, nil
}

// writeResults prints the task's table and writes metrics.{md,csv,json} and per_image.csv;
// leftOut lists the samples that could not be scored.
func writeResults(w io.Writer, out, name string, res metrics.Results, task string, leftOut []string) error {
	vals, err := res.Task(task)
	if err != nil {
		return usagef("--task", "%v", err)
	}
	md := fmt.Sprintf("| %s (%d images, %s convention) | value |\n|---|---:|\n", name, res.Images, res.Convention)
	csv := "dataset,metric,value,convention\n"
	fmt.Fprintf(w, "%s: %d images, %s convention\n", name, res.Images, res.Convention)
	for _, v := range vals {
		fmt.Fprintf(w, "  %-8s %.4f\n", v.Column, v.Value)
		md += fmt.Sprintf("| %s | %.4f |\n", v.Column, v.Value)
		csv += fmt.Sprintf("%s,%s,%.6f,%s\n", name, v.Column, v.Value, res.Convention)
	}
	for _, v := range vals {
		if v.Note != "" {
			md += fmt.Sprintf("\n%s: %s\n", v.Column, v.Note)
		}
	}
	if len(leftOut) > 0 {
		md += fmt.Sprintf("\n%d samples could not be used and are not scored:\n\n", len(leftOut))
		for _, l := range leftOut {
			md += "- " + l + "\n"
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "metrics.md"), []byte(md)); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "metrics.csv"), []byte(csv)); err != nil {
		return err
	}
	all := map[string]any{"dataset": name, "convention": res.Convention, "images": res.Images, "task": task, "table": jsonTable(vals), "all": jsonValues(res.Values)}
	if len(leftOut) > 0 {
		all["left_out"] = leftOut
	}
	if err := writeJSONAtomic(filepath.Join(out, "metrics.json"), all); err != nil {
		return err
	}
	return atomicfile.WriteFunc(filepath.Join(out, "per_image.csv"), res.WriteCSV)
}

// notLabelCoded refuses a ground-truth mask holding only 0 and one value k < 128 — a 0/1 label
// map — which every metric's threshold would read as empty: training refuses such masks too
// (data.ErrLabelCoded), so scores would otherwise be silently wrong where training stops.
func notLabelCoded(path string, g metrics.Gray) error {
	var seen [256]bool
	n := 0
	for _, v := range g.Pix {
		if !seen[v] {
			seen[v] = true
			if n++; n > 2 {
				return nil
			}
		}
	}
	if n != 2 || !seen[0] {
		return nil
	}
	for k := 1; k < data.MaskThreshold; k++ {
		if seen[k] {
			return fmt.Errorf("%s: %w: only 0 and %d; rescale the masks to 0/255", path, data.ErrLabelCoded, k)
		}
	}
	return nil
}

// sortSamplesByDice orders samples from worst to best Dice at 0.5.
func sortSamplesByDice(s []reportSample) {
	for i := range s {
		s[i].dice = diceAt128(s[i].pred, s[i].gt.Pix)
	}
	sort.SliceStable(s, func(i, j int) bool { return s[i].dice < s[j].dice })
}

func diceAt128(pred, gt []uint8) float64 {
	var tp, fp, fn int
	for i, p := range pred {
		pp, gg := p >= 128, gt[i] > 128
		switch {
		case pp && gg:
			tp++
		case pp:
			fp++
		case gg:
			fn++
		}
	}
	if tp+fp+fn == 0 {
		return 1
	}
	return 2 * float64(tp) / float64(2*tp+fp+fn)
}

// signalContext is cancelled by Ctrl-C, SIGTERM or SIGHUP (a closed terminal or ssh session,
// which would otherwise kill the run and lose its partial epoch): the command stops at its next
// safe point (training saves its position first), and says so at once. A second signal ends the process at once with exit 130,
// so that nothing — a read that never returns, a stuck device — can leave chnet deaf to Ctrl-C
// (issue 9, case 8); atomic writes keep every file whole even then.
func signalContext(parent context.Context, w io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// On a terminal the progress line has no newline yet: the acknowledgement starts a line of
	// its own rather than trailing the bar, where the next redraw would bury it.
	nl := ""
	if tty, _, _ := terminalOf(w); tty {
		nl = "\n"
	}
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(w, "%schnet: %v: stopping at the next safe point (training: after the step in progress, saving its position); again to stop at once\n", nl, s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(w, "chnet: %v again: stopping now\n", s)
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}
