package metrics

import (
	"bytes"
	"encoding/csv"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestAddRejectsBadInput(t *testing.T) {
	ev, _ := New(PySOD)
	ok8 := make([]uint8, 12)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"zero width", ev.Add("zero width", nil, nil, 0, 3), "empty image"},
		{"negative height", ev.Add("negative height", nil, nil, 3, -1), "empty image"},
		{"short prediction", ev.Add("short prediction", ok8[:11], ok8, 4, 3), "size mismatch"},
		{"long mask", ev.Add("long mask", ok8, make([]uint8, 13), 4, 3), "size mismatch"},
		{"float above 1", ev.AddFloat("float above 1", []float32{0, 1.5, 0, 0}, ok8[:4], 2, 2), "outside [0,1]"},
		{"float NaN", ev.AddFloat("float NaN", []float32{0, float32(math.NaN()), 0, 0}, ok8[:4], 2, 2), "outside [0,1]"},
		{"float negative", ev.AddFloat("float negative", []float32{0, -0.1, 0, 0}, ok8[:4], 2, 2), "outside [0,1]"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || !strings.Contains(c.err.Error(), c.name) {
			t.Errorf("%s: error %v, want one naming the image and saying %q", c.name, c.err, c.want)
		}
	}
	if ev.Len() != 0 {
		t.Errorf("rejected images were counted: %d", ev.Len())
	}
	if _, err := New("sod"); err == nil {
		t.Error("unknown convention accepted")
	}
}

func TestAddFilesSizeMismatchNamesBothFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, w, h int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, encodePNG(t, image.NewGray(image.Rect(0, 0, w, h))), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pred, gt := write("pred.png", 352, 352), write("mask.png", 622, 528)
	ev, _ := New(MATLAB)
	err := ev.AddFiles("case1", pred, gt)
	if err == nil || !strings.Contains(err.Error(), pred) || !strings.Contains(err.Error(), gt) || !strings.Contains(err.Error(), "352x352") {
		t.Fatalf("error %v", err)
	}
	if err := ev.AddFiles("case2", write("p2.png", 5, 4), write("m2.png", 5, 4)); err != nil {
		t.Fatal(err)
	}
	if ev.Len() != 1 {
		t.Fatalf("Len %d", ev.Len())
	}
}

// TestMaskThresholds: PySODMetrics and MATLAB binarise masks at > 128; CHNet's eval.py at half
// of the mask's own maximum, so a 0/1 mask is foreground there and empty elsewhere.
func TestMaskThresholds(t *testing.T) {
	gt := []uint8{0, 1, 127, 128, 129, 255}
	for _, c := range []struct {
		conv Convention
		gt   []uint8
		want []bool
	}{
		{PySOD, gt, []bool{false, false, false, false, true, true}},
		{MATLAB, gt, []bool{false, false, false, false, true, true}},
		{CHNet, gt, []bool{false, false, false, true, true, true}},     // 2v > 255
		{CHNet, []uint8{0, 1, 1, 0}, []bool{false, true, true, false}}, // 0/1 mask
		{CHNet, []uint8{0, 0, 0, 0}, []bool{false, false, false, false}},
		{PySOD, []uint8{0, 1, 1, 0}, []bool{false, false, false, false}},
	} {
		if g := binariseGT(c.gt, c.conv); !slices.Equal(g, c.want) {
			t.Errorf("%s %v: %v, want %v", c.conv, c.gt, g, c.want)
		}
	}
}

func randomPair(rng *rand.Rand, w, h int) (pred, gt []uint8) {
	pred, gt = make([]uint8, w*h), make([]uint8, w*h)
	cy, cx, r := rng.IntN(h), rng.IntN(w), 2+rng.IntN(w/2)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := math.Hypot(float64(y-cy), float64(x-cx))
			if d < float64(r) {
				gt[y*w+x] = 255
			}
			v := 255/(1+math.Exp((d-float64(r))/3)) + rng.NormFloat64()*20
			pred[y*w+x] = uint8(math.Max(0, math.Min(255, v)))
		}
	}
	return pred, gt
}

