package optest

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ReLU kinks: the gradient of a ReLU network jumps where a pre-activation crosses zero, so a
// float32 implementation, whose forward pass differs from the exact one by rounding (~1e-6 of
// the activations' scale), gets gradients that differ from the exact ones by a whole unit's
// contribution wherever an exact pre-activation lies within that rounding of zero. Which side
// such a unit lands on is a coin flip of summation order. In the released CHNet on the golden
// input one unit flips in practice (encode2.1.2.bn1, exact value −3.0e-7 against activations of
// order 1: PyTorch's float32 keeps it, the exact result drops it) and the eval-mode input
// gradient moves by 0.7%. Gradients are therefore compared with the exact (float64) result at the
// exact activation pattern: a float64 reference run lists every unit within an ambiguity band of
// zero with its exact value (tools/torchref/chnet_ref.py), and KinkPinner puts exactly those
// units on their exact side on any backend, leaving every other value alone.

// Kink is one ReLU unit whose exact pre-activation lies within float32 rounding of zero.
type Kink struct {
	Call  int     `json:"call"`  // the ReLU call's ordinal in forward order, from 0
	Index int     `json:"index"` // flat element index into that call's input
	Exact float64 `json:"exact"` // the exact pre-activation; its sign is the side the unit takes
}

// ReLUCall describes one ReLU call of a reference run.
type ReLUCall struct {
	Shape tensor.Shape
	// Band is the ambiguity band, absolute: a backend's input at a listed unit may lie this far
	// from the exact value (rounding); farther is a real difference.
	Band float64
}

// KinkPinner wraps a backend running the same sequence of ReLU calls as a reference run and
// pins the reference's ambiguous units: their output becomes max(Exact, 0), so the ReLU
// gradient, which reads the output, passes exactly where the exact value is positive. A call
// whose shape differs from the reference's, one call too many, or a listed unit whose input here
// lies farther than the band from the exact value is an error: pinning hides rounding, never a
// wrong kernel or a different network.
type KinkPinner struct {
	ops.Backend
	calls []ReLUCall
	kinks map[int][]Kink
	n     int
	// Pinned describes every pinned unit; Flips those whose input here lay on the other side of
	// zero than the exact value (the units pinning actually changed).
	Pinned, Flips []string
	// Worst is the largest |input − Exact| / Band over the pinned units: how much of the band
	// this backend's rounding used.
	Worst float64
}

// NewKinkPinner wraps b for a run whose ReLU calls are calls, in order, pinning kinks. It checks
// that every kink lies inside its call and within the call's band of zero.
func NewKinkPinner(b ops.Backend, calls []ReLUCall, kinks []Kink) (*KinkPinner, error) {
	k := &KinkPinner{Backend: b, calls: calls, kinks: map[int][]Kink{}}
	for _, u := range kinks {
		if u.Call < 0 || u.Call >= len(calls) || u.Index < 0 || u.Index >= calls[u.Call].Shape.Numel() {
			return nil, fmt.Errorf("kink pinning: unit %d of ReLU #%d lies outside the %d calls' shapes", u.Index, u.Call, len(calls))
		}
		if u.Exact == 0 || math.Abs(u.Exact) > calls[u.Call].Band {
			return nil, fmt.Errorf("kink pinning: ReLU #%d unit %d: exact value %.3g is zero or outside its band %.3g", u.Call, u.Index, u.Exact, calls[u.Call].Band)
		}
		k.kinks[u.Call] = append(k.kinks[u.Call], u)
	}
	return k, nil
}

// Unary implements ops.Backend.
func (k *KinkPinner) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	if op != ops.ReLU {
		return k.Backend.Unary(op, dst, x)
	}
	n := k.n
	k.n++
	if n >= len(k.calls) || !k.calls[n].Shape.Equal(x.Shape()) {
		return fmt.Errorf("kink pinning: ReLU #%d on %v does not match the reference run (%d ReLUs)", n, x.Shape(), len(k.calls))
	}
	units := k.kinks[n]
	var in []float32
	if len(units) > 0 {
		// Read before the ReLU runs, in case the backend writes in place.
		var err error
		if in, err = k.Backend.Download(x); err != nil {
			return err
		}
	}
	if err := k.Backend.Unary(op, dst, x); err != nil || len(units) == 0 {
		return err
	}
	y, err := k.Backend.Download(dst)
	if err != nil {
		return err
	}
	band := k.calls[n].Band
	for _, u := range units {
		v := float64(in[u.Index])
		d := math.Abs(v - u.Exact)
		if d > band {
			return fmt.Errorf("kink pinning: ReLU #%d %v unit %d: input %.3g here, exact %.3g: %.3g apart, more than rounding (band %.3g)",
				n, x.Shape(), u.Index, v, u.Exact, d, band)
		}
		k.Worst = max(k.Worst, d/band)
		y[u.Index] = float32(max(u.Exact, 0))
		desc := fmt.Sprintf("ReLU #%d %v unit %d: input %.3g here, exact %.3g (band %.3g)", n, x.Shape(), u.Index, v, u.Exact, band)
		k.Pinned = append(k.Pinned, desc)
		if (v > 0) != (u.Exact > 0) {
			k.Flips = append(k.Flips, desc)
		}
	}
	if dst.IsContiguous() {
		return k.Backend.Upload(dst, y)
	}
	// A channel slice (the ReLU writes into a concatenation): upload beside it, then copy.
	tmp, err := k.Backend.Alloc(dst.Shape())
	if err != nil {
		return err
	}
	defer k.Backend.Release(tmp.Storage())
	if err := k.Backend.Upload(tmp, y); err != nil {
		return err
	}
	return k.Backend.Copy(dst, tmp)
}

