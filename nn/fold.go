package nn

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ConvBN runs c, then bn, then adds residual (nil: none) and, with relu, a ReLU. In inference —
// bn in eval mode (or frozen) on a no-grad tape that folds (ops.Tape.FoldsBatchNorm) — it is one
// convolution (ops.Tape.Conv2DAct) with bn folded into its weight and bias:
//
//	scale = γ/√(running_var+ε), w' = w·scale (per output channel), b' = β + (bias − running_mean)·scale,
//
// which the kernel's epilogue finishes with the residual and the ReLU: the normalisation's pass
// over memory, and its kernel, disappear. Otherwise (training, or gradients wanted) it is
// bn.ForwardConvAct: c's convolution, gathering the batch statistics in training, and then bn's
// fused kernel.
func ConvBN(t *ops.Tape, c *Conv2d, bn *BatchNorm2d, x, residual *tensor.Tensor, relu bool) *tensor.Tensor {
	if !bn.Folds(t) {
		return bn.ForwardConvAct(t, c, x, residual, relu)
	}
	f, err := bn.folded(t.Device(), c)
	if err != nil {
		t.Fail(fmt.Errorf("fold batch norm: %w", err))
		return nil
	}
	return t.Conv2DAct(x, f.w, f.bias, ops.ConvAct{Residual: residual, ReLU: relu}, c.P)
}

// BNConv runs bn and then c, a 1x1 convolution without padding (CHNet's classifier: ReLU, batch
// norm, 1x1 convolution). In inference it is one convolution with bn folded into its input side:
//
//	w'[o][i] = w[o][i]·scale[i], b'[o] = bias[o] + Σ_i w[o][i]·(β[i] − running_mean[i]·scale[i]),
//
// exact because a 1x1 convolution without padding sees every normalised value and nothing else.
// Otherwise (training, gradients, other convolutions) bn's kernel, then c.
func BNConv(t *ops.Tape, bn *BatchNorm2d, c *Conv2d, x *tensor.Tensor) *tensor.Tensor {
	p := c.P.Norm()
	pointwise := c.Weight.Dim(2) == 1 && c.Weight.Dim(3) == 1 && p.Pad == 0 && p.Groups == 1
	if !pointwise || !bn.Folds(t) {
		return c.Forward(t, bn.Forward(t, x))
	}
	f, err := bn.foldedInto(t.Device(), c)
	if err != nil {
		t.Fail(fmt.Errorf("fold batch norm: %w", err))
		return nil
	}
	return t.Conv2D(x, f.w, f.bias, c.P)
}

// Folds reports whether bn runs folded into its convolution on t (ConvBN).
func (bn *BatchNorm2d) Folds(t *ops.Tape) bool {
	return t.Err() == nil && t.FoldsBatchNorm() && !(bn.Training && !bn.Frozen)
}

// foldedConv is a convolution with a batch norm folded in, cached on the batch norm. It is valid
// while it was computed from the same tensors and no parameter has been written since
// (ops.ParamVersion): after a training step, or loading a checkpoint, the next inference folds
// again.
type foldedConv struct {
	dev     ops.Backend
	w, bias *tensor.Tensor
	from    [6]*tensor.Tensor // conv weight, conv bias, γ, β, running mean, running var
	input   bool              // folded into the convolution's input side (BNConv)
	version uint64
}

// folded returns bn folded into c (c's output side) on dev, from the cache when still valid.
func (bn *BatchNorm2d) folded(dev ops.Backend, c *Conv2d) (*foldedConv, error) {
	return bn.cachedFold(dev, c, false)
}

// foldedInto returns bn folded into the input side of c, a 1x1 convolution, on dev.
func (bn *BatchNorm2d) foldedInto(dev ops.Backend, c *Conv2d) (*foldedConv, error) {
	return bn.cachedFold(dev, c, true)
}

