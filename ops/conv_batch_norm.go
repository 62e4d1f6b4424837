package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Conv2DBatchNormAct is BatchNorm2DAct(Conv2D(x + x2, w, bias, cp), …): a convolution (of
// the sum of two inputs when x2 is not nil) followed by batch norm, the residual add and the
// ReLU. In training without a bias the sum is added as the convolution loads its input, and the
// batch statistics come out of the convolution (Backend.Conv2DBatchStats: a GPU gathers them in
// its epilogue instead of reading its output again); BatchNormApply finishes. In eval it is the
// separate ops. The backward pass is exactly theirs: the rules are recorded as if the ops had
// run one after the other (the add's as part of the convolution's: the input gradient goes to
// both addends), so gradients are those of the unfused ops.
func (t *Tape) Conv2DBatchNormAct(x, x2, w, bias *tensor.Tensor, cp Conv2DParams, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu, training bool, bp BatchNormParams) *tensor.Tensor {
	if !training || bias != nil {
		// The separate ops; only batch norm's output goes where ConcatOut.Into directs.
		into := t.into
		t.into = nil
		if x2 != nil {
			x = t.Add(x, x2)
		}
		h := t.Conv2D(x, w, bias, cp)
		t.into = into
		return t.BatchNorm2DAct(h, gamma, beta, runMean, runVar, residual, relu, training, bp)
	}
	const op = "conv2d"
	if !t.ok(x, w, gamma, beta, runMean, runVar) {
		return nil
	}
	if x2 != nil {
		if !t.ok(x2) {
			return nil
		}
		if err := requireSameShape("add", x, x2); err != nil {
			t.Fail(err)
			return nil
		}
	}
	cp = cp.Norm()
	hShape, err := conv2DShape(x, w, nil, cp)
	if err != nil {
		t.Fail(err)
		return nil
	}
	if !t.checkBatchNorm(hShape, gamma, beta, runMean, runVar, residual, training) {
		return nil
	}
	c := hShape[1]
	h := t.alloc(hShape, op)
	mean, invStd := t.alloc(tensor.Shape{c}, "batch_norm2d"), t.alloc(tensor.Shape{c}, "batch_norm2d")
	if h == nil || mean == nil || invStd == nil || !t.check(t.b.Conv2DBatchStats(h, mean, invStd, x, x2, w, runMean, runVar, cp, bp),
		fmt.Sprintf("%s %v * %v (%v) with batch statistics", op, x.Shape(), w.Shape(), cp)) {
		return nil
	}
	if x2 == nil {
		t.recordConv2D(h, x, w, nil, cp)
	} else {
		t.recordConv2DSum(h, x, x2, w, cp)
	}
	y := t.allocOut(hShape, "batch_norm2d") // a concatenation's slice, inside ConcatOut.Into
	if y == nil || !t.check(t.b.BatchNormApply(y, h, mean, invStd, gamma, beta, residual, relu), fmt.Sprintf("batch_norm2d %v", hShape)) {
		return nil
	}
	t.recordBatchNorm(y, h, gamma, beta, runMean, runVar, residual, mean, invStd, relu, training, bp)
	return y
}

// recordConv2DSum records the backward rule of y = conv(x + x2, w): Add's and Conv2D's rules in
// one. The input gradient is computed once and handed to both addends, written where the
// add's output gradient would have been (gradTarget: a split part's slice).
func (t *Tape) recordConv2DSum(y, x, x2, w *tensor.Tensor, p Conv2DParams) {
	const op = "conv2d"
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x, x2, w}, []*tensor.Tensor{x, x2, w},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gy := gys[0]
			var gx, gw *tensor.Tensor
			if x.RequiresGrad() || x2.RequiresGrad() {
				gx = t.gradTarget(x, 1)
				if gx == nil {
					gx = t.gradTarget(x2, 1)
				}
				if gx == nil {
					gx = t.alloc(x.Shape(), op+" grad input")
				}
				if gx != nil {
					t.check(t.b.Conv2DGradInput(gx, gy, w, p), fmt.Sprintf("%s grad input %v (%v)", op, x.Shape(), p))
				}
			}
			if w.RequiresGrad() {
				if gw = t.allocGradView(w, op+" grad weight"); gw != nil {
					t.check(t.b.Conv2DGradWeightSum(gw, x, x2, gy, p), fmt.Sprintf("%s grad weight %v (%v)", op, w.Shape(), p))
				}
			}
			return []*tensor.Tensor{gx, gx, gw}
		})
}
