package data

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// cv2Fixtures are outputs of OpenCV itself (testdata/gen_cv2_fixtures.py, OpenCV 4.6), not of
// this code: the Go side must reproduce them bit for bit in float32.
type cv2Fixtures struct {
	OpenCV string `json:"opencv"`
	Resize []struct {
		Name              string
		C, SW, SH, DW, DH int
		Src, Out, Out64   string
	} `json:"resize"`
	Warp []struct {
		Name            string
		C, W, H         int
		Angle, CX, CY   float64
		Border          float64
		M               []float64
		Src, Out, Out64 string
	} `json:"warp"`
}

func loadCV2(t *testing.T) *cv2Fixtures {
	t.Helper()
	b, err := os.ReadFile("testdata/cv2_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var f cv2Fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Resize) == 0 || len(f.Warp) == 0 {
		t.Fatal("fixture file has no cases")
	}
	return &f
}

func floats(t *testing.T, s string) []float32 {
	t.Helper()
	fs := strings.Fields(s)
	out := make([]float32, len(fs))
	for i, f := range fs {
		v, err := strconv.ParseFloat(f, 32)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = float32(v)
	}
	return out
}

// compareBits reports every element that differs in its bits, and the largest difference.
func compareBits(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("len %d, want %d", len(got), len(want))
	}
	bad, worst := 0, 0.0
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad < 5 {
				t.Errorf("[%d] = %v, cv2 %v", i, got[i], want[i])
			}
			bad++
			worst = max(worst, math.Abs(float64(got[i])-float64(want[i])))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d values differ from cv2 (max |diff| %g)", bad, len(got), worst)
	}
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestResizeMatchesOpenCV(t *testing.T) {
	f := loadCV2(t)
	for _, tc := range f.Resize {
		t.Run(tc.Name, func(t *testing.T) {
			src, want := floats(t, tc.Src), floats(t, tc.Out)
			got := make([]float32, tc.C*tc.DW*tc.DH)
			if err := Resize(got, tc.DW, tc.DH, src, tc.SW, tc.SH, tc.C); err != nil {
				t.Fatal(err)
			}
			compareBits(t, got, want)
			// The official image path runs in float64; float32 stays within a few ulps of it.
			// Tolerance: values are up to ~8 (normal) or 255 (bytes); 2e-6 relative.
			scale := 8.0
			if strings.Contains(tc.Name, "bytes") || strings.Contains(tc.Name, "raw") || tc.Name == "big_ratio" {
				scale = 255
			}
			if d := maxAbsDiff(got, floats(t, tc.Out64)); d > 2e-6*scale {
				t.Errorf("float64 path differs by %g", d)
			}
		})
	}
}

func TestWarpAffineMatchesOpenCV(t *testing.T) {
	f := loadCV2(t)
	for _, tc := range f.Warp {
		t.Run(tc.Name, func(t *testing.T) {
			src, want := floats(t, tc.Src), floats(t, tc.Out)
			// cv2's own matrix, so the warp is checked apart from sin/cos rounding.
			var m Affine
			copy(m[:], tc.M)
			got := make([]float32, len(want))
			if err := WarpAffine(got, tc.W, tc.H, src, tc.W, tc.H, tc.C, m, float32(tc.Border)); err != nil {
				t.Fatal(err)
			}
			compareBits(t, got, want)
			if d := maxAbsDiff(got, floats(t, tc.Out64)); d > 1e-5 {
				t.Errorf("float64 path differs by %g", d)
			}
			// getRotationMatrix2D: Go's sin/cos may differ from glibc's in the last bit.
			r := RotationMatrix(tc.CX, tc.CY, tc.Angle, 1)
			for i := range r {
				if math.Abs(r[i]-tc.M[i]) > 1e-13 {
					t.Errorf("M[%d] = %v, cv2 %v", i, r[i], tc.M[i])
				}
			}
			// And the full call with our matrix still matches: a last-bit difference in M
			// almost never moves a 1/32-pixel rounding.
			got2 := make([]float32, len(want))
			if err := WarpAffine(got2, tc.W, tc.H, src, tc.W, tc.H, tc.C, r, float32(tc.Border)); err != nil {
				t.Fatal(err)
			}
			compareBits(t, got2, want)
		})
	}
}
