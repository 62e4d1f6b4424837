package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Concat joins NCHW tensors along the channel dimension (torch.cat(xs, 1)) with one copy each.
// Its gradient is views of the output gradient: no copies.
func (t *Tape) Concat(xs ...*tensor.Tensor) *tensor.Tensor {
	const op = "concat"
	if !t.ok(xs...) {
		return nil
	}
	if len(xs) == 0 {
		t.Fail(fmt.Errorf("%s: no inputs", op))
		return nil
	}
	n, _, h, w := 0, 0, 0, 0
	total := 0
	for i, x := range xs {
		if err := requireNCHW(op, fmt.Sprintf("input %d", i), x); err != nil {
			t.Fail(err)
			return nil
		}
		if i == 0 {
			n, h, w = x.Dim(0), x.Dim(2), x.Dim(3)
		} else if x.Dim(0) != n || x.Dim(2) != h || x.Dim(3) != w {
			t.Fail(fmt.Errorf("%s: input %d has shape %v, input 0 has %v: only channels may differ", op, i, x.Shape(), xs[0].Shape()))
			return nil
		}
		total += x.Dim(1)
	}
	y := t.alloc(tensor.Shape{n, total, h, w}, op)
	if y == nil {
		return nil
	}
	sizes := make([]int, len(xs))
	for i, x := range xs {
		sizes[i] = x.Dim(1)
	}
	parts, err := y.Split(1, sizes...)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	for i, x := range xs {
		if !t.check(t.b.Copy(parts[i], x), op) {
			return nil
		}
	}
	t.record(op, []*tensor.Tensor{y}, xs, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			views, err := gys[0].Split(1, sizes...)
			if err != nil {
				t.Fail(fmt.Errorf("%s grad: %w", op, err))
				return nil
			}
			return views
		})
	return y
}

// Split cuts x along the channel dimension into views of the given sizes (torch.split(x, sizes, 1)).
// Its gradient assembles the parts' gradients into one tensor, with zeros for unused parts.
func (t *Tape) Split(x *tensor.Tensor, sizes ...int) []*tensor.Tensor {
	const op = "split"
	if !t.ok(x) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	parts, err := x.Split(1, sizes...)
	if err != nil {
		t.Fail(err)
		return nil
	}
	t.record(op, parts, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx == nil {
				return nil
			}
			dst, _ := gx.Split(1, sizes...)
			for i, g := range gys {
				var err error
				if g == nil {
					err = t.b.Fill(dst[i], 0)
				} else {
					err = t.b.Copy(dst[i], g)
				}
				if !t.check(err, op+" grad") {
					return nil
				}
			}
			return []*tensor.Tensor{gx}
		})
	return parts
}
