package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Unary applies an elementwise function (ReLU, Sigmoid, Abs, Neg, GELU).
func (t *Tape) Unary(op UnaryOp, x *tensor.Tensor) *tensor.Tensor {
	name := op.String()
	if !t.ok(x) {
		return nil
	}
	if err := requireLayout(name, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	y := t.allocOut(x.Shape(), name)
	if y == nil || !t.check(t.b.Unary(op, y, x), fmt.Sprintf("%s %v", name, x.Shape())) {
		return nil
	}
	// ReLU and sigmoid derivatives need only the output, abs and GELU only the input, neg
	// neither: the rule keeps alive, and passes the kernel, only what it reads (the other may
	// already be released when the rule runs).
	var xs, ys *tensor.Tensor
	switch op {
	case Abs, GELU:
		xs = x
	case ReLU, Sigmoid:
		ys = y
	}
	t.record(name, []*tensor.Tensor{y}, []*tensor.Tensor{x}, []*tensor.Tensor{xs, ys},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.allocGradView(x, name+" grad")
			if gx != nil {
				t.check(t.b.UnaryGrad(op, gx, gys[0], xs, ys), name+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// GELU is x·Φ(x) in its exact erf form (torch.nn.GELU()).
func (t *Tape) GELU(x *tensor.Tensor) *tensor.Tensor { return t.Unary(GELU, x) }

// ReLU is max(x, 0).
func (t *Tape) ReLU(x *tensor.Tensor) *tensor.Tensor { return t.Unary(ReLU, x) }

// Sigmoid is 1/(1+exp(-x)).
func (t *Tape) Sigmoid(x *tensor.Tensor) *tensor.Tensor { return t.Unary(Sigmoid, x) }

// Binary applies an elementwise function of two same-shaped tensors (Add, Sub, Mul, Div).
func (t *Tape) Binary(op BinaryOp, a, b *tensor.Tensor) *tensor.Tensor {
	name := op.String()
	if !t.ok(a, b) {
		return nil
	}
	if err := requireSameShape(name, a, b); err != nil {
		t.Fail(err)
		return nil
	}
	for _, x := range []*tensor.Tensor{a, b} {
		if err := requireLayout(name, "input", x); err != nil {
			t.Fail(err)
			return nil
		}
	}
	y := t.allocOut(a.Shape(), name)
	if y == nil || !t.check(t.b.Binary(op, y, a, b), fmt.Sprintf("%s %v", name, a.Shape())) {
		return nil
	}
	var saved []*tensor.Tensor
	switch op {
	case Mul:
		saved = []*tensor.Tensor{a, b}
	case Div:
		saved = []*tensor.Tensor{b, y}
	}
	t.record(name, []*tensor.Tensor{y}, []*tensor.Tensor{a, b}, saved,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			return t.binaryGrad(op, gys[0], a, b, y)
		})
	if op == Add && t.produced[y] {
		t.passTo[y] = []*tensor.Tensor{a, b}
	}
	return y
}

// binaryGrad returns the gradients of a op b. An add hands gy itself to both inputs (the tape
// never writes a gradient in place while another pending one views it).
func (t *Tape) binaryGrad(op BinaryOp, gy, a, b, y *tensor.Tensor) []*tensor.Tensor {
	name := op.String() + " grad"
	scaled := func(src *tensor.Tensor, alpha float32) *tensor.Tensor {
		g := t.alloc(src.Shape(), name)
		if g != nil {
			t.check(t.b.Axpby(g, src, alpha, 0), name)
		}
		return g
	}
	product := func(x, z *tensor.Tensor) *tensor.Tensor {
		g := t.alloc(x.Shape(), name)
		if g != nil {
			t.check(t.b.Binary(Mul, g, x, z), name)
		}
		return g
	}
	var ga, gb *tensor.Tensor
	switch op {
	case Add, Sub:
		if a.RequiresGrad() {
			ga = gy
		}
		if b.RequiresGrad() {
			sign := float32(1)
			if op == Sub {
				sign = -1
			}
			if sign == 1 {
				gb = gy
			} else {
				gb = scaled(gy, sign)
			}
		}
	case Mul:
		if a.RequiresGrad() {
			ga = product(gy, b)
		}
		if b.RequiresGrad() {
			gb = product(gy, a)
		}
	case Div:
		// d(a/b)/da = 1/b; d(a/b)/db = −y/b.
		if a.RequiresGrad() {
			if ga = t.alloc(a.Shape(), name); ga != nil {
				t.check(t.b.Binary(Div, ga, gy, b), name)
			}
		}
		if b.RequiresGrad() {
			if gb = product(gy, y); gb != nil {
				t.check(t.b.Binary(Div, gb, gb, b), name)
				t.check(t.b.Axpby(gb, gb, -1, 0), name)
			}
		}
	}
	return []*tensor.Tensor{ga, gb}
}

// Add is a + b.
func (t *Tape) Add(a, b *tensor.Tensor) *tensor.Tensor { return t.Binary(Add, a, b) }

// Mul is a · b elementwise.
func (t *Tape) Mul(a, b *tensor.Tensor) *tensor.Tensor { return t.Binary(Mul, a, b) }

// Scale is alpha · x.
func (t *Tape) Scale(x *tensor.Tensor, alpha float32) *tensor.Tensor {
	const op = "scale"
	if !t.ok(x) {
		return nil
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	y := t.alloc(x.Shape(), op)
	if y == nil || !t.check(t.b.Axpby(y, x, alpha, 0), op) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(t.b.Axpby(gx, gys[0], alpha, 0), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
