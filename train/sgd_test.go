package train

import (
	"math"
	"testing"
)

// reference.md §1.2: for E = 50, e=0 → 0.00196, peak 0.0490 at e = 24 and 25, e=49 → 0.00196.
func TestTriangularLR(t *testing.T) {
	for _, tc := range []struct {
		e    int
		want float64
	}{{0, 0.05 * 2 / 51}, {24, 0.05 * 50 / 51}, {25, 0.05 * 50 / 51}, {49, 0.05 * 2 / 51}} {
		if got := TriangularLR(0.05, tc.e, 50); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("epoch %d: lr %v, want %v", tc.e, got, tc.want)
		}
	}
	if math.Abs(TriangularLR(0.05, 0, 50)-0.00196) > 1e-5 || math.Abs(TriangularLR(0.05, 24, 50)-0.0490) > 1e-4 {
		t.Error("schedule does not match the values quoted in reference.md")
	}
}
