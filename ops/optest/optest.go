// Package optest is the conformance suite every backend runs: single-op cases against PyTorch's
// golden tensors, finite-difference gradient checks, and cross-backend comparisons. A backend's
// test file is one line per suite: optest.Golden(t, cpu.New()).
package optest

import (
	"math"
	"testing"

	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// cases holds a golden file's tensors by name.
type cases struct {
	tb testing.TB
	f  *safetensors.File
}

func (c cases) get(name string) ([]float32, []int) {
	c.tb.Helper()
	v, shape, err := c.f.Float32(name)
	if err != nil {
		c.tb.Fatal(err)
	}
	return v, shape
}

// upload copies a golden tensor to the backend.
func (c cases) upload(b ops.Backend, name string) *tensor.Tensor {
	c.tb.Helper()
	v, shape := c.get(name)
	return upload(c.tb, b, v, shape)
}

// param uploads a golden tensor as a trainable leaf.
func (c cases) param(b ops.Backend, name string) *tensor.Tensor {
	c.tb.Helper()
	return c.upload(b, name).SetRequiresGrad(true)
}

func (c cases) has(name string) bool { _, ok := c.f.Tensors[name]; return ok }

// upload copies a golden tensor to the backend.
func upload(tb testing.TB, b ops.Backend, v []float32, shape []int) *tensor.Tensor {
	tb.Helper()
	x, err := ops.FromHost(b, v, shape...)
	if err != nil {
		tb.Fatal(err)
	}
	return x
}

// download reads a tensor back, failing the test on error.
func download(tb testing.TB, b ops.Backend, x *tensor.Tensor) []float32 {
	tb.Helper()
	if x == nil {
		tb.Fatal("nil tensor")
	}
	v, err := ops.ToHost(b, x)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// RelErr is max|got−want| / max|want| (or the absolute error when want is all zero): the
// tolerance measure of shared/golden/MANIFEST.md.
func RelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		diff = max(diff, d)
		scale = max(scale, math.Abs(float64(want[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

// expectClose fails the test when got is not within tol (relative, see RelErr) of want.
func expectClose(tb testing.TB, what string, got, want []float32, tol float64) {
	tb.Helper()
	if e := RelErr(got, want); e > tol {
		tb.Errorf("%s: relative error %.3g exceeds %.0g (got[:4]=%v want[:4]=%v)", what, e, tol, head(got), head(want))
	}
}

func head(v []float32) []float32 {
	if len(v) > 4 {
		return v[:4]
	}
	return v
}

// backwardWith runs Backward on Σ y·gy, so the gradient arriving at y is exactly gy.
func backwardWith(tb testing.TB, tp *ops.Tape, y, gy *tensor.Tensor) {
	tb.Helper()
	loss := tp.Sum(tp.Mul(y, gy), ops.AxesAll)
	if err := tp.Backward(loss); err != nil {
		tb.Fatal(err)
	}
}
