package metrics

import (
	"math"
	"testing"
)

func TestRoundRatio(t *testing.T) {
	for _, c := range []struct {
		num, den    int64
		even, matlb int64
	}{
		{5, 2, 2, 3}, // 2.5: numpy/Python → 2, MATLAB → 3
		{3, 2, 2, 2}, // 1.5 → 2 both
		{7, 2, 4, 4}, // 3.5 → 4 both
		{7, 3, 2, 2}, // 2.33
		{8, 3, 3, 3}, // 2.67
		{0, 9, 0, 0}, //
		{1, 2, 0, 1}, // 0.5
		{99, 1, 99, 99} /* exact */} {
		if g := roundRatio(c.num, c.den, halfEven); g != c.even {
			t.Errorf("halfEven %d/%d = %d, want %d", c.num, c.den, g, c.even)
		}
		if g := roundRatio(c.num, c.den, halfAway); g != c.matlb {
			t.Errorf("halfAway %d/%d = %d, want %d", c.num, c.den, g, c.matlb)
		}
	}
}

// Expected values: numpy 1.24 float(np.float16(n)).
func TestFloat16Count(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want float64
	}{
		{0, 0}, {2047, 2047}, {2048, 2048}, {2049, 2048}, {2050, 2050}, {2051, 2052},
		{4097, 4096}, {4098, 4096}, {4099, 4100}, {4100, 4100}, {65504, 65504}, {65519, 65504},
		{65520, math.Inf(1)},
	} {
		if g := float16Count(c.n); g != c.want {
			t.Errorf("float16(%d) = %v, want %v", c.n, g, c.want)
		}
	}
}

// Expected values: numpy 1.24 float(mask.astype(np.float16).sum()) for the same layouts.
func TestFloat16Sum(t *testing.T) {
	mk := func(n, step, limit int) []bool {
		m := make([]bool, n)
		for i := 0; i < n && i < limit; i += step {
			m[i] = true
		}
		return m
	}
	for _, c := range []struct {
		name string
		m    []bool
		want float64
	}{
		{"8342 leading ones", mk(187500, 1, 8342), 8344},
		{"every 22nd of 187500", mk(187500, 22, 187500), 8520},
		{"every 3rd of 100000", mk(100000, 3, 100000), 33344},
		{"70000 ones", mk(70000, 1, 70000), math.Inf(1)},
		{"every 2nd of 30000", mk(30000, 2, 30000), 15000},
	} {
		if g := float16Sum(c.m); g != c.want {
			t.Errorf("%s: %v, numpy gives %v", c.name, g, c.want)
		}
	}
}

// TestPairwiseSumOrder: numpy's pairwise summation differs from a running sum in the last bits;
// the expected values are numpy 1.24's np.sum of the same arrays.
func TestPairwiseSumOrder(t *testing.T) {
	mk := func(n int) []float64 {
		a := make([]float64, n)
		for i := range a {
			a[i] = 1 / float64(i+3)
		}
		return a
	}
	for _, c := range []struct {
		n    int
		want float64
	}{
		{5, 1.0928571428571427}, {100, 3.707082429307257}, {1000, 5.987467865541362}, // a running sum gives …255 and …356
	} {
		if g := pairwiseSum(mk(c.n)); g != c.want {
			t.Errorf("n=%d: %.17g, numpy %.17g", c.n, g, c.want)
		}
	}
}
