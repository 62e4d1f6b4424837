package train

import (
	"os"
	"path/filepath"
	"testing"
)

// Issue 11, point 8: Dice (0–1) shared the loss axis, squashed. It has its own panel, 0 to 1;
// an epoch without validation leaves no point (not a zero).
func TestProgressPanels(t *testing.T) {
	rs := []EpochRecord{
		{Epoch: 1, TrainLoss: 40, LR: 0.01, Seconds: 3},
		{Epoch: 2, TrainLoss: 20, LR: 0.02, Seconds: 3, Val: map[string]float64{"dice": 0.4, "iou": 0.3, "loss": 30}},
	}
	ps, err := progressPanels(rs)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, p := range ps {
		titles = append(titles, p.Title.Text)
	}
	want := []string{"loss", "validation Dice", "epoch time", "learning rate"}
	if len(titles) != len(want) {
		t.Fatalf("panels %q, want %q", titles, want)
	}
	for i := range want {
		if titles[i] != want[i] {
			t.Errorf("panel %d: %q, want %q", i, titles[i], want[i])
		}
	}
	if d := ps[1]; d.Y.Min != 0 || d.Y.Max != 1 {
		t.Errorf("the Dice axis is %v..%v, want 0..1", d.Y.Min, d.Y.Max)
	}
	if ps[0].Y.Max < 40 || ps[0].Y.Min > 20 {
		t.Errorf("the loss axis %v..%v does not span the losses", ps[0].Y.Min, ps[0].Y.Max)
	}
	path := filepath.Join(t.TempDir(), "progress.png")
	if err := PlotProgress(path, rs); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("progress.png: %v", err)
	}
}
