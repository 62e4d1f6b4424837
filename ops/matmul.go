package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// MatMulParams select which operands of a matrix product are transposed (their last two
// dimensions swapped), as torch.matmul(a.transpose(-1, -2), …) would.
type MatMulParams struct {
	TransA, TransB bool
}

func (p MatMulParams) String() string {
	return fmt.Sprintf("transA %v transB %v", p.TransA, p.TransB)
}

// matMulShape validates a product's operands and returns the output shape [B M N] and the
// contraction length K. Each operand is rank 3 [B R C] or rank 2 [R C] (one matrix shared by
// every batch item, torch.matmul's broadcasting of a matrix); at least one must be rank 3.
func matMulShape(a, b *tensor.Tensor, p MatMulParams) (tensor.Shape, int, error) {
	const op = "matmul"
	for _, o := range []struct {
		what string
		x    *tensor.Tensor
	}{{"a", a}, {"b", b}} {
		if o.x.Rank() != 2 && o.x.Rank() != 3 {
			return nil, 0, fmt.Errorf("%s: %s must be rank 3 [B R C] or rank 2 [R C], got shape %v", op, o.what, o.x.Shape())
		}
		if err := requireLayout(op, o.what, o.x); err != nil {
			return nil, 0, err
		}
	}
	if a.Rank() == 2 && b.Rank() == 2 {
		return nil, 0, fmt.Errorf("%s: at least one operand must be batched (rank 3), got %v and %v", op, a.Shape(), b.Shape())
	}
	// rows and cols of op(x): the last two dimensions, swapped when transposed.
	mat := func(x *tensor.Tensor, trans bool) (int, int) {
		r, c := x.Dim(x.Rank()-2), x.Dim(x.Rank()-1)
		if trans {
			return c, r
		}
		return r, c
	}
	m, ka := mat(a, p.TransA)
	kb, n := mat(b, p.TransB)
	if ka != kb {
		return nil, 0, fmt.Errorf("%s: inner dimensions differ: %v (%v) has %d columns, %v has %d rows", op, a.Shape(), p, ka, b.Shape(), kb)
	}
	batch := 0
	if a.Rank() == 3 {
		batch = a.Dim(0)
	}
	if b.Rank() == 3 {
		if batch != 0 && b.Dim(0) != batch {
			return nil, 0, fmt.Errorf("%s: batch sizes differ: %v and %v", op, a.Shape(), b.Shape())
		}
		batch = b.Dim(0)
	}
	return tensor.Shape{batch, m, n}, ka, nil
}

// MatMul is the batched matrix product op(a)·op(b) (torch.matmul on rank-3 tensors): a [B M K]
// (or [B K M] with TransA), b [B K N] (or [B N K] with TransB), giving [B M N]. Either operand
// may instead be a rank-2 matrix shared by every batch item, as a linear layer's weight is.
//
// Gradients are matrix products again: d op(a) = gy·op(b)ᵀ and d op(b) = op(a)ᵀ·gy, transposed
// back when the operand was. A shared operand's gradient sums over the batch.
func (t *Tape) MatMul(a, b *tensor.Tensor, p MatMulParams) *tensor.Tensor {
	const op = "matmul"
	if !t.ok(a, b) {
		return nil
	}
	shape, _, err := matMulShape(a, b, p)
	if err != nil {
		t.Fail(err)
		return nil
	}
	k := t.transformer(op)
	if k == nil {
		return nil
	}
	y := t.alloc(shape, op)
	if y == nil || !t.check(k.MatMul(y, a, b, p), fmt.Sprintf("%s %v x %v (%v)", op, a.Shape(), b.Shape(), p)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{a, b}, []*tensor.Tensor{a, b},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gy := gys[0]
			var ga, gb *tensor.Tensor
			if a.RequiresGrad() {
				if p.TransA {
					// a holds op(a)ᵀ, so its gradient is (gy·op(b)ᵀ)ᵀ = op(b)·gyᵀ.
					ga = t.matMulGrad(k, a.Shape(), b, gy, MatMulParams{TransA: p.TransB, TransB: true})
				} else {
					ga = t.matMulGrad(k, a.Shape(), gy, b, MatMulParams{TransB: !p.TransB})
				}
			}
			if b.RequiresGrad() {
				if p.TransB {
					// b holds op(b)ᵀ, so its gradient is (op(a)ᵀ·gy)ᵀ = gyᵀ·op(a).
					gb = t.matMulGrad(k, b.Shape(), gy, a, MatMulParams{TransA: true, TransB: p.TransA})
				} else {
					gb = t.matMulGrad(k, b.Shape(), a, gy, MatMulParams{TransA: !p.TransA})
				}
			}
			return []*tensor.Tensor{ga, gb}
		})
	return y
}

// matMulGrad computes the product x·y (with p's transposes) into a gradient of the given shape.
// For a rank-2 (shared) operand the batched product is summed over the batch, which is one
// product when both factors can be viewed as single tall matrices (the usual linear-layer case:
// Σ_i gy_iᵀ·x_i = [gy_0; gy_1; …]ᵀ·[x_0; x_1; …]).
func (t *Tape) matMulGrad(k TransformerKernels, shape tensor.Shape, x, y *tensor.Tensor, p MatMulParams) *tensor.Tensor {
	const op = "matmul grad"
	g := t.alloc(shape, op)
	if g == nil {
		return nil
	}
	if len(shape) == 3 {
		t.check(k.MatMul(g, x, y, p), fmt.Sprintf("%s %v", op, shape))
		return g
	}
	// A shared operand: both factors are batched here (the other operand and gy).
	if p.TransA && !p.TransB && x.IsContiguous() && y.IsContiguous() {
		xs, err1 := x.Reshape(1, x.Dim(0)*x.Dim(1), x.Dim(2))
		ys, err2 := y.Reshape(1, y.Dim(0)*y.Dim(1), y.Dim(2))
		gs, err3 := g.Reshape(1, shape[0], shape[1])
		if err1 == nil && err2 == nil && err3 == nil {
			t.check(k.MatMul(gs, xs, ys, p), fmt.Sprintf("%s %v", op, shape))
			return g
		}
	}
	// General case: per-item products, then a sum over the batch (Sum over N of [B X 1 1]).
	batch := x.Dim(0)
	if x.Rank() != 3 {
		batch = y.Dim(0)
	}
	tmp := t.alloc(tensor.Shape{batch, shape[0], shape[1]}, op)
	if tmp == nil || !t.check(k.MatMul(tmp, x, y, p), fmt.Sprintf("%s %v", op, shape)) {
		return g
	}
	tv, err := tmp.Reshape(batch, shape.Numel(), 1, 1)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return g
	}
	gv, err := g.Reshape(shape.Numel())
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return g
	}
	t.check(t.b.Sum(gv, tv, AxesNHW), op+" batch sum")
	t.release(tmp)
	return g
}
