package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// LayerNormParams are layer normalisation's constants; PyTorch's nn.LayerNorm defaults to eps
// 1e-5, ViT and TransUNet use 1e-6.
type LayerNormParams struct {
	Eps float32
}

// LayerNorm is torch.nn.functional.layer_norm over the last dimension of x (D values per row)
// with an affine gamma and beta of shape [D]: y = (x − mean)/sqrt(var + eps)·gamma + beta, with
// the biased variance. The row statistics are kept for the gradient, as batch norm's are.
func (t *Tape) LayerNorm(x, gamma, beta *tensor.Tensor, p LayerNormParams) *tensor.Tensor {
	const op = "layer_norm"
	if !t.ok(x, gamma, beta) {
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
	d := x.Dim(x.Rank() - 1)
	for _, v := range []struct {
		name string
		t    *tensor.Tensor
	}{{"weight", gamma}, {"bias", beta}} {
		if err := requireVector(op, v.name, v.t, d); err != nil {
			t.Fail(err)
			return nil
		}
	}
	if !(p.Eps > 0) {
		t.Fail(fmt.Errorf("%s: eps must be positive, got %g", op, p.Eps))
		return nil
	}
	k := t.transformer(op)
	if k == nil {
		return nil
	}
	rows := x.Numel() / d
	y := t.alloc(x.Shape(), op)
	mean, invStd := t.alloc(tensor.Shape{rows}, op), t.alloc(tensor.Shape{rows}, op)
	if y == nil || mean == nil || invStd == nil {
		return nil
	}
	if !t.check(k.LayerNorm(y, mean, invStd, x, gamma, beta, p), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x, gamma, beta}, []*tensor.Tensor{x, gamma, mean, invStd},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			gg := t.allocGrad(gamma, op+" grad")
			gb := t.allocGrad(beta, op+" grad")
			if gx == nil || gg == nil || gb == nil {
				return nil
			}
			t.check(k.LayerNormGrad(gx, gg, gb, gys[0], x, gamma, mean, invStd), fmt.Sprintf("%s grad %v", op, x.Shape()))
			if !x.RequiresGrad() {
				t.release(gx)
				gx = nil
			}
			return []*tensor.Tensor{gx, gg, gb}
		})
	return y
}
