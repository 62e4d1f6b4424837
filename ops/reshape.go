package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Reshape is x.reshape(shape): a view with the same elements in row-major order, copying x first
// only if it is not contiguous (a channel slice). The gradient is the output gradient reshaped
// back, also a view unless that gradient is itself a strided view.
func (t *Tape) Reshape(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	const op = "reshape"
	if !t.ok(x) {
		return nil
	}
	s := tensor.Shape(shape)
	if err := s.Validate(); err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	if s.Numel() != x.Numel() {
		t.Fail(fmt.Errorf("%s: %v has %d elements, %v has %d", op, x.Shape(), x.Numel(), s, s.Numel()))
		return nil
	}
	src := t.Contiguous(x)
	if src == nil {
		return nil
	}
	y, err := src.Reshape(shape...)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	inShape := x.Shape().Clone()
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{src}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gy := gys[0]
			if !gy.IsContiguous() {
				c := t.alloc(gy.Shape(), op+" grad")
				if c == nil || !t.check(t.b.Copy(c, gy), op+" grad") {
					return nil
				}
				gy = c
			}
			gx, err := gy.Reshape(inShape...)
			if err != nil {
				t.Fail(fmt.Errorf("%s grad: %w", op, err))
				return nil
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
