package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Conv2DBatchNormAct is BatchNorm2DAct(Conv2D(x, w, bias, cp), …): a convolution followed by
// batch norm, the residual add and the ReLU. In training without a bias the batch statistics come
// out of the convolution (Backend.Conv2DBatchStats: a GPU gathers them in the convolution's
// epilogue instead of reading its output again) and BatchNormApply finishes; in eval it is the
// two ops. The backward pass is exactly theirs: the two rules are recorded as if the ops had run
// one after the other, so gradients are those of the unfused ops.
func (t *Tape) Conv2DBatchNormAct(x, w, bias *tensor.Tensor, cp Conv2DParams, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu, training bool, bp BatchNormParams) *tensor.Tensor {
	if !training || bias != nil {
		// The two ops; only batch norm's output goes where ConcatOut.Into directs.
		into := t.into
		t.into = nil
		h := t.Conv2D(x, w, bias, cp)
		t.into = into
		return t.BatchNorm2DAct(h, gamma, beta, runMean, runVar, residual, relu, training, bp)
	}
	const op = "conv2d"
	if !t.ok(x, w, gamma, beta, runMean, runVar) {
		return nil
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
	if h == nil || mean == nil || invStd == nil || !t.check(t.b.Conv2DBatchStats(h, mean, invStd, x, w, runMean, runVar, cp, bp),
		fmt.Sprintf("%s %v * %v (%v) with batch statistics", op, x.Shape(), w.Shape(), cp)) {
		return nil
	}
	t.recordConv2D(h, x, w, nil, cp)
	y := t.allocOut(hShape, "batch_norm2d") // a concatenation's slice, inside ConcatOut.Into
	if y == nil || !t.check(t.b.BatchNormApply(y, h, mean, invStd, gamma, beta, residual, relu), fmt.Sprintf("batch_norm2d %v", hShape)) {
		return nil
	}
	t.recordBatchNorm(y, h, gamma, beta, runMean, runVar, residual, mean, invStd, relu, training, bp)
	return y
}
