package ops

import (
	"github.com/chnet/chnet/tensor"
)

// Contiguous returns x itself if it is dense, or a dense copy of it (kernels that read a tensor
// as one block, like convolution weights, need this for channel slices). The gradient passes
// through unchanged.
func (t *Tape) Contiguous(x *tensor.Tensor) *tensor.Tensor {
	const op = "contiguous"
	if !t.ok(x) {
		return nil
	}
	if x.IsContiguous() {
		return x
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	y := t.alloc(x.Shape(), op)
	if y == nil || !t.check(t.b.Copy(y, x), op) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor { return gys })
	return y
}
