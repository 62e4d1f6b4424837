package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// ResizeBilinear is torch.nn.functional.interpolate(mode="bilinear") to h x w, up or down,
// without antialiasing. With alignCorners false a source coordinate is (d+0.5)·in/out − 0.5,
// clamped at 0; with true it is d·(in−1)/(out−1).
func (t *Tape) ResizeBilinear(x *tensor.Tensor, h, w int, alignCorners bool) *tensor.Tensor {
	const op = "resize_bilinear"
	if !t.ok(x) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	if h < 1 || w < 1 {
		t.Fail(fmt.Errorf("%s: output size %dx%d must be positive", op, h, w))
		return nil
	}
	if x.Dim(2) == h && x.Dim(3) == w {
		return x // PyTorch copies here; the identity needs no kernel and no gradient node
	}
	y := t.alloc(tensor.Shape{x.Dim(0), x.Dim(1), h, w}, op)
	if y == nil || !t.check(t.b.ResizeBilinear(y, x, alignCorners), fmt.Sprintf("%s %v -> %dx%d", op, x.Shape(), h, w)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(t.b.ResizeBilinearGrad(gx, gys[0], alignCorners), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
