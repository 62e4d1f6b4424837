package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/chnet/chnet/internal/atomicfile"

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
the image with the predicted region tinted.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Required: true, Usage: "checkpoint (.safetensors from chnet train, or an official CHNet .pth)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "predictions", Usage: "output folder"},
			&cli.Float64Flag{Name: "threshold", Usage: "also write <name>_mask.png: 255 where probability ≥ threshold (e.g. 0.5)"},
			&cli.BoolFlag{Name: "overlay", Usage: "also write <name>_overlay.png"},
			&cli.IntFlag{Name: "size", Usage: "inference size (default: the checkpoint's training size, else 352)"},
		}, modelFlags()...),
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
	th := c.Float64("threshold")
	if c.IsSet("threshold") && !(th > 0 && th < 1) {
		return usagef("--threshold", "must be in (0, 1), got %v", th)
	}
	var inputs []string
	for _, arg := range c.Args().Slice() {
		files, _, err := data.ListImages(arg)
		if err != nil {
			return dataErr(err)
		}
		inputs = append(inputs, files...)
	}
	if len(inputs) == 0 {
		return dataErr(fmt.Errorf("no images found in %v", c.Args().Slice()))
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	lm, err := loadModel(c, b, c.String("model"))
	if err != nil {
		return err
	}
	out := c.String("out")
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
	ctx, stop := signalContext(c.Context)
	defer stop()
	seen := map[string]string{}
	for _, path := range inputs {
		if err := ctx.Err(); err != nil {
			return classified{exitInterrupted, err}
		}
		in, prob, err := lm.predictFile(b, path)
		if err != nil {
			return err
		}
		if prev, dup := seen[in.Name]; dup {
			return dataErr(fmt.Errorf("%s and %s would both write %s.png", prev, path, in.Name))
		}
		seen[in.Name] = path
		grey := data.Grey(prob)
		if err := data.WriteGreyPNG(filepath.Join(out, in.Name+".png"), in.W, in.H, grey); err != nil {
			return err
		}
		if c.IsSet("threshold") {
			mask := make([]uint8, len(prob))
			for i, p := range prob {
				if float64(p) >= th {
					mask[i] = 255
				}
			}
			if err := data.WriteGreyPNG(filepath.Join(out, in.Name+"_mask.png"), in.W, in.H, mask); err != nil {
				return err
			}
		}
		if c.Bool("overlay") {
			if err := writeOverlay(filepath.Join(out, in.Name+"_overlay.png"), path, prob); err != nil {
				return err
			}
		}
		fmt.Fprintln(c.App.Writer, filepath.Join(out, in.Name+".png"))
	}
	return nil
}

// writeOverlay tints the image red in proportion to the predicted probability.
func writeOverlay(dst, src string, prob []float32) error {
	img, err := data.DecodeImage(src, data.Limits{})
	if err != nil {
		return dataErr(err)
	}
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i := 0; i < img.W*img.H; i++ {
		a := float64(min(max(prob[i], 0), 1)) * 0.6
		r := float64(img.Pix[3*i])*(1-a) + 255*a
		g := float64(img.Pix[3*i+1]) * (1 - a)
		bl := float64(img.Pix[3*i+2]) * (1 - a)
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = uint8(r), uint8(g), uint8(bl), 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return err
	}
	return atomicfile.Write(dst, buf.Bytes())
}
