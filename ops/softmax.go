package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Softmax is torch.softmax(x, dim=-1): each row of the last dimension is exponentiated (after
// subtracting its maximum, so large logits do not overflow) and normalised to sum to one. Its
// gradient, y·(gy − Σ gy·y) per row, needs only the output.
func (t *Tape) Softmax(x *tensor.Tensor) *tensor.Tensor {
	const op = "softmax"
	if !t.ok(x) {
		return nil
	}
	if x.Rank() < 2 {
		t.Fail(fmt.Errorf("%s: input must be [... D] with at least two dimensions, got %v", op, x.Shape()))
		return nil
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	k := t.transformer(op)
	if k == nil {
		return nil
	}
	y := t.alloc(x.Shape(), op)
	if y == nil || !t.check(k.Softmax(y, x), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, []*tensor.Tensor{y},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(k.SoftmaxGrad(gx, gys[0], y), fmt.Sprintf("%s grad %v", op, x.Shape()))
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
