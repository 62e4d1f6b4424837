package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Conv2D is torch.nn.functional.conv2d: x [N C H W], weight [O C/groups KH KW], optional bias [O].
// Gradient: Conv2DGradInput for x, Conv2DGradWeight for the weight, a sum over N, H, W for the bias.
func (t *Tape) Conv2D(x, w, bias *tensor.Tensor, p Conv2DParams) *tensor.Tensor {
	const op = "conv2d"
	if !t.ok(x, w) {
		return nil
	}
	p = p.Norm()
	yShape, err := conv2DShape(x, w, bias, p)
	if err != nil {
		t.Fail(err)
		return nil
	}
	y := t.allocOut(yShape, op)
	if y == nil || !t.check(t.b.Conv2D(y, x, w, bias, p), fmt.Sprintf("%s %v * %v (%v)", op, x.Shape(), w.Shape(), p)) {
		return nil
	}
	t.recordConv2D(y, x, w, bias, p)
	return y
}

// recordConv2D records the backward rule of y = conv(x, w) + bias.
func (t *Tape) recordConv2D(y, x, w, bias *tensor.Tensor, p Conv2DParams) {
	const op = "conv2d"
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x, w, bias}, []*tensor.Tensor{x, w},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx, gw, gb := t.conv2DGrads(x, w, bias, p, gys[0])
			return []*tensor.Tensor{gx, gw, gb}
		})
}

// conv2DGrads is a convolution's backward rule: the gradients of x, w and bias (each nil when
// that operand needs none) from the output gradient gy.
func (t *Tape) conv2DGrads(x, w, bias *tensor.Tensor, p Conv2DParams, gy *tensor.Tensor) (gx, gw, gb *tensor.Tensor) {
	const op = "conv2d"
	if x.RequiresGrad() {
		if prev := t.accumTarget(x); prev != nil {
			// x has another use whose gradient is pending: add into it.
			if t.check(t.b.Conv2DGradInputAdd(prev, gy, w, p), fmt.Sprintf("%s grad input add %v (%v)", op, x.Shape(), p)) {
				gx = prev
			}
		} else if gx = t.allocGradView(x, op+" grad input"); gx != nil {
			t.check(t.b.Conv2DGradInput(gx, gy, w, p), fmt.Sprintf("%s grad input %v (%v)", op, x.Shape(), p))
		}
	}
	if w.RequiresGrad() {
		if gw = t.allocGradView(w, op+" grad weight"); gw != nil {
			t.check(t.b.Conv2DGradWeight(gw, x, gy, p), fmt.Sprintf("%s grad weight %v (%v)", op, w.Shape(), p))
		}
	}
	if bias != nil && bias.RequiresGrad() {
		if gb = t.allocGrad(bias, op+" grad bias"); gb != nil {
			t.check(t.b.Sum(gb, gy, AxesNHW), op+" grad bias")
		}
	}
	return gx, gw, gb
}

// conv2DShape validates a convolution's operands and returns its output shape.
func conv2DShape(x, w, bias *tensor.Tensor, p Conv2DParams) (tensor.Shape, error) {
	const op = "conv2d"
	if err := requireNCHW(op, "input", x); err != nil {
		return nil, err
	}
	if err := requireNCHW(op, "weight", w); err != nil {
		return nil, err
	}
	if p.Stride < 1 || p.Dilation < 1 || p.Groups < 1 || p.Pad < 0 {
		return nil, fmt.Errorf("%s: invalid parameters (%v)", op, p)
	}
	n, c, h, wd := x.Shape().NCHW()
	o, cg, kh, kw := w.Shape().NCHW()
	if c != cg*p.Groups {
		return nil, fmt.Errorf("%s: input has %d channels, weight %v expects %d (groups %d)", op, c, w.Shape(), cg*p.Groups, p.Groups)
	}
	if o%p.Groups != 0 {
		return nil, fmt.Errorf("%s: %d output channels are not divisible by groups %d", op, o, p.Groups)
	}
	if bias != nil {
		if err := requireVector(op, "bias", bias, o); err != nil {
			return nil, err
		}
	}
	oh, ow := p.OutSize(h, kh), p.OutSize(wd, kw)
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("%s: input %dx%d is too small for a %dx%d kernel (%v)", op, h, wd, kh, kw, p)
	}
	return tensor.Shape{n, o, oh, ow}, nil
}
