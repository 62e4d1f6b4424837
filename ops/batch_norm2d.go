package ops

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/tensor"
)

// BatchNorm2D is torch.nn.functional.batch_norm on x [N C H W] with per-channel gamma, beta and
// running statistics. In training it normalises with the batch's biased variance and updates the
// running statistics in place (running_var from the unbiased variance); in eval it uses the
// running statistics.
func (t *Tape) BatchNorm2D(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, p BatchNormParams) *tensor.Tensor {
	return t.BatchNorm2DAct(x, gamma, beta, runMean, runVar, nil, false, training, p)
}

// BatchNorm2DAct is BatchNorm2D followed by adding residual (x's shape; nil: none) and, with
// relu, ReLU: relu(bn(x) + residual), the tail of a ResNet block, in one kernel and without the
// intermediate tensors. Its backward pass masks the gradient by the saved output (y > 0, the
// ReLU's rule) inside the batch-norm gradient kernels and hands the residual its gradient from
// there.
func (t *Tape) BatchNorm2DAct(x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu, training bool, p BatchNormParams) *tensor.Tensor {
	const op = "batch_norm2d"
	if !t.ok(x, gamma, beta, runMean, runVar) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	if !t.checkBatchNorm(x.Shape(), gamma, beta, runMean, runVar, residual, training) {
		return nil
	}
	y := t.allocOut(x.Shape(), op) // a concatenation's slice, inside ConcatOut.Into
	if y == nil {
		return nil
	}
	var mean, invStd *tensor.Tensor
	c := x.Dim(1)
	if training {
		ParamsWritten() // the running statistics change
		mean, invStd = t.alloc(tensor.Shape{c}, op), t.alloc(tensor.Shape{c}, op)
		if mean == nil || invStd == nil || !t.check(t.b.BatchNormTrain(y, mean, invStd, x, gamma, beta, runMean, runVar, residual, relu, p), fmt.Sprintf("%s %v", op, x.Shape())) {
			return nil
		}
	} else if !t.check(t.b.BatchNormEval(y, x, gamma, beta, runMean, runVar, residual, relu, p), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	t.recordBatchNorm(y, x, gamma, beta, runMean, runVar, residual, mean, invStd, relu, training, p)
	return y
}

// checkBatchNorm validates batch norm's operands for an input of shape xs (NCHW).
func (t *Tape) checkBatchNorm(xs tensor.Shape, gamma, beta, runMean, runVar, residual *tensor.Tensor, training bool) bool {
	const op = "batch_norm2d"
	if residual != nil {
		if !t.ok(residual) {
			return false
		}
		if !residual.Shape().Equal(xs) {
			t.Fail(fmt.Errorf("%s: shapes differ: %v and %v", op, xs, residual.Shape()))
			return false
		}
		if err := requireLayout(op, "residual", residual); err != nil {
			t.Fail(err)
			return false
		}
	}
	c := xs[1]
	for _, v := range []struct {
		name string
		t    *tensor.Tensor
	}{{"weight", gamma}, {"bias", beta}, {"running_mean", runMean}, {"running_var", runVar}} {
		if err := requireVector(op, v.name, v.t, c); err != nil {
			t.Fail(err)
			return false
		}
	}
	if training && xs[0]*xs[2]*xs[3] < 2 {
		t.Fail(fmt.Errorf("%s: training needs more than one value per channel, got input %v", op, xs))
		return false
	}
	return true
}

// recordBatchNorm records the backward rule of y = act(bn(x) + residual), with the batch's
// mean and invStd in training.
func (t *Tape) recordBatchNorm(y, x, gamma, beta, runMean, runVar, residual, mean, invStd *tensor.Tensor, relu, training bool, p BatchNormParams) {
	const op = "batch_norm2d"
	ins := []*tensor.Tensor{x, gamma, beta}
	if residual != nil {
		ins = append(ins, residual)
	}
	if !t.needsGrad(ins...) {
		return
	}
	if !training {
		// Eval-mode gradients treat the running statistics as constants.
		mean, invStd = runMean, t.evalInvStd(runVar, p.Eps)
		if invStd == nil {
			return
		}
	}
	// The ReLU's gradient reads the output only; without a ReLU nothing reads it.
	var ys *tensor.Tensor
	if relu {
		ys = y
	}
	t.record(op, []*tensor.Tensor{y}, ins, []*tensor.Tensor{x, mean, invStd, ys},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			gg := t.allocGrad(gamma, op+" grad")
			gb := t.allocGrad(beta, op+" grad")
			if gx == nil || gg == nil || gb == nil {
				return nil
			}
			// Without a ReLU the residual's gradient is gy itself (as for Add); with one, the
			// kernel writes the masked gy it computes anyway.
			var gr *tensor.Tensor
			if residual != nil && residual.RequiresGrad() && relu {
				if gr = t.alloc(x.Shape(), op+" grad"); gr == nil {
					return nil
				}
			}
			t.check(t.b.BatchNormGrad(gx, gg, gb, gr, gys[0], t.secondGrad, x, ys, gamma, mean, invStd, training), op+" grad")
			if !x.RequiresGrad() {
				t.release(gx)
				gx = nil
			}
			gs := []*tensor.Tensor{gx, gg, gb}
			if residual != nil {
				if gr == nil && residual.RequiresGrad() {
					gr = gys[0]
				}
				gs = append(gs, gr)
			}
			return gs
		})
	// The rule adds a second gradient of y itself (without a residual: a GPU kernel binds the
	// residual's gradient or the second gradient, and the residual's may be gy itself).
	if residual == nil {
		t.acceptSecond(y)
	}
}

// evalInvStd computes 1/sqrt(running_var + eps) on the host: eval-mode batch norm with gradients
// is rare (fine-tuning through a frozen normalisation), so a synchronous round trip is fine.
func (t *Tape) evalInvStd(runVar *tensor.Tensor, eps float32) *tensor.Tensor {
	v, err := t.b.Download(runVar)
	if err != nil {
		t.Fail(fmt.Errorf("batch_norm2d: read running_var: %w", err))
		return nil
	}
	for i := range v {
		v[i] = float32(1 / math.Sqrt(float64(v[i])+float64(eps)))
	}
	out := t.alloc(runVar.Shape(), "batch_norm2d")
	if out == nil || !t.check(t.b.Upload(out, v), "batch_norm2d: upload inverse std") {
		return nil
	}
	return out
}
