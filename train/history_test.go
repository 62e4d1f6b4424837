package train

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
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

// A validation that overflowed (eval-mode BN early in training) once ended the run with "json:
// unsupported value: NaN". Non-finite values are written as null and read back as NaN; the
// plot skips them.
func TestRecordsKeepNonFiniteValues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.jsonl")
	recs := []EpochRecord{
		{Epoch: 1, LR: 0.01, TrainLoss: 1.5, Seconds: 3, Val: map[string]float64{"dice": math.NaN(), "loss": math.Inf(1)}},
		{Epoch: 2, LR: 0.02, TrainLoss: 1.2, Seconds: 3, ImagesPerSec: math.Inf(1), Val: map[string]float64{"dice": 0.25, "loss": 0.75}},
	}
	for _, r := range recs {
		if err := AppendRecord(path, r); err != nil {
			t.Fatalf("epoch %d: %v", r.Epoch, err)
		}
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"dice":null`) || !strings.Contains(string(raw), `"images_per_sec":null`) {
		t.Fatalf("metrics.jsonl does not write the non-finite values as null:\n%s", raw)
	}
	rs, err := ReadRecords(path)
	if err != nil || len(rs) != 2 {
		t.Fatalf("read %d records, err %v", len(rs), err)
	}
	if !math.IsNaN(rs[0].Val["dice"]) || !math.IsNaN(rs[0].Val["loss"]) || !math.IsNaN(rs[1].ImagesPerSec) {
		t.Errorf("non-finite values read back as %v, %v, %v; want NaN", rs[0].Val["dice"], rs[0].Val["loss"], rs[1].ImagesPerSec)
	}
	if rs[1].Val["dice"] != 0.25 || rs[1].TrainLoss != 1.2 || rs[0].LR != 0.01 || rs[0].Epoch != 1 {
		t.Errorf("finite values changed in the round trip: %+v", rs)
	}
	if err := PlotProgress(filepath.Join(dir, "progress.png"), rs); err != nil {
		t.Fatal(err)
	}
}