// TestConcurrentAdd: images added from many goroutines give the same dataset values as a
// sequential run (up to summation order) and the same per-image rows.
func TestConcurrentAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	type img struct {
		name     string
		pred, gt []uint8
		w, h     int
	}
	var imgs []img
	for i := 0; i < 10; i++ {
		w, h := 20+rng.IntN(40), 20+rng.IntN(40)
		p, g := randomPair(rng, w, h)
		imgs = append(imgs, img{strconv.Itoa(i), p, g, w, h})
	}
	for _, conv := range []Convention{PySOD, MATLAB, CHNet} {
		seq, _ := New(conv)
		par, _ := New(conv)
		for _, m := range imgs {
			if err := seq.Add(m.name, m.pred, m.gt, m.w, m.h); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, m := range imgs {
			wg.Go(func() {
				if err := par.Add(m.name, m.pred, m.gt, m.w, m.h); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		a, b := seq.Result(), par.Result()
		if !slices.Equal(a.Keys(), b.Keys()) {
			t.Fatalf("%s: keys differ", conv)
		}
		for _, k := range a.Keys() {
			near(t, string(conv)+" "+k, b.Values[k], a.Values[k], 1e-13)
		}
		rows := map[string][]float64{}
		for _, r := range a.Rows {
			rows[r.Name] = r.Values
		}
		for _, r := range b.Rows {
			if !slices.Equal(rows[r.Name], r.Values) {
				t.Errorf("%s: row %s differs", conv, r.Name)
			}
		}
	}
}

func TestWriteCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, conv := range []Convention{PySOD, MATLAB, CHNet} {
		ev, _ := New(conv)
		for _, name := range []string{"a.png", "b, with comma.png"} {
			p, g := randomPair(rng, 16, 12)
			if err := ev.Add(name, p, g, 16, 12); err != nil {
				t.Fatal(err)
			}
		}
		r := ev.Result()
		var b bytes.Buffer
		if err := r.WriteCSV(&b); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0][0] != "name" || !slices.Equal(recs[0][1:], r.Columns) || recs[2][0] != "b, with comma.png" {
			t.Fatalf("%s: %v", conv, recs)
		}
		if len(recs[1]) != len(r.Columns)+1 {
			t.Fatalf("%s: row width %d", conv, len(recs[1]))
		}
	}
}

// TestRowsAverageToDatasetMeans: the dataset's mean-over-thresholds and scalar values are the
// means of the per-image rows (mean commutes with mean; max does not, so no max is checked).
func TestRowsAverageToDatasetMeans(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, conv := range []Convention{PySOD, MATLAB, CHNet} {
		ev, _ := New(conv)
		for i := 0; i < 5; i++ {
			p, g := randomPair(rng, 24, 18)
			if err := ev.Add(strconv.Itoa(i), p, g, 24, 18); err != nil {
				t.Fatal(err)
			}
		}
		r := ev.Result()
		for j, col := range r.Columns {
			if strings.HasPrefix(col, "max") {
				continue
			}
			m := 0.0
			for _, row := range r.Rows {
				m += row.Values[j] / float64(len(r.Rows))
			}
			near(t, string(conv)+" "+col, r.Values[col], m, 1e-13)
		}
	}
}

func TestTasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	p, g := randomPair(rng, 30, 20)
	wantCols := map[string][]string{
		"polyp":  {"mDice", "mIoU", "wFm", "Sm", "maxEm", "MAE"},
		"lung":   {"mDice", "Precision", "Recall", "Sm", "MAE"},
		"breast": {"Jaccard", "Precision", "Recall", "Dice"},
	}
	for _, conv := range []Convention{PySOD, MATLAB, CHNet} {
		ev, _ := New(conv)
		if _, err := ev.Result().Task("polyp"); err == nil {
			t.Errorf("%s: a task over no images should fail", conv)
		}
		if err := ev.Add("x", p, g, 30, 20); err != nil {
			t.Fatal(err)
		}
		r := ev.Result()
		for task, cols := range wantCols {
			tv, err := r.Task(task)
			if err != nil {
				t.Fatalf("%s %s: %v", conv, task, err)
			}
			var got []string
			for _, v := range tv {
				got = append(got, v.Column)
				if r.Values[v.Key] != v.Value {
					t.Errorf("%s %s %s: %v ≠ Values[%s]", conv, task, v.Column, v.Value, v.Key)
				}
			}
			if !slices.Equal(got, cols) {
				t.Errorf("%s %s: columns %v", conv, task, got)
			}
		}
		if _, err := r.Task("retina"); err == nil {
			t.Error("unknown task accepted")
		}
	}
	ev, _ := New(CHNet)
	if err := ev.Add("x", p, g, 30, 20); err != nil {
		t.Fatal(err)
	}
	tv, _ := ev.Result().Task("polyp")
	if tv[4].Key != "Em" || !strings.Contains(tv[4].Note, "adaptive") {
		t.Errorf("CHNet's maxEm column should say it is the adaptive E-measure: %+v", tv[4])
	}
}
