package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"

	"github.com/chnet/chnet/internal/atomicfile"

	"github.com/chnet/chnet/train/data"
	"github.com/chnet/chnet/train/metrics"
)

// rawDiceName names the per-sample Dice of the report, the one value computed here rather than
// by a convention: each Dice definition has its own name (issue 11, point 5).
const (
	rawDiceName       = "Dice@0.5 of the raw map"
	rawDiceDefinition = "the map as saved (probability × 255, not normalised) ≥ 128, against the mask > 128: 2|P∩G|/(|P|+|G|), 1 when both are empty"
)

// tableColumnOf is " (the table's mDice)" when key feeds a column of the task's table.
func tableColumnOf(tv []metrics.TaskValue, key string) string {
	for _, v := range tv {
		if v.Key == key {
			return " (the table's " + v.Column + ")"
		}
	}
	return ""
}

// reportSample is one test image with its ground truth and predicted map (8-bit, full size).
type reportSample struct {
	name, image string
	gt          metrics.Gray
	pred        []uint8
	dice        float64
}

// writeReport writes report.md: the scores, then the worst and best predictions as panels of
// image, ground truth, predicted map and overlay (outlines: overlayLegend).
func writeReport(out, name, task string, res metrics.Results, samples []reportSample) error {
	dir := filepath.Join(out, "report")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sortSamplesByDice(samples)
	pick := samples
	if len(samples) > 8 {
		pick = append(append([]reportSample{}, samples[:4]...), samples[len(samples)-4:]...)
	}
	md := fmt.Sprintf("# %s\n\n%d images, %s convention. Panels: image, ground truth, predicted map, overlay (%s).\n\n", name, res.Images, res.Convention, overlayLegend)
	// The paper's columns first; every metric of the convention after them.
	tv, err := res.Task(task)
	if err != nil {
		return err
	}
	md += fmt.Sprintf("| %s metrics | value |\n|---|---:|\n", task)
	for _, v := range tv {
		md += fmt.Sprintf("| %s | %.4f |\n", v.Column, v.Value)
	}
	md += "\n<details><summary>every metric of the convention</summary>\n\n| metric | value |\n|---|---:|\n"
	for _, k := range res.Keys() {
		md += fmt.Sprintf("| %s | %.4f |\n", k, res.Values[k])
	}
	md += "\n</details>\n"
	md += "\n## Which Dice is which\n\n"
	md += "- **" + rawDiceName + "** (the samples below): " + rawDiceDefinition + ".\n"
	for _, k := range res.Keys() {
		if d := metrics.Definition(res.Convention, k); d != "" {
			md += fmt.Sprintf("- **%s**%s: %s.\n", k, tableColumnOf(tv, k), d)
		}
	}
	md += "\n## Samples (worst first, by " + rawDiceName + ")\n\n"
	for _, s := range pick {
		img, err := data.DecodeImage(s.image, data.Limits{})
		if err != nil {
			return err
		}
		panel := composite(img, s.gt, s.pred)
		file := s.name + ".png"
		var buf bytes.Buffer
		if err := png.Encode(&buf, panel); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, file), buf.Bytes()); err != nil {
			return err
		}
		md += fmt.Sprintf("**%s** — %s %.3f\n\n![%s](report/%s)\n\n", s.name, rawDiceName, s.dice, s.name, file)
	}
	return atomicfile.Write(filepath.Join(out, "report.md"), []byte(md))
}

// composite lays out four panels side by side, each scaled (nearest neighbour) to 256 px high.
func composite(img *data.RGB, gt metrics.Gray, pred []uint8) image.Image {
	const ph = 256
	pw := max(1, img.W*ph/img.H)
	out := image.NewRGBA(image.Rect(0, 0, 4*pw+12, ph))
	for y := 0; y < ph; y++ {
		sy := y * img.H / ph
		for x := 0; x < pw; x++ {
			sx := x * img.W / pw
			i := sy*img.W + sx
			out.Set(x, y, color.RGBA{img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2], 255})
			m := gt.Pix[i]
			out.Set(pw+4+x, y, color.RGBA{m, m, m, 255})
			p := pred[i]
			out.Set(2*pw+8+x, y, color.RGBA{p, p, p, 255})
		}
	}
	// The overlay: the image with both outlines, drawn at the panel's size.
	ov := image.NewRGBA(image.Rect(0, 0, pw, ph))
	gtIn, predIn := make([]bool, pw*ph), make([]bool, pw*ph)
	for y := 0; y < ph; y++ {
		sy := y * img.H / ph
		for x := 0; x < pw; x++ {
			i := sy*img.W + x*img.W/pw
			ov.SetRGBA(x, y, color.RGBA{img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2], 255})
			gtIn[y*pw+x], predIn[y*pw+x] = gt.Pix[i] > 128, pred[i] >= 128
		}
	}
	drawContours(ov, gtIn, predIn)
	for y := 0; y < ph; y++ {
		for x := 0; x < pw; x++ {
			out.SetRGBA(3*pw+12+x, y, ov.RGBAAt(x, y))
		}
	}
	return out
}
