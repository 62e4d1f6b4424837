package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// AddBroadcast is x + v with NumPy broadcasting of v over x's leading dimensions: v's shape must
// equal x's trailing dimensions (a bias [D] over tokens [B T D], a position embedding [T D] over
// [B T D]). It uses only Backend kernels: x viewed as [R M 1 1] with M = v.Numel() is Expand's
// AxesNHW layout, and the gradient of v is the matching Sum over the R rows.
func (t *Tape) AddBroadcast(x, v *tensor.Tensor) *tensor.Tensor {
	const op = "add_broadcast"
	if !t.ok(x, v) {
		return nil
	}
	xs, vs := x.Shape(), v.Shape()
	if len(vs) == 0 || len(vs) > len(xs) || !xs[len(xs)-len(vs):].Equal(vs) {
		t.Fail(fmt.Errorf("%s: %v must equal the trailing dimensions of %v", op, vs, xs))
		return nil
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	vc := t.Contiguous(v)
	if vc == nil {
		return nil
	}
	m := v.Numel()
	rows := x.Numel() / m
	y := t.alloc(xs, op)
	if y == nil {
		return nil
	}
	yv, err := y.Reshape(rows, m, 1, 1)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	vFlat, err := vc.Reshape(m)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	desc := fmt.Sprintf("%s %v + %v", op, xs, vs)
	if !t.check(t.b.Expand(yv, vFlat, AxesNHW, 1), desc) || !t.check(t.b.Binary(Add, y, y, x), desc) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x, vc}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gy := gys[0]
			var gx, gv *tensor.Tensor
			if vc.RequiresGrad() {
				src := gy
				if !src.IsContiguous() {
					if src = t.alloc(xs, op+" grad"); src == nil || !t.check(t.b.Copy(src, gy), op+" grad") {
						return nil
					}
				}
				rowsView, err := src.Reshape(rows, m, 1, 1)
				if err != nil {
					t.Fail(fmt.Errorf("%s grad: %w", op, err))
					return nil
				}
				if gv = t.alloc(vs, op+" grad"); gv == nil {
					return nil
				}
				gvFlat, _ := gv.Reshape(m)
				if !t.check(t.b.Sum(gvFlat, rowsView, AxesNHW), op+" grad") {
					return nil
				}
				if src != gy {
					t.release(src)
				}
			}
			if x.RequiresGrad() {
				gx = gy // d(x+v)/dx is the identity: pass the gradient through
			}
			return []*tensor.Tensor{gx, gv}
		})
	return y
}
