package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// MaxPool2D is torch.nn.functional.max_pool2d with -inf padding. Its gradient goes to the first
// maximum of each window (PyTorch's choice on ties), recomputed from x instead of stored indices.
func (t *Tape) MaxPool2D(x *tensor.Tensor, p PoolParams) *tensor.Tensor {
	const op = "max_pool2d"
	p = p.Norm()
	y := t.pool2D(op, x, p)
	if y == nil {
		return nil
	}
	if !t.check(t.b.MaxPool2D(y, x, p), fmt.Sprintf("%s %v (%v)", op, x.Shape(), p)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, []*tensor.Tensor{x},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.allocGradView(x, op+" grad")
			if gx != nil {
				t.check(t.b.MaxPool2DGrad(gx, gys[0], x, p), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// AvgPool2D is torch.nn.functional.avg_pool2d (count_include_pad and ceil_mode as in p).
func (t *Tape) AvgPool2D(x *tensor.Tensor, p PoolParams) *tensor.Tensor {
	const op = "avg_pool2d"
	p = p.Norm()
	y := t.pool2D(op, x, p)
	if y == nil {
		return nil
	}
	if !t.check(t.b.AvgPool2D(y, x, p), fmt.Sprintf("%s %v (%v)", op, x.Shape(), p)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.allocGradView(x, op+" grad")
			if gx != nil {
				t.check(t.b.AvgPool2DGrad(gx, gys[0], p), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// pool2D validates a pooling op and allocates its output.
func (t *Tape) pool2D(op string, x *tensor.Tensor, p PoolParams) *tensor.Tensor {
	if !t.ok(x) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	if p.Kernel < 1 || p.Stride < 1 || p.Pad < 0 || 2*p.Pad > p.Kernel {
		t.Fail(fmt.Errorf("%s: invalid parameters (%v): padding must be at most half the kernel", op, p))
		return nil
	}
	n, c, h, w := x.Shape().NCHW()
	oh, ow := p.OutSize(h), p.OutSize(w)
	if oh < 1 || ow < 1 {
		t.Fail(fmt.Errorf("%s: input %dx%d is too small for (%v)", op, h, w, p))
		return nil
	}
	return t.allocOut(tensor.Shape{n, c, oh, ow}, op)
}
