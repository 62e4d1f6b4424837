package experiment

import (
	"fmt"
	"image/color"
	"io"

	"github.com/chnet/chnet/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// barErrors are bar tops (x = the bar's index) with the seeds' standard deviation, for error bars.
type barErrors []struct{ x, mean, std float64 }

func (b barErrors) Len() int                        { return len(b) }
func (b barErrors) XY(i int) (float64, float64)     { return b[i].x, b[i].mean }
func (b barErrors) YError(i int) (float64, float64) { return b[i].std, b[i].std }

// PlotPanels draws the decoupling study's panels (Fig. 3(a), 3(b), 4(a), 4(b)) side by side as
// bar charts of test mDice, with the seeds' standard deviation as error bars where there are
// several; a run not finished has no bar. The PNG is written atomically.
func PlotPanels(path string, panels []Panel) error {
	if len(panels) == 0 {
		return nil
	}
	colors := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}}
	var plots []*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Figure + ": " + pn.Title
		p.Y.Label.Text = "test mDice"
		p.Y.Min, p.Y.Max = 0, 1
		names := make([]string, len(pn.Bars))
		spread := false
		for i, b := range pn.Bars {
			names[i] = b.Label
			if b.Stat.N == 0 {
				names[i] += " (not run)"
				continue
			}
			spread = spread || b.Stat.N > 1
			bar, err := plotter.NewBarChart(plotter.Values{b.Stat.Mean}, vg.Points(28))
			if err != nil {
				return err
			}
			bar.XMin = float64(i)
			bar.Color = colors[i%len(colors)]
			bar.LineStyle.Width = 0
			p.Add(bar)
			lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: []plotter.XY{{X: float64(i), Y: b.Stat.Mean}}, Labels: []string{fmt.Sprintf("%.3f", b.Stat.Mean)}})
			if err != nil {
				return err
			}
			lbl.Offset = vg.Point{X: -vg.Points(10), Y: vg.Points(3)}
			p.Add(lbl)
		}
		if spread {
			var have barErrors
			for i, b := range pn.Bars {
				if b.Stat.N > 0 {
					have = append(have, struct{ x, mean, std float64 }{float64(i), b.Stat.Mean, b.Stat.Std})
				}
			}
			eb, err := plotter.NewYErrorBars(have)
			if err != nil {
				return err
			}
			p.Add(eb)
		}
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.6, float64(len(pn.Bars))-0.4
		p.Add(plotter.NewGrid())
		plots = append(plots, p)
	}
	cols := 2
	rows := (len(plots) + cols - 1) / cols
	w, h := 12*vg.Inch, vg.Length(rows)*4.5*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 6, PadTop: vg.Millimeter * 3,
		PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	for i, p := range plots {
		p.Draw(tiles.At(dc, i%cols, i/cols))
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("draw %s: %w", path, err)
		}
		return nil
	})
}