// ResizeBilinearAdd implements ops.Backend: its ReLU, if any, is a ReLU call like the others.
func (k *KinkPinner) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	if err := k.Backend.ResizeBilinearAdd(dst, x, alignCorners, false); err != nil || !relu {
		return err
	}
	return k.Unary(ops.ReLU, dst, dst)
}

// BatchNormTrain implements ops.Backend. A ReLU fused into batch norm is a ReLU call like any
// other: the inner backend computes the pre-activation without it, and Unary applies and pins it.
func (k *KinkPinner) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	if err := k.Backend.BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual, false, p); err != nil || !relu {
		return err
	}
	return k.Unary(ops.ReLU, dst, dst)
}

// BatchNormApply implements ops.Backend, pinning a fused ReLU as BatchNormTrain does.
func (k *KinkPinner) BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error {
	if err := k.Backend.BatchNormApply(dst, x, mean, invStd, gamma, beta, residual, false); err != nil || !relu {
		return err
	}
	return k.Unary(ops.ReLU, dst, dst)
}

// BatchNormEval implements ops.Backend, pinning a fused ReLU as BatchNormTrain does.
func (k *KinkPinner) BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	if err := k.Backend.BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual, false, p); err != nil || !relu {
		return err
	}
	return k.Unary(ops.ReLU, dst, dst)
}

// Conv2DAct implements ops.Backend, pinning a fused ReLU as BatchNormTrain does.
func (k *KinkPinner) Conv2DAct(dst, x, w, bias *tensor.Tensor, a ops.ConvAct, p ops.Conv2DParams) error {
	relu := a.ReLU
	a.ReLU = false
	if err := k.Backend.Conv2DAct(dst, x, w, bias, a, p); err != nil || !relu {
		return err
	}
	return k.Unary(ops.ReLU, dst, dst)
}

// Done reports whether the run made exactly the reference's ReLU calls.
func (k *KinkPinner) Done() error {
	if k.n != len(k.calls) {
		return fmt.Errorf("kink pinning: the run made %d ReLU calls, the reference %d", k.n, len(k.calls))
	}
	return nil
}

// ReLURecorder wraps a backend and keeps the input of every ReLU call, in order, so that
// another backend's run can be pinned to this run's activation pattern (Kinks).
type ReLURecorder struct {
	ops.Backend
	Inputs [][]float32
	Shapes []tensor.Shape
}

// Unary implements ops.Backend.
func (r *ReLURecorder) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	if op == ops.ReLU {
		in, err := r.Backend.Download(x)
		if err != nil {
			return err
		}
		r.Inputs, r.Shapes = append(r.Inputs, in), append(r.Shapes, x.Shape())
	}
	return r.Backend.Unary(op, dst, x)
}

// BatchNormTrain implements ops.Backend, recording the input of a fused ReLU (the
// pre-activation) as Unary records a ReLU's.
func (r *ReLURecorder) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	if err := r.Backend.BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual, false, p); err != nil || !relu {
		return err
	}
	return r.Unary(ops.ReLU, dst, dst)
}

// BatchNormApply implements ops.Backend, recording a fused ReLU's input.
func (r *ReLURecorder) BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error {
	if err := r.Backend.BatchNormApply(dst, x, mean, invStd, gamma, beta, residual, false); err != nil || !relu {
		return err
	}
	return r.Unary(ops.ReLU, dst, dst)
}

// BatchNormEval implements ops.Backend, recording a fused ReLU's input.
func (r *ReLURecorder) BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	if err := r.Backend.BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual, false, p); err != nil || !relu {
		return err
	}
	return r.Unary(ops.ReLU, dst, dst)
}

// Conv2DAct implements ops.Backend, recording a fused ReLU's input.
func (r *ReLURecorder) Conv2DAct(dst, x, w, bias *tensor.Tensor, a ops.ConvAct, p ops.Conv2DParams) error {
	relu := a.ReLU
	a.ReLU = false
	if err := r.Backend.Conv2DAct(dst, x, w, bias, a, p); err != nil || !relu {
		return err
	}
	return r.Unary(ops.ReLU, dst, dst)
}

// Kinks lists the recorded run's ambiguous units for a KinkPinner: those within band times the
// call's largest |input| of zero (exact zeros aside), each with its recorded value standing in
// for the exact one.
func (r *ReLURecorder) Kinks(band float64) ([]ReLUCall, []Kink) {
	calls := make([]ReLUCall, len(r.Inputs))
	var kinks []Kink
	for c, in := range r.Inputs {
		var maxAbs float64
		for _, v := range in {
			maxAbs = max(maxAbs, math.Abs(float64(v)))
		}
		calls[c] = ReLUCall{Shape: r.Shapes[c], Band: band * maxAbs}
		for i, v := range in {
			if v != 0 && math.Abs(float64(v)) <= calls[c].Band {
				kinks = append(kinks, Kink{Call: c, Index: i, Exact: float64(v)})
			}
		}
	}
	return calls, kinks
}

// ResizeBilinearAdd implements ops.Backend: its ReLU, if any, is recorded like the others.
func (r *ReLURecorder) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	if err := r.Backend.ResizeBilinearAdd(dst, x, alignCorners, false); err != nil || !relu {
		return err
	}
	return r.Unary(ops.ReLU, dst, dst)
}
