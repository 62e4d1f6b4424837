package tensor

import (
	"math"
	"testing"
)

func TestRNGDeterministicAndUniform(t *testing.T) {
	a, b := NewRNG(42, 1), NewRNG(42, 1)
	c := NewRNG(42, 2)
	same, diff := true, false
	var sum, sumsq float64
	const n = 200000
	for i := 0; i < n; i++ {
		x, y, z := a.Float64(), b.Float64(), c.Float64()
		if x != y {
			same = false
		}
		if x != z {
			diff = true
		}
		if x < 0 || x >= 1 {
			t.Fatalf("Float64 = %v outside [0,1)", x)
		}
		sum += x
		sumsq += x * x
	}
	if !same || !diff {
		t.Fatalf("same seed same stream equal=%v, other stream differs=%v", same, diff)
	}
	mean, variance := sum/n, sumsq/n-(sum/n)*(sum/n)
	if math.Abs(mean-0.5) > 0.005 || math.Abs(variance-1.0/12) > 0.002 {
		t.Fatalf("uniform mean %v var %v, want 0.5 and 1/12", mean, variance)
	}
}

func TestRNGNormalMoments(t *testing.T) {
	r := NewRNG(7, 0)
	var sum, sumsq float64
	const n = 200000
	for i := 0; i < n; i++ {
		x := r.Normal()
		sum += x
		sumsq += x * x
	}
	if m, v := sum/n, sumsq/n-(sum/n)*(sum/n); math.Abs(m) > 0.01 || math.Abs(v-1) > 0.02 {
		t.Fatalf("normal mean %v var %v", m, v)
	}
}

func TestRNGPermIsPermutation(t *testing.T) {
	p := NewRNG(3, 0).Perm(1000)
	seen := make([]bool, 1000)
	for _, v := range p {
		if seen[v] {
			t.Fatalf("value %d repeated", v)
		}
		seen[v] = true
	}
}
