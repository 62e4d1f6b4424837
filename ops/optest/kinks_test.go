package optest

import (
	"strings"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
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

// Two runs whose ReLU inputs differ by rounding on either side of zero get the reference's
// gradient once pinned; a difference beyond the ambiguity band is left alone for the comparison
// to catch.
func TestKinkPinner(t *testing.T) {
	ref := &ReLURecorder{Backend: cpu.New()}
	want := kinkGrad(t, ref, []float32{1e-7, -2, 3, -1e-7})
	if len(ref.Inputs) != 1 {
		t.Fatalf("recorded %d ReLU inputs, want 1", len(ref.Inputs))
	}
	// The same values up to rounding, with both near-zero units on the other side of zero.
	flipped := []float32{-2e-7, -2, 3, 5e-8}
	if e := RelErr(kinkGrad(t, cpu.New(), flipped), want); e < 0.1 {
		t.Fatalf("unpinned gradients differ by only %.3g: the case does not cross a kink", e)
	}
	p := &KinkPinner{Backend: cpu.New(), Ref: ref, Tol: 1e-5}
	expectClose(t, "pinned gradient", kinkGrad(t, p, flipped), want, 0)
	if len(p.Pinned) != 2 {
		t.Errorf("pinned %d units, want 2:\n%s", len(p.Pinned), strings.Join(p.Pinned, "\n"))
	}

	// A unit far from zero on the wrong side is a real difference: never pinned.
	p = &KinkPinner{Backend: cpu.New(), Ref: ref, Tol: 1e-5}
	if e := RelErr(kinkGrad(t, p, []float32{1e-7, 2, 3, -1e-7}), want); e < 0.1 || len(p.Pinned) != 0 {
		t.Errorf("a difference beyond the band was hidden: relative error %.3g, pinned %v", e, p.Pinned)
	}

	// A run that does not match the reference's ReLU sequence is an error, not a silent pass.
	p = &KinkPinner{Backend: cpu.New(), Ref: &ReLURecorder{}, Tol: 1e-5}
	x := upload(t, p, []float32{1, 2, 3, 4}, []int{1, 1, 2, 2})
	tp := ops.NewTape(p)
	defer tp.Release()
	if tp.ReLU(x); tp.Err() == nil || !strings.Contains(tp.Err().Error(), "does not match the reference") {
		t.Errorf("mismatched run: error %v", tp.Err())
	}
}
