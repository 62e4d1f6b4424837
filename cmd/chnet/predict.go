package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/internal/atomicfile"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "segment images: probability maps at each image's own size",
		ArgsUsage: "IMAGE-OR-FOLDER...",
		Description: `Writes OUT/<name>.png, the sigmoid probability × 255 as 8-bit grey, resized back to
the image's size. Maps are not min-max normalised (PraNet's test script does that, which turns
an all-background map into false positives). --threshold also writes binary masks, --overlay
the image with the predicted region outlined.`,
		Flags: append([]cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output folder", DefaultText: "predictions-<checkpoint> beside the checkpoint (in its run folder)"},
			forceFlag(),
			&cli.Float64Flag{Name: "threshold", Usage: "also write <name>_mask.png: 255 where probability ≥ threshold (e.g. 0.5)"},
			&cli.BoolFlag{Name: "overlay", Usage: "also write <name>_overlay.png: the image with the predicted region outlined in blue (at --threshold, else 0.5)"},
			ttaFlag(),
			&cli.IntFlag{Name: "size", Usage: "inference size", DefaultText: "the checkpoint's training size, else 352"},
		}, append(limitFlags(), modelFlags()...)...),
		Action: predictAction,
	}
}

func predictAction(c *cli.Context) error {
	if err := flagsAfterArgs(c); err != nil {
		return err
	}
	if c.NArg() == 0 {
		return usageErr(fmt.Errorf("name at least one image or folder"))
	}
	if _, err := backendName(c); err != nil {
		return err
	}
	th := c.Float64("threshold")
	if c.IsSet("threshold") && !(th > 0 && th < 1) {
		return usagef("--threshold", "must be in (0, 1), got %v", th)
	}
	lim, err := limits(c)
	if err != nil {
		return err
	}
	var inputs, args []string
	for _, arg := range c.Args().Slice() {
		// A data set folder, in any layout test reads, is read as its images.
		if lay, err := data.DetectLayout(arg); err == nil {
			arg = lay.Images
		}
		args = append(args, arg)
		files, _, err := data.ListImages(arg)
		if err != nil {
			return dataErr(err)
		}
		inputs = append(inputs, files...)
	}
	if len(inputs) == 0 {
		return dataErr(fmt.Errorf("no images found in %v", c.Args().Slice()))
	}
	out := outFolder(c, "predictions")
	suffixes := []string{""}
	if c.IsSet("threshold") {
		suffixes = append(suffixes, "_mask")
	}
	if c.Bool("overlay") {
		suffixes = append(suffixes, "_overlay")
	}
	skip, err := checkOutputs(out, args, inputs, suffixes)
	if err != nil {
		return err
	}
	var existing []string
	for _, in := range inputs {
		for _, suf := range suffixes {
			if p := filepath.Join(out, outputName(in, suf)); fileExists(p) {
				existing = append(existing, p)
			}
		}
	}
	if err := refuseOverwrite(c, out, existing); err != nil {
		return err
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	lm, err := loadModels(c, b, c.StringSlice("model"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	release, temps, err := claimFolder(out, "--out", 0)
	if err != nil {
		return err
	}
	defer release()
	for _, p := range temps {
		fmt.Fprintf(c.App.ErrWriter, "removed %s, left by a write that was killed\n", p)
	}
	ctx, stop := signalContext(c.Context, c.App.ErrWriter)
	defer stop()
	// A bad image is listed and skipped; the others are still done (issue 9, case 11).
	var bad []string
	for _, path := range inputs {
		if err := ctx.Err(); err != nil {
			return classified{exitInterrupted, err}
		}
		if why, ok := skip[path]; ok {
			bad = append(bad, why)
			continue
		}
		err := predictOne(c, b, lm, path, out, lim)
		if isDataErr(err) {
			bad = append(bad, strings.TrimPrefix(err.Error(), "data: "))
			continue
		}
		if err != nil {
			return err
		}
	}
	return leftOutErr(bad)
}

// outputName is the file predict writes for an input with a suffix ("", "_mask", "_overlay").
func outputName(input, suffix string) string {
	base := filepath.Base(input)
	return strings.TrimSuffix(base, filepath.Ext(base)) + suffix + ".png"
}

// checkOutputs refuses, before any work, a prediction that would overwrite one of its inputs
// (--out naming an input folder did: issue 9, case 2). Inputs whose outputs would collide —
// x.png's mask and the map of an input named x_mask.png, or x.jpg and x.png — are returned with
// why, to be left out and listed rather than have one silently overwrite the other.
func checkOutputs(out string, args, inputs, suffixes []string) (map[string]string, error) {
	if ost, err := os.Stat(out); err == nil {
		for _, a := range args {
			if ast, err := os.Stat(a); err == nil && ast.IsDir() && os.SameFile(ost, ast) {
				return nil, usagef("--out", "%s is an input folder: the maps would be written among (and over) the images; choose another folder", out)
			}
		}
	}
	inputAt := map[string]string{}
	var inputStat []os.FileInfo
	for _, in := range inputs {
		if abs, err := filepath.Abs(in); err == nil {
			inputAt[abs] = in
		}
		if st, err := os.Stat(in); err == nil {
			inputStat = append(inputStat, st)
		}
	}
	writers := map[string][]string{} // output name → the inputs that would write it
	for _, in := range inputs {
		for _, suf := range suffixes {
			name := outputName(in, suf)
			dst := filepath.Join(out, name)
			abs, err := filepath.Abs(dst)
			if err != nil {
				return nil, err
			}
			if src, ok := inputAt[abs]; ok {
				return nil, usagef("--out", "%s would overwrite the input %s; choose another folder", dst, src)
			}
			if dst, err := os.Stat(dst); err == nil {
				for _, st := range inputStat {
					if os.SameFile(dst, st) {
						return nil, usagef("--out", "%s is one of the inputs (through a link); choose another folder", filepath.Join(out, name))
					}
				}
			}
			writers[name] = append(writers[name], in)
		}
	}
	skip := map[string]string{}
	for name, ins := range writers {
		if len(ins) > 1 {
			for _, in := range ins {
				skip[in] = fmt.Sprintf("%s: %s would both write %s; rename one of them", in, strings.Join(ins, " and "), filepath.Join(out, name))
			}
		}
	}
	return skip, nil
}

// predictOne writes the map (and mask and overlay, if asked) of one image.
func predictOne(c *cli.Context, b ops.Backend, lm *loadedModel, path, out string, lim data.Limits) error {
	in, prob, err := lm.predictFile(b, path, lim)
	if err != nil {
		return err
	}
	if err := data.WriteGreyPNG(filepath.Join(out, outputName(path, "")), in.W, in.H, data.Grey(prob)); err != nil {
		return err
	}
	if c.IsSet("threshold") {
		th := c.Float64("threshold")
		mask := make([]uint8, len(prob))
		for i, p := range prob {
			if float64(p) >= th {
				mask[i] = 255
			}
		}
		if err := data.WriteGreyPNG(filepath.Join(out, outputName(path, "_mask")), in.W, in.H, mask); err != nil {
			return err
		}
	}
	if c.Bool("overlay") {
		th := 0.5
		if c.IsSet("threshold") {
			th = c.Float64("threshold")
		}
		if err := writeOverlay(filepath.Join(out, outputName(path, "_overlay")), path, prob, th, lim); err != nil {
			return err
		}
	}
	fmt.Fprintln(c.App.Writer, filepath.Join(out, outputName(path, "")))
	return nil
}

// writeOverlay draws the outline of the predicted region (probability ≥ threshold) over the image.
func writeOverlay(dst, src string, prob []float32, threshold float64, lim data.Limits) error {
	img, err := data.DecodeImage(src, lim)
	if err != nil {
		return dataErr(err)
	}
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	pred := make([]bool, img.W*img.H)
	for i := range pred {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2], 255
		pred[i] = float64(prob[i]) >= threshold
	}
	drawContours(out, nil, pred)
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return err
	}
	return atomicfile.Write(dst, buf.Bytes())
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
