package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Conv2DParams are a 2-D convolution's hyper-parameters, as in torch.nn.functional.conv2d.
// Padding is symmetric; zero values mean stride 1, dilation 1, groups 1.
type Conv2DParams struct {
	Stride, Pad, Dilation, Groups int
}

// Norm fills the defaults of zero fields.
func (p Conv2DParams) Norm() Conv2DParams {
	if p.Stride == 0 {
		p.Stride = 1
	}
	if p.Dilation == 0 {
		p.Dilation = 1
	}
	if p.Groups == 0 {
		p.Groups = 1
	}
	return p
}

// OutSize is the output extent along one axis for input n and kernel k.
func (p Conv2DParams) OutSize(n, k int) int {
	return (n+2*p.Pad-p.Dilation*(k-1)-1)/p.Stride + 1
}

func (p Conv2DParams) String() string {
	return fmt.Sprintf("stride %d pad %d dilation %d groups %d", p.Stride, p.Pad, p.Dilation, p.Groups)
}

// ConvAct is the epilogue of a convolution (Backend.Conv2DAct): after the bias, add Residual (the
// output's shape; nil: none), then with ReLU take max(·, 0).
type ConvAct struct {
	Residual *tensor.Tensor
	ReLU     bool
}

// PoolParams are a square pooling window's hyper-parameters (torch.nn.functional.max_pool2d /
// avg_pool2d). Stride 0 means stride = Kernel.
type PoolParams struct {
	Kernel, Stride, Pad int
	CeilMode            bool
	// CountIncludePad divides border windows of average pooling by Kernel² (PyTorch's default)
	// rather than by the number of in-bounds elements. Ignored by max pooling.
	CountIncludePad bool
}

// Norm fills the default stride.
func (p PoolParams) Norm() PoolParams {
	if p.Stride == 0 {
		p.Stride = p.Kernel
	}
	return p
}

// OutSize is the output extent for input n, with PyTorch's rule that the last window must start
// inside the input or the left padding when CeilMode rounds up.
func (p PoolParams) OutSize(n int) int {
	num := n + 2*p.Pad - p.Kernel
	var out int
	if p.CeilMode {
		out = (num+p.Stride-1)/p.Stride + 1
		if (out-1)*p.Stride >= n+p.Pad {
			out--
		}
	} else {
		out = num/p.Stride + 1
	}
	return out
}

func (p PoolParams) String() string {
	return fmt.Sprintf("kernel %d stride %d pad %d ceil %v include_pad %v", p.Kernel, p.Stride, p.Pad, p.CeilMode, p.CountIncludePad)
}

// BatchNormParams are batch normalisation's constants (PyTorch defaults: eps 1e-5, momentum 0.1).
type BatchNormParams struct {
	Eps, Momentum float32
}

// DefaultBatchNorm is PyTorch's BatchNorm2d default.
var DefaultBatchNorm = BatchNormParams{Eps: 1e-5, Momentum: 0.1}

// StructureLossForm selects between the two structure losses of reference.md §3.
type StructureLossForm int

const (
	// StructureLossOfficial is what the official code computes: the global-mean BCE (its pixel
	// weighting is a no-op there) plus the per-image weighted IoU, averaged over the batch.
	StructureLossOfficial StructureLossForm = iota
	// StructureLossWeighted is F3Net's intended form: per-image pixel-weighted BCE plus weighted IoU.
	StructureLossWeighted
)

func (f StructureLossForm) String() string {
	if f == StructureLossWeighted {
		return "weighted"
	}
	return "official"
}

// SGDParams configure one SGD step with PyTorch's semantics (torch.optim.SGD, dampening 0).
type SGDParams struct {
	LR, Momentum, WeightDecay float32
	Nesterov                  bool
	// LRFrom, when set, is a one-element tensor the step reads its learning rate from (LR is
	// then ignored): a recorded step replays with whatever rate was last written there, so a
	// schedule does not invalidate it.
	LRFrom *tensor.Tensor
	// ScaleFrom, when set, is dynamic loss scaling's state (LossScaleState): the gradients hold
	// scale·g, the step uses g and is skipped when the state says they were not all finite.
	ScaleFrom *tensor.Tensor
}
