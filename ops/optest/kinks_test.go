package optest

import (
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// kinkGrad returns the gradient of Σ w·ReLU(x) with respect to x, run on b.
func kinkGrad(t *testing.T, b ops.Backend, xv []float32) []float32 {
	t.Helper()
	x := upload(t, b, xv, []int{1, 1, 2, 2}).SetRequiresGrad(true)
	w := upload(t, b, []float32{5, 7, 11, 13}, []int{1, 1, 2, 2})
	tp := ops.NewTape(b)
	defer tp.Release()
	loss := tp.Sum(tp.Mul(tp.ReLU(x), w), ops.AxesAll)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	return download(t, b, x.Grad)
}

// The exact pre-activations are {3e-7, -2, 3, -1e-7}; the first and last lie within rounding
// (band 1e-5 of the largest |input|, 3) of zero.
var (
	kinkCalls = []ReLUCall{{Shape: tensor.Shape{1, 1, 2, 2}, Band: 3e-5}}
	kinkUnits = []Kink{{Call: 0, Index: 0, Exact: 3e-7}, {Call: 0, Index: 3, Exact: -1e-7}}
	kinkExact = []float32{5, 0, 11, 0}
)

func newKinkPinner(t *testing.T) *KinkPinner {
	t.Helper()
	p, err := NewKinkPinner(cpu.New(), kinkCalls, kinkUnits)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A run whose ambiguous units land on either side of zero gets the exact gradient once pinned,
// whichever side they took.
func TestKinkPinner(t *testing.T) {
	for _, c := range []struct {
		name    string
		x       []float32
		flipped int
	}{
		{"exact sides", []float32{2.9e-7, -2, 3, -1.2e-7}, 0},
		{"other sides", []float32{-2e-7, -2, 3, 5e-8}, 2},
		{"one at zero", []float32{0, -2, 3, -1e-7}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.flipped > 0 {
				if e := RelErr(kinkGrad(t, cpu.New(), c.x), kinkExact); e < 0.1 {
					t.Fatalf("unpinned gradients differ by only %.3g: the case does not cross a kink", e)
				}
			}
			p := newKinkPinner(t)
			expectClose(t, "pinned gradient", kinkGrad(t, p, c.x), kinkExact, 0)
			if err := p.Done(); err != nil {
				t.Error(err)
			}
			if len(p.Pinned) != 2 || len(p.Flips) != c.flipped {
				t.Errorf("pinned %d units, %d flipped; want 2, %d:\n%s", len(p.Pinned), len(p.Flips), c.flipped, strings.Join(p.Pinned, "\n"))
			}
		})
	}
}

// kinkGradFused is kinkGrad with the ReLU fused into batch norm: gamma 0 and beta 0 leave the
// normalised term zero, so the pre-activation is the residual, xv, exactly.
func kinkGradFused(t *testing.T, b ops.Backend, xv []float32) []float32 {
	t.Helper()
	shape := []int{1, 1, 2, 2}
	r := upload(t, b, xv, shape).SetRequiresGrad(true)
	x := upload(t, b, []float32{1, 2, 3, 4}, shape)
	zero, one := upload(t, b, []float32{0}, []int{1}), upload(t, b, []float32{1}, []int{1})
	w := upload(t, b, []float32{5, 7, 11, 13}, shape)
	tp := ops.NewTape(b)
	defer tp.Release()
	y := tp.BatchNorm2DAct(x, zero, zero, zero, one, r, true, false, ops.DefaultBatchNorm)
	loss := tp.Sum(tp.Mul(y, w), ops.AxesAll)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	return download(t, b, r.Grad)
}

// A ReLU fused into batch norm is a ReLU call like any other: pinned the same way, and its
// gradient (to the residual here) follows the pinned side.
func TestKinkPinnerFusedBatchNorm(t *testing.T) {
	x := []float32{-2e-7, -2, 3, 5e-8} // both ambiguous units on their inexact side
	if e := RelErr(kinkGradFused(t, cpu.New(), x), kinkExact); e < 0.1 {
		t.Fatalf("unpinned gradients differ by only %.3g: the case does not cross a kink", e)
	}
	p := newKinkPinner(t)
	expectClose(t, "pinned gradient", kinkGradFused(t, p, x), kinkExact, 0)
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if len(p.Pinned) != 2 || len(p.Flips) != 2 {
		t.Errorf("pinned %d units, %d flipped; want 2, 2:\n%s", len(p.Pinned), len(p.Flips), strings.Join(p.Pinned, "\n"))
	}
}

// Pinning hides rounding only: a listed unit far from its exact value, a ReLU call the reference
// did not make, or a missing one is an error.
func TestKinkPinnerErrors(t *testing.T) {
	relu := func(p *KinkPinner, xv []float32, shape []int) error {
		x := upload(t, p, xv, shape)
		tp := ops.NewTape(p)
		defer tp.Release()
		tp.ReLU(x)
		return tp.Err()
	}
	p := newKinkPinner(t)
	if err := relu(p, []float32{-1e-4, -2, 3, -1e-7}, []int{1, 1, 2, 2}); err == nil || !strings.Contains(err.Error(), "more than rounding") {
		t.Errorf("a listed unit 1e-4 from its exact value: error %v", err)
	}
	p = newKinkPinner(t)
	if err := relu(p, []float32{1, 2, 3, 4}, []int{1, 1, 1, 4}); err == nil || !strings.Contains(err.Error(), "does not match the reference") {
		t.Errorf("a ReLU of another shape: error %v", err)
	}
	p = newKinkPinner(t)
	for i := 0; i < 2; i++ {
		err := relu(p, []float32{1, 2, 3, 4}, []int{1, 1, 2, 2})
		if i == 1 && (err == nil || !strings.Contains(err.Error(), "does not match the reference")) {
			t.Errorf("a second ReLU: error %v", err)
		}
	}
	if err := newKinkPinner(t).Done(); err == nil {
		t.Error("a run without the reference's ReLU: Done reports no error")
	}
	if _, err := NewKinkPinner(cpu.New(), kinkCalls, []Kink{{Call: 0, Index: 1, Exact: -2}}); err == nil {
		t.Error("a kink outside its band was accepted")
	}
	if _, err := NewKinkPinner(cpu.New(), kinkCalls, []Kink{{Call: 1, Index: 0, Exact: 1e-7}}); err == nil {
		t.Error("a kink of a call the reference does not make was accepted")
	}
}

// A recorded run yields the calls and ambiguous units that pin another run to its pattern.
func TestReLURecorderKinks(t *testing.T) {
	rec := &ReLURecorder{Backend: cpu.New()}
	kinkGrad(t, rec, []float32{3e-7, -2, 3, -1e-7})
	calls, kinks := rec.Kinks(1e-5)
	if len(calls) != 1 || !calls[0].Shape.Equal(kinkCalls[0].Shape) || math.Abs(calls[0].Band-3e-5) > 1e-12 {
		t.Fatalf("calls %+v, want %+v", calls, kinkCalls)
	}
	if len(kinks) != 2 || kinks[0].Index != 0 || kinks[1].Index != 3 || float32(kinks[0].Exact) != 3e-7 || float32(kinks[1].Exact) != -1e-7 {
		t.Fatalf("kinks %+v, want units 0 and 3 at 3e-7 and -1e-7", kinks)
	}
	p, err := NewKinkPinner(cpu.New(), calls, kinks)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "pinned to the recorded run", kinkGrad(t, p, []float32{-2e-7, -2, 3, 5e-8}), kinkExact, 0)
}
