package train

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestRecordsRoundTripTruncateAndPlot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.jsonl")
	for e := 1; e <= 5; e++ {
		r := EpochRecord{Epoch: e, LR: TriangularLR(0.05, e-1, 5), TrainLoss: 1 / float64(e), Seconds: 10, Val: map[string]float64{"dice": 0.1 * float64(e)}}
		if err := AppendRecord(path, r); err != nil {
			t.Fatal(err)
		}
	}
	// A crash in the middle of writing a line leaves a torn tail, which readers drop.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"epoch": 6, "lr"`)
	f.Close()
	rs, err := ReadRecords(path)
	if err != nil || len(rs) != 5 || rs[4].Val["dice"] != 0.5 {
		t.Fatalf("read %d records (%v), err %v", len(rs), rs, err)
	}
	if err := TruncateRecords(path, 3); err != nil {
		t.Fatal(err)
	}
	if rs, _ = ReadRecords(path); len(rs) != 3 {
		t.Fatalf("after truncation to epoch 3: %d records", len(rs))
	}
	png1 := filepath.Join(dir, "progress.png")
	if err := PlotProgress(png1, rs); err != nil {
		t.Fatal(err)
	}
	pf, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	cfg, err := png.DecodeConfig(pf)
	if err != nil || cfg.Width < 500 || cfg.Height < 500 {
		t.Fatalf("progress.png: %+v, %v", cfg, err)
	}
}
