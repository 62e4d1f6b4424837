package optest

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ReLU kinks: the gradient of a ReLU network jumps where a pre-activation crosses zero, so two
// correct float32 implementations whose forward passes differ by rounding (~1e-6 relative) give
// gradients that differ by a whole unit's contribution wherever a pre-activation lies within that
// rounding of zero. In the released CHNet on the golden input one unit does (encode2.1.2.bn1,
// exact value −3.0e-7 against activations of order 1): PyTorch's float32 and the CPU backend put
// it just above zero, Vulkan below, and the eval-mode input gradient moves by 0.7%. Comparing
// gradients between implementations is meaningful only for the same activation pattern;
// ReLURecorder and KinkPinner give a backend the reference's pattern at such ambiguous units and
// leave every other value alone.

// ReLURecorder wraps a backend and keeps a host copy of the input of every ReLU it runs, in call
// order: the reference activation pattern for a KinkPinner.
type ReLURecorder struct {
	ops.Backend
	Inputs [][]float32
	Shapes []tensor.Shape
}

// Unary implements ops.Backend.
func (r *ReLURecorder) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	if err := r.Backend.Unary(op, dst, x); err != nil || op != ops.ReLU {
		return err
	}
	v, err := r.Backend.Download(x)
	if err != nil {
		return err
	}
	r.Inputs = append(r.Inputs, v)
	r.Shapes = append(r.Shapes, x.Shape().Clone())
	return nil
}

// KinkPinner wraps a backend running the same ops as a recorded reference run. Where the n-th
// ReLU's input lies on the other side of zero than the reference's n-th ReLU input and both lie
// within Tol·max|reference input| of zero, it sets the output to the reference's (so the ReLU
// gradient, which reads the output, takes the reference's side too) and notes the unit in
// Pinned. Differences farther from zero are left for the comparison to catch: a wrong kernel
// cannot hide behind pinning.
type KinkPinner struct {
	ops.Backend
	Ref *ReLURecorder
	// Tol is the ambiguity band relative to the largest reference input of the same ReLU; float32
	// forward passes of a deep network differ by ~1e-6 relative, so 1e-5 is a safe band.
	Tol    float64
	Pinned []string
	calls  int
}

// Unary implements ops.Backend.
func (k *KinkPinner) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	if err := k.Backend.Unary(op, dst, x); err != nil || op != ops.ReLU {
		return err
	}
	n := k.calls
	k.calls++
	if n >= len(k.Ref.Inputs) || !k.Ref.Shapes[n].Equal(x.Shape()) {
		return fmt.Errorf("kink pinning: ReLU #%d on %v does not match the reference run (%d ReLUs)", n, x.Shape(), len(k.Ref.Inputs))
	}
	got, err := k.Backend.Download(x)
	if err != nil {
		return err
	}
	want := k.Ref.Inputs[n]
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	band := k.Tol * scale
	var y []float32
	for i, v := range got {
		if (v > 0) == (want[i] > 0) || math.Abs(float64(v)) > band || math.Abs(float64(want[i])) > band {
			continue
		}
		if y == nil {
			if y, err = k.Backend.Download(dst); err != nil {
				return err
			}
		}
		y[i] = max(want[i], 0)
		k.Pinned = append(k.Pinned, fmt.Sprintf("ReLU #%d %v element %d: input %.3g here, %.3g in the reference (largest |input| %.3g)",
			n, x.Shape(), i, v, want[i], scale))
	}
	if y != nil {
		return k.Backend.Upload(dst, y)
	}
	return nil
}
