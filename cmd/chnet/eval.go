package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/train/data"
	"github.com/chnet/chnet/train/metrics"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "score saved probability maps of any method against ground-truth masks",
		Description: `Pairs --pred and --gt files by base name (extensions may differ) and computes the
metrics of --task under --convention. Maps must have their mask's size unless --resize-pred is
given (CHNet's eval.py resizes them; PySODMetrics and the MATLAB toolbox expect equal sizes).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "pred", Required: true, Usage: "folder of predicted maps (8-bit grey PNG/JPEG)"},
			&cli.StringFlag{Name: "gt", Required: true, Usage: "folder of ground-truth masks (or a dataset folder with masks/)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "also write metrics.{md,csv,json} and per_image.csv here"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "stdout format: table, markdown, csv or json"},
			&cli.BoolFlag{Name: "resize-pred", Usage: "resize maps to their mask's size (bilinear) instead of refusing"},
			&cli.StringFlag{Name: "name", Usage: "data set name the results are labelled with", DefaultText: "the --gt data set folder's name"},
		}, append(testOutputFlags(), limitFlags()...)...),
		Action: evalAction,
	}
}

func evalAction(c *cli.Context) error {
	conv, err := metrics.ParseConvention(c.String("convention"))
	if err != nil {
		return usagef("--convention", "%v", err)
	}
	gtDir := c.String("gt")
	if st, err := os.Stat(filepath.Join(gtDir, "masks")); err == nil && st.IsDir() {
		gtDir = filepath.Join(gtDir, "masks")
	}
	preds, err := byStem(c.String("pred"))
	if err != nil {
		return err
	}
	gts, err := byStem(gtDir)
	if err != nil {
		return err
	}
	var missing []string
	for stem := range gts {
		if _, ok := preds[stem]; !ok {
			missing = append(missing, stem)
		}
	}
	if len(missing) > 0 {
		return dataErr(fmt.Errorf("%d masks in %s have no map in %s, e.g. %s", len(missing), gtDir, c.String("pred"), strings.Join(firstN(missing, 5), ", ")))
	}
	if len(gts) == 0 {
		return dataErr(fmt.Errorf("%s: no masks found", gtDir))
	}
	ev, err := metrics.New(conv)
	if err != nil {
		return err
	}
	lim, err := limits(c)
	if err != nil {
		return err
	}
	// Every pair is read before anything is scored, and every problem listed at once: scores of
	// a subset would pass for the whole.
	var problems []string
	for _, stem := range sortedKeys(gts) {
		if err := addPair(c, ev, stem, gts[stem], preds[stem], lim); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), "metrics: "))
		}
	}
	if len(problems) > 0 {
		return dataErr(fmt.Errorf("%d of %d pairs cannot be scored; nothing was scored:%s", len(problems), len(gts), listing(problems)))
	}
	res := ev.Result()
	name := datasetName(c.String("gt"))
	if c.IsSet("name") {
		name = c.String("name")
	}
	if out := c.String("out"); out != "" {
		if err := writeResults(c.App.ErrWriter, out, name, res, c.String("task"), nil); err != nil {
			return err
		}
	}
	vals, err := res.Task(c.String("task"))
	if err != nil {
		return usagef("--task", "%v", err)
	}
	w := c.App.Writer
	switch c.String("format") {
	case "table":
		fmt.Fprintf(w, "%s: %d images, %s convention\n", name, res.Images, res.Convention)
		for _, v := range vals {
			fmt.Fprintf(w, "  %-8s %.4f\n", v.Column, v.Value)
		}
	case "markdown":
		fmt.Fprintf(w, "| %s |", "dataset")
		for _, v := range vals {
			fmt.Fprintf(w, " %s |", v.Column)
		}
		fmt.Fprintf(w, "\n|---|%s\n| %s |", strings.Repeat("---:|", len(vals)), name)
		for _, v := range vals {
			fmt.Fprintf(w, " %.4f |", v.Value)
		}
		fmt.Fprintln(w)
	case "csv":
		fmt.Fprintln(w, "dataset,metric,value,convention")
		for _, v := range vals {
			fmt.Fprintf(w, "%s,%s,%.6f,%s\n", name, v.Column, v.Value, res.Convention)
		}
	case "json":
		return writeJSON(w, map[string]any{"dataset": name, "convention": res.Convention, "images": res.Images, "table": jsonTable(vals), "all": jsonValues(res.Values)})
	default:
		return usagef("--format", "must be table, markdown, csv or json, got %q", c.String("format"))
	}
	return nil
}

// addPair reads a mask and its map and adds them to ev.
func addPair(c *cli.Context, ev *metrics.Evaluator, stem, gtPath, predPath string, lim data.Limits) error {
	gt, err := metrics.ReadGrayLimited(gtPath, lim.MaxPixels)
	if err != nil {
		return err
	}
	if err := notLabelCoded(gtPath, gt); err != nil {
		return err
	}
	pred, err := metrics.ReadGrayLimited(predPath, lim.MaxPixels)
	if err != nil {
		return err
	}
	if pred.W != gt.W || pred.H != gt.H {
		if !c.Bool("resize-pred") {
			return fmt.Errorf("%s is %dx%d but its mask %s is %dx%d (use --resize-pred to resize maps)", predPath, pred.W, pred.H, gtPath, gt.W, gt.H)
		}
		pred = resizeGray(pred, gt.W, gt.H)
	}
	return ev.Add(stem, pred.Pix, gt.Pix, gt.W, gt.H)
}

// byStem lists a folder's image files by base name; two files with one stem are an error.
func byStem(dir string) (map[string]string, error) {
	files, _, err := data.ListImages(dir)
	if err != nil {
		return nil, dataErr(err)
	}
	out := map[string]string{}
	for _, f := range files {
		stem := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if prev, dup := out[stem]; dup {
			return nil, dataErr(fmt.Errorf("%s and %s share the name %q", prev, f, stem))
		}
		out[stem] = f
	}
	return out, nil
}

// resizeGray resizes an 8-bit map bilinearly (the same resize as training), rounding to 8 bits.
func resizeGray(g metrics.Gray, w, h int) metrics.Gray {
	src := make([]float32, len(g.Pix))
	for i, v := range g.Pix {
		src[i] = float32(v)
	}
	dst := make([]float32, w*h)
	if err := data.Resize(dst, w, h, src, g.W, g.H, 1); err != nil {
		return g
	}
	out := metrics.Gray{W: w, H: h, Pix: make([]uint8, w*h)}
	for i, v := range dst {
		out.Pix[i] = uint8(min(max(v+0.5, 0), 255))
	}
	return out
}

// datasetName labels eval's results: the data set folder's name (Kvasir for Kvasir/masks or
// Kvasir), not the prediction folder's, which is often just "maps" (issue 11, point 5).
func datasetName(gt string) string {
	gt = filepath.Clean(gt)
	if filepath.Base(gt) == "masks" {
		return filepath.Base(filepath.Dir(gt))
	}
	return filepath.Base(gt)
}
