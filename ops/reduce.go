package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Sum reduces x over axes: AxesAll to [1], AxesNHW to [C], AxesHW to [N C].
// Its gradient broadcasts the output gradient back (Expand).
func (t *Tape) Sum(x *tensor.Tensor, axes Axes) *tensor.Tensor {
	return t.reduce("sum", x, axes, 1)
}

// Mean is Sum divided by the number of elements reduced into each output.
func (t *Tape) Mean(x *tensor.Tensor, axes Axes) *tensor.Tensor {
	if !t.ok(x) {
		return nil
	}
	shape, err := reducedShape(x, axes)
	if err != nil {
		t.Fail(fmt.Errorf("mean: %w", err))
		return nil
	}
	return t.reduce("mean", x, axes, float32(shape.Numel())/float32(x.Numel()))
}

func (t *Tape) reduce(op string, x *tensor.Tensor, axes Axes, scale float32) *tensor.Tensor {
	if !t.ok(x) {
		return nil
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	shape, err := reducedShape(x, axes)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	y := t.alloc(shape, op)
	if y == nil || !t.check(t.b.Sum(y, x, axes), fmt.Sprintf("%s %v over %v", op, x.Shape(), axes)) {
		return nil
	}
	if scale != 1 && !t.check(t.b.Axpby(y, y, scale, 0), op) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(t.b.Expand(gx, gys[0], axes, scale), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// reducedShape is the shape Sum produces.
func reducedShape(x *tensor.Tensor, axes Axes) (tensor.Shape, error) {
	switch axes {
	case AxesAll:
		return tensor.Shape{1}, nil
	case AxesNHW, AxesHW:
		if x.Rank() != 4 {
			return nil, fmt.Errorf("reducing over %v needs an NCHW tensor, got shape %v", axes, x.Shape())
		}
		if axes == AxesNHW {
			return tensor.Shape{x.Dim(1)}, nil
		}
		return tensor.Shape{x.Dim(0), x.Dim(1)}, nil
	}
	return nil, fmt.Errorf("unknown axes %d", axes)
}
