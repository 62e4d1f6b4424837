package chnet

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// FCN is the paper's "Baseline (FCN-32s)" of Table 6 (official model/baseline.py): the same
// backbone through layer3 and a single 1x1 convolution 1024→1 on its output (stride 16),
// bilinearly upsampled to the input.
type FCN struct {
	Backbone *nn.Res2Net
	Cls      *nn.Conv2d
}

// NewFCN builds the baseline with the given backbone variant.
func NewFCN(init nn.Init, variant nn.Res2NetVariant) (*FCN, error) {
	bb, err := nn.NewRes2Net(init, nn.Res2NetConfig{Variant: variant, Stages: 3})
	if err != nil {
		return nil, err
	}
	cls, err := nn.NewConv2d(init, nn.Conv2dConfig{In: 1024, Out: 1, Kernel: 1, Bias: true})
	if err != nil {
		return nil, err
	}
	return &FCN{Backbone: bb, Cls: cls}, nil
}

// Forward returns logits [N 1 H W].
func (f *FCN) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if t.Err() != nil || x == nil {
		return nil
	}
	if x.Rank() != 4 || x.Dim(1) != 3 {
		t.Fail(fmt.Errorf("fcn: input must be [N 3 H W], got %v", x.Shape()))
		return nil
	}
	feats := f.Backbone.Features(t, x)
	defer t.Scope("cls")()
	return t.ResizeBilinear(f.Cls.Forward(t, feats[len(feats)-1]), x.Dim(2), x.Dim(3), false)
}

// Children implements nn.Module with the same backbone names as CHNet.
func (f *FCN) Children() []nn.Child {
	return append(encodeChildren(f.Backbone), nn.Child{Name: "cls", Module: f.Cls})
}

// Tensors implements nn.Module.
func (f *FCN) Tensors() []nn.Entry { return nil }
