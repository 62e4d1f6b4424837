package train

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"github.com/chnet/chnet/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotProgress draws a run's curves into a PNG with four panels, as nnU-Net's progress.png
// (whose Dice shares the loss axis; here it has its own 0–1 axis, where it is not squashed):
// training and validation loss, validation Dice, epoch time, and learning rate. The file is
// written to a temporary name and renamed, so readers never see a half-drawn image.
func PlotProgress(path string, rs []EpochRecord) error {
	if len(rs) == 0 {
		return nil
	}
	panels, err := progressPanels(rs)
	if err != nil {
		return err
	}
	const w, h = 9 * vg.Inch, 13 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	for i, p := range panels {
		p.Draw(tiles.At(dc, 0, i))
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("draw: %w", err)
		}
		return nil
	})
}

var palette = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

// progressPanels are progress.png's panels, top to bottom.
func progressPanels(rs []EpochRecord) ([]*plot.Plot, error) {
	// curves draws the named series that have points; a record without a value (an epoch not
	// validated, or a value that overflowed) leaves a gap in the points, not a zero.
	curves := func(title, ylabel string, names []string, get func(EpochRecord, string) (float64, bool)) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = ylabel
		for i, name := range names {
			var xy plotter.XYs
			for _, r := range rs {
				if v, ok := get(r, name); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
					xy = append(xy, plotter.XY{X: float64(r.Epoch), Y: v})
				}
			}
			if len(xy) == 0 {
				continue
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, err
			}
			l.Color = palette[i%len(palette)]
			l.Width = vg.Points(1.5)
			p.Add(l)
			if len(names) > 1 {
				p.Legend.Add(name, l)
			}
		}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		return p, nil
	}
	val := func(r EpochRecord, k string) (float64, bool) { v, ok := r.Val[k]; return v, ok }
	loss, err := curves("loss", "loss", []string{"train loss", "val loss"}, func(r EpochRecord, name string) (float64, bool) {
		if name == "train loss" {
			return r.TrainLoss, true
		}
		return val(r, "loss")
	})
	if err != nil {
		return nil, err
	}
	dice, err := curves("validation Dice", "Dice", []string{"val dice", "val iou"}, func(r EpochRecord, name string) (float64, bool) {
		return val(r, name[len("val "):])
	})
	if err != nil {
		return nil, err
	}
	dice.Y.Min, dice.Y.Max = 0, 1
	if !hasVal(rs) {
		dice.Title.Text = "validation Dice (no validation set)"
	}
	secs, err := curves("epoch time", "seconds", []string{"time"}, func(r EpochRecord, _ string) (float64, bool) { return r.Seconds, true })
	if err != nil {
		return nil, err
	}
	secs.Y.Min = 0 // show the time's scale, not its jitter
	lr, err := curves("learning rate", "lr", []string{"lr"}, func(r EpochRecord, _ string) (float64, bool) { return r.LR, true })
	if err != nil {
		return nil, err
	}
	return []*plot.Plot{loss, dice, secs, lr}, nil
}

func hasVal(rs []EpochRecord) bool {
	for _, r := range rs {
		if _, ok := r.Val["dice"]; ok {
			return true
		}
	}
	return false
}
