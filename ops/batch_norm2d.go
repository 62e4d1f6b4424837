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
	const op = "batch_norm2d"
	if !t.ok(x, gamma, beta, runMean, runVar) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	c := x.Dim(1)
	for _, v := range []struct {
		name string
		t    *tensor.Tensor
	}{{"weight", gamma}, {"bias", beta}, {"running_mean", runMean}, {"running_var", runVar}} {
		if err := requireVector(op, v.name, v.t, c); err != nil {
			t.Fail(err)
			return nil
		}
	}
	if training && x.Dim(0)*x.Dim(2)*x.Dim(3) < 2 {
		t.Fail(fmt.Errorf("%s: training needs more than one value per channel, got input %v", op, x.Shape()))
		return nil
	}
	y := t.alloc(x.Shape(), op)
	if y == nil {
		return nil
	}
	var mean, invStd *tensor.Tensor
	if training {
		mean, invStd = t.alloc(tensor.Shape{c}, op), t.alloc(tensor.Shape{c}, op)
		if mean == nil || invStd == nil || !t.check(t.b.BatchNormTrain(y, mean, invStd, x, gamma, beta, runMean, runVar, p), fmt.Sprintf("%s %v", op, x.Shape())) {
			return nil
		}
	} else if !t.check(t.b.BatchNormEval(y, x, gamma, beta, runMean, runVar, p), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	if !t.needsGrad(x, gamma, beta) {
		return y
	}
	if !training {
		// Eval-mode gradients treat the running statistics as constants.
		mean, invStd = runMean, t.evalInvStd(runVar, p.Eps)
		if invStd == nil {
			return nil
		}
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x, gamma, beta}, []*tensor.Tensor{x, mean, invStd},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			gg := t.allocGrad(gamma, op+" grad")
			gb := t.allocGrad(beta, op+" grad")
			if gx == nil || gg == nil || gb == nil {
				return nil
			}
			t.check(t.b.BatchNormGrad(gx, gg, gb, gys[0], x, gamma, mean, invStd, training), op+" grad")
			if !x.RequiresGrad() {
				t.release(gx)
				gx = nil
			}
			return []*tensor.Tensor{gx, gg, gb}
		})
	return y
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