func (bn *BatchNorm2d) cachedFold(dev ops.Backend, c *Conv2d, input bool) (*foldedConv, error) {
	from := [6]*tensor.Tensor{c.Weight, c.Bias, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar}
	version := ops.ParamVersion()
	if f := bn.fold; f != nil && f.dev == dev && f.from == from && f.input == input && f.version == version {
		return f, nil
	}
	bn.dropFold()
	f, err := foldConvBN(dev, c, bn, input)
	if err != nil {
		return nil, err
	}
	f.from, f.input, f.version = from, input, version
	bn.fold = f
	return f, nil
}

// dropFold releases the cached folded convolution, if any.
func (bn *BatchNorm2d) dropFold() {
	if f := bn.fold; f != nil {
		f.dev.Release(f.w.Storage())
		f.dev.Release(f.bias.Storage())
		bn.fold = nil
	}
}

// foldConvBN computes the folded weight and bias on the host, in float64, and uploads them:
// bn folded into c's output channels, or with input into its input channels (c 1x1).
func foldConvBN(dev ops.Backend, c *Conv2d, bn *BatchNorm2d, input bool) (*foldedConv, error) {
	read := func(x *tensor.Tensor, what string) ([]float32, error) {
		v, err := dev.Download(x)
		if err != nil {
			return nil, fmt.Errorf("read %s %v: %w", what, x, err)
		}
		return v, nil
	}
	o := c.Weight.Dim(0)
	if !input && bn.Weight.Numel() != o {
		return nil, fmt.Errorf("batch norm over %d channels after a convolution with %d outputs", bn.Weight.Numel(), o)
	}
	if input && bn.Weight.Numel() != c.Weight.Dim(1) {
		return nil, fmt.Errorf("batch norm over %d channels before a convolution with %d inputs", bn.Weight.Numel(), c.Weight.Dim(1))
	}
	w, err := read(c.Weight, "conv weight")
	if err != nil {
		return nil, err
	}
	var cb []float32
	if c.Bias != nil {
		if cb, err = read(c.Bias, "conv bias"); err != nil {
			return nil, err
		}
	}
	var vs [4][]float32
	for i, x := range []*tensor.Tensor{bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar} {
		if vs[i], err = read(x, "batch norm"); err != nil {
			return nil, err
		}
	}
	gamma, beta, mean, variance := vs[0], vs[1], vs[2], vs[3]
	per := len(w) / o
	bias := make([]float32, o)
	if input {
		// w[k][i]·(scale[i]·x[i] + shift[i]) summed over i.
		in := len(gamma)
		scale, shift := make([]float64, in), make([]float64, in)
		for i := range scale {
			scale[i] = float64(gamma[i]) / math.Sqrt(float64(variance[i])+float64(bn.P.Eps))
			shift[i] = float64(beta[i]) - float64(mean[i])*scale[i]
		}
		for k := 0; k < o; k++ {
			var b float64
			if cb != nil {
				b = float64(cb[k])
			}
			row := w[k*per : (k+1)*per]
			for i, v := range row {
				b += float64(v) * shift[i]
				row[i] = float32(float64(v) * scale[i])
			}
			bias[k] = float32(b)
		}
	}
	for k := 0; k < o && !input; k++ {
		s := float64(gamma[k]) / math.Sqrt(float64(variance[k])+float64(bn.P.Eps))
		row := w[k*per : (k+1)*per]
		for i, v := range row {
			row[i] = float32(float64(v) * s)
		}
		b := -float64(mean[k])
		if cb != nil {
			b += float64(cb[k])
		}
		bias[k] = float32(float64(beta[k]) + b*s)
	}
	fw, err := ops.FromHost(dev, w, c.Weight.Shape()...)
	if err != nil {
		return nil, fmt.Errorf("upload folded weight: %w", err)
	}
	fb, err := ops.FromHost(dev, bias, o)
	if err != nil {
		dev.Release(fw.Storage())
		return nil, fmt.Errorf("upload folded bias: %w", err)
	}
	return &foldedConv{dev: dev, w: fw, bias: fb}, nil
}
