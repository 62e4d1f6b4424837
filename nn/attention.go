package nn

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// MultiHeadAttention is ViT's self-attention (TransUNet's Attention module): query, key and value
// projections of the tokens, scaled dot-product attention in each of Heads heads, and an output
// projection. State-dict names are TransUNet's: query, key, value, out. There is no dropout
// (TransUNet's attention dropout rate is 0).
type MultiHeadAttention struct {
	Query, Key, Value, Out *Linear
	Heads                  int
}

// NewMultiHeadAttention creates attention over dim features split into heads heads, with
// PyTorch's default linear initialisation (as TransUNet leaves it).
func NewMultiHeadAttention(init Init, dim, heads int) (*MultiHeadAttention, error) {
	if heads < 1 || dim%heads != 0 {
		return nil, fmt.Errorf("attention: %d features do not split into %d heads", dim, heads)
	}
	a := &MultiHeadAttention{Heads: heads}
	for _, l := range []**Linear{&a.Query, &a.Key, &a.Value, &a.Out} {
		var err error
		if *l, err = NewLinear(init, dim, dim, true, LinearDefault); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Forward attends x [B T D] to itself and returns [B T D].
func (a *MultiHeadAttention) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if t.Err() != nil || x == nil {
		return nil
	}
	if x.Rank() != 3 {
		t.Fail(fmt.Errorf("attention: input must be tokens [B T D], got %v", x.Shape()))
		return nil
	}
	b, n, d := x.Dim(0), x.Dim(1), x.Dim(2)
	split := func(name string, l *Linear) *tensor.Tensor {
		defer t.Scope(name)()
		return SplitHeads(t, l.Forward(t, x), a.Heads)
	}
	q, k, v := split("query", a.Query), split("key", a.Key), split("value", a.Value)
	ctx := ScaledDotProductAttention(t, q, k, v, 1/math.Sqrt(float64(d/a.Heads)))
	merged := t.Reshape(t.Permute(t.Reshape(ctx, b, a.Heads, n, d/a.Heads), 0, 2, 1, 3), b, n, d)
	defer t.Scope("out")()
	return a.Out.Forward(t, merged)
}

// SplitHeads turns tokens [B T h·d] into per-head sequences [B·h T d], head-major within each
// feature vector (feature j belongs to head j/d), as ViT's transpose_for_scores does.
func SplitHeads(t *ops.Tape, x *tensor.Tensor, heads int) *tensor.Tensor {
	if x == nil || t.Err() != nil {
		return nil
	}
	b, n, c := x.Dim(0), x.Dim(1), x.Dim(2)
	if c%heads != 0 {
		t.Fail(fmt.Errorf("attention: %d features do not split into %d heads", c, heads))
		return nil
	}
	return t.Reshape(t.Permute(t.Reshape(x, b, n, heads, c/heads), 0, 2, 1, 3), b*heads, n, c/heads)
}

// ScaledDotProductAttention is softmax(q·kᵀ·scale)·v for q [B Tq d], k and v [B Tk d], giving
// [B Tq d]: the core every attention module here composes (ViT's, and UTNet's with keys and
// values at a reduced resolution).
func ScaledDotProductAttention(t *ops.Tape, q, k, v *tensor.Tensor, scale float64) *tensor.Tensor {
	scores := t.MatMul(q, k, ops.MatMulParams{TransB: true})
	return t.MatMul(t.Softmax(t.Scale(scores, float32(scale))), v, ops.MatMulParams{})
}

// Children implements Module.
func (a *MultiHeadAttention) Children() []Child {
	return []Child{{"query", a.Query}, {"key", a.Key}, {"value", a.Value}, {"out", a.Out}}
}

// Tensors implements Module.
func (a *MultiHeadAttention) Tensors() []Entry { return nil }
