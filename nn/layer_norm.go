package nn

import (
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// LayerNorm is torch.nn.LayerNorm over the last dimension (elementwise affine): state "weight"
// (initially 1) and "bias" (initially 0), both [D].
type LayerNorm struct {
	Weight, Bias *tensor.Tensor
	P            ops.LayerNormParams
}

// NewLayerNorm creates a normalisation over d features with the given eps (PyTorch's default is
// 1e-5; ViT and TransUNet use 1e-6).
func NewLayerNorm(init Init, d int, eps float32) (*LayerNorm, error) {
	w, err := init.constant(1, d)
	if err != nil {
		return nil, err
	}
	b, err := init.constant(0, d)
	if err != nil {
		return nil, err
	}
	return &LayerNorm{Weight: w.SetRequiresGrad(true), Bias: b.SetRequiresGrad(true), P: ops.LayerNormParams{Eps: eps}}, nil
}

// Forward normalises x [... D].
func (l *LayerNorm) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return t.LayerNorm(x, l.Weight, l.Bias, l.P)
}

// Children implements Module.
func (l *LayerNorm) Children() []Child { return nil }

// Tensors implements Module.
func (l *LayerNorm) Tensors() []Entry {
	return []Entry{{"weight", &l.Weight, Param}, {"bias", &l.Bias, Param}}
}
