package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Conv2DAct is Conv2D followed by adding a.Residual (the output's shape; nil: none) and, with
// a.ReLU, a ReLU: relu(conv(x, w) + bias + residual) in the convolution's kernel, without the
// intermediate tensors. Inference runs a network's conv → batch norm (→ add) (→ ReLU) chains this
// way, with the batch norm folded into w and bias (nn.ConvBN). Its backward pass masks the
// gradient by the saved output (y > 0) and hands the residual that masked gradient.
func (t *Tape) Conv2DAct(x, w, bias *tensor.Tensor, a ConvAct, p Conv2DParams) *tensor.Tensor {
	const op = "conv2d_act"
	if !t.ok(x, w) {
		return nil
	}
	p = p.Norm()
	yShape, err := conv2DShape(x, w, bias, p)
	if err != nil {
		t.Fail(err)
		return nil
	}
	res := a.Residual
	if res != nil {
		if !t.ok(res) {
			return nil
		}
		if !res.Shape().Equal(yShape) {
			t.Fail(fmt.Errorf("%s: residual %v does not match the output %v", op, res.Shape(), yShape))
			return nil
		}
		if err := requireLayout(op, "residual", res); err != nil {
			t.Fail(err)
			return nil
		}
	}
	y := t.allocOut(yShape, op) // a concatenation's slice, inside ConcatOut.Into
	if y == nil || !t.check(t.b.Conv2DAct(y, x, w, bias, a, p), fmt.Sprintf("%s %v * %v (%v)", op, x.Shape(), w.Shape(), p)) {
		return nil
	}
	ins := []*tensor.Tensor{x, w, bias}
	if res != nil {
		ins = append(ins, res)
	}
	var ys *tensor.Tensor // the ReLU's gradient reads the output only
	if a.ReLU {
		ys = y
	}
	t.record(op, []*tensor.Tensor{y}, ins, []*tensor.Tensor{x, w, ys},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gy := gys[0]
			if a.ReLU {
				if gy = t.alloc(y.Shape(), op+" grad"); gy == nil {
					return nil
				}
				if !t.check(t.b.UnaryGrad(ReLU, gy, gys[0], nil, y), op+" grad relu") {
					return nil
				}
			}
			gx, gw, gb := t.conv2DGrads(x, w, bias, p, gy)
			gs := []*tensor.Tensor{gx, gw, gb}
			if res != nil {
				var gr *tensor.Tensor
				if res.RequiresGrad() {
					gr = gy // the sum's gradient, after the ReLU's mask
				}
				gs = append(gs, gr)
			}
			if a.ReLU && (res == nil || !res.RequiresGrad()) {
				t.release(gy)
			}
			return gs
		})
	return y
}
