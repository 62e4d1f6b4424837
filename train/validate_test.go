package train

import (
	"math"
	"testing"
)

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		name           string
		p, g           []float32
		dice, iou, mae float64
	}{
		{"perfect", []float32{1, 0, 1, 0}, []float32{1, 0, 1, 0}, 1, 1, 0},
		{"both empty", []float32{0.2, 0.1}, []float32{0, 0}, 1, 1, 0.15},
		{"half", []float32{0.9, 0.9, 0.1, 0.1}, []float32{1, 0, 1, 0}, 0.5, 1.0 / 3, 0.5},
		{"soft mask binarised", []float32{0.8, 0.2}, []float32{0.6, 0.4}, 1, 1, 0.2},
	} {
		d, u, e := overlap(tc.p, tc.g)
		if math.Abs(d-tc.dice) > 1e-9 || math.Abs(u-tc.iou) > 1e-9 || math.Abs(e-tc.mae) > 1e-6 {
			t.Errorf("%s: dice %v iou %v mae %v, want %v %v %v", tc.name, d, u, e, tc.dice, tc.iou, tc.mae)
		}
	}
}
