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
	return t.Conv2DForBatchNorm(x, x2, w, bias, cp, runMean, runVar, training, bp).Act(gamma, beta, residual, relu)
}

// ConvForBatchNorm is Conv2DBatchNormAct in two steps: the convolution (with the batch
// statistics, in training), then Act. Independent convolutions (Res2Net's stage-block branches)
// can so all run before their normalisations, sharing one barrier on a GPU, as their
// normalisations then do.
type ConvForBatchNorm struct {
	t               *Tape
	h, mean, invStd *tensor.Tensor // mean, invStd: nil unless fused
	runMean, runVar *tensor.Tensor
	training        bool
	bp              BatchNormParams
}

// Conv2DForBatchNorm runs Conv2DBatchNormAct's convolution; Act finishes. It returns nil after
// an error (Act of nil returns nil).
func (t *Tape) Conv2DForBatchNorm(x, x2, w, bias *tensor.Tensor, cp Conv2DParams, runMean, runVar *tensor.Tensor, training bool, bp BatchNormParams) *ConvForBatchNorm {
	// Only batch norm's output goes where ConcatOut.Into directs.
	into := t.into
	t.into = nil
	defer func() { t.into = into }()
	c := &ConvForBatchNorm{t: t, runMean: runMean, runVar: runVar, training: training, bp: bp}
	if !training || bias != nil {
		if x2 != nil {
			x = t.Add(x, x2)
		}
		if c.h = t.Conv2D(x, w, bias, cp); c.h == nil {
			return nil
		}
		return c
	}
	const op = "conv2d"
	if !t.ok(x, w, runMean, runVar) {
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
	ch := hShape[1]
	for _, v := range []struct {
		name string
		t    *tensor.Tensor
	}{{"running_mean", runMean}, {"running_var", runVar}} {
		if err := requireVector("batch_norm2d", v.name, v.t, ch); err != nil {
			t.Fail(err)
			return nil
		}
	}
	if hShape[0]*hShape[2]*hShape[3] < 2 {
		t.Fail(fmt.Errorf("batch_norm2d: training needs more than one value per channel, got input %v", hShape))
		return nil
	}
	c.h = t.alloc(hShape, op)
	c.mean, c.invStd = t.alloc(tensor.Shape{ch}, "batch_norm2d"), t.alloc(tensor.Shape{ch}, "batch_norm2d")
	if c.h == nil || c.mean == nil || c.invStd == nil || !t.check(t.b.Conv2DBatchStats(c.h, c.mean, c.invStd, x, x2, w, runMean, runVar, cp, bp),
		fmt.Sprintf("%s %v * %v (%v) with batch statistics", op, x.Shape(), w.Shape(), cp)) {
		return nil
	}
	if x2 == nil {
		t.recordConv2D(c.h, x, w, nil, cp)
	} else {
		t.recordConv2DSum(c.h, x, x2, w, cp)
	}
	return c
}

// Act normalises the convolution's output, adds residual (nil: none) and, with relu, applies
// the ReLU: BatchNorm2DAct's output, written where ConcatOut.Into directs.
func (c *ConvForBatchNorm) Act(gamma, beta, residual *tensor.Tensor, relu bool) *tensor.Tensor {
	if c == nil {
		return nil
	}
	t := c.t
	if c.mean == nil {
		return t.BatchNorm2DAct(c.h, gamma, beta, c.runMean, c.runVar, residual, relu, c.training, c.bp)
	}
	if !t.ok(gamma, beta) || !t.checkBatchNorm(c.h.Shape(), gamma, beta, c.runMean, c.runVar, residual, true) {
		return nil
	}
	y := t.allocOut(c.h.Shape(), "batch_norm2d") // a concatenation's slice, inside ConcatOut.Into
	if y == nil || !t.check(t.b.BatchNormApply(y, c.h, c.mean, c.invStd, gamma, beta, residual, relu), fmt.Sprintf("batch_norm2d %v", c.h.Shape())) {
		return nil
	}
	t.recordBatchNorm(y, c.h, gamma, beta, c.runMean, c.runVar, residual, c.mean, c.invStd, relu, true, c.bp)
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
