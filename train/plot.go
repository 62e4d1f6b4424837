package train

import (
	"fmt"
	"image/color"
	"io"
	"sort"

	"github.com/chnet/chnet/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotProgress draws a run's curves into a PNG with three panels, as nnU-Net's progress.png:
// training (and validation) loss with validation Dice, epoch time, and learning rate. The file is
// written to a temporary name and renamed, so readers never see a half-drawn image.
func PlotProgress(path string, rs []EpochRecord) error {
	if len(rs) == 0 {
		return nil
	}
	loss := plot.New()
	loss.Title.Text = "loss and validation metrics"
	loss.X.Label.Text = "epoch"
	series := map[string]plotter.XYs{"train loss": nil}
	for _, r := range rs {
		series["train loss"] = append(series["train loss"], plotter.XY{X: float64(r.Epoch), Y: r.TrainLoss})
		for k, v := range r.Val {
			series["val "+k] = append(series["val "+k], plotter.XY{X: float64(r.Epoch), Y: v})
		}
	}
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	sort.Strings(names)
	palette := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}}
	for i, name := range names {
		if name != "train loss" && name != "val loss" && name != "val dice" && name != "val mdice" {
			continue // keep the panel readable: loss and Dice only
		}
		l, err := plotter.NewLine(series[name])
		if err != nil {
			return err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		loss.Add(l)
		loss.Legend.Add(name, l)
	}
	loss.Legend.Top = true
	loss.Add(plotter.NewGrid())

	line := func(title, ylabel string, f func(EpochRecord) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = ylabel
		xy := make(plotter.XYs, len(rs))
		for i, r := range rs {
			xy[i] = plotter.XY{X: float64(r.Epoch), Y: f(r)}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Width = vg.Points(1.5)
		p.Add(l, plotter.NewGrid())
		return p, nil
	}
	secs, err := line("epoch time", "seconds", func(r EpochRecord) float64 { return r.Seconds })
	if err != nil {
		return err
	}
	secs.Y.Min = 0 // show the time's scale, not its jitter
	lr, err := line("learning rate", "lr", func(r EpochRecord) float64 { return r.LR })
	if err != nil {
		return err
	}

	const w, h = 9 * vg.Inch, 10 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	for i, p := range []*plot.Plot{loss, secs, lr} {
		p.Draw(tiles.At(dc, 0, i))
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("draw: %w", err)
		}
		return nil
	})
}
