package nn

import (
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// BatchNorm2d is torch.nn.BatchNorm2d (affine, tracking running statistics).
type BatchNorm2d struct {
	Weight, Bias            *tensor.Tensor
	RunningMean, RunningVar *tensor.Tensor
	NumBatchesTracked       int64
	P                       ops.BatchNormParams
	Training                bool
	// Frozen keeps eval-mode statistics even while the network trains (a frozen backbone).
	Frozen bool
	// fold caches this batch norm folded into the convolution before it, for inference (ConvBN).
	fold *foldedConv
}

// NewBatchNorm2d creates a normalisation over c channels: weight 1, bias 0, running mean 0 and
// variance 1, training mode.
func NewBatchNorm2d(in Init, c int) (*BatchNorm2d, error) {
	bn := &BatchNorm2d{P: ops.DefaultBatchNorm, Training: true}
	var err error
	for _, f := range []struct {
		dst *(*tensor.Tensor)
		v   float32
	}{{&bn.Weight, 1}, {&bn.Bias, 0}, {&bn.RunningMean, 0}, {&bn.RunningVar, 1}} {
		if *f.dst, err = in.constant(f.v, c); err != nil {
			return nil, err
		}
	}
	bn.Weight.SetRequiresGrad(true)
	bn.Bias.SetRequiresGrad(true)
	return bn, nil
}

// Forward normalises x with batch statistics in training mode, running statistics in eval mode.
func (bn *BatchNorm2d) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return bn.ForwardAct(t, x, nil, false)
}

// ForwardAct is Forward followed by adding residual (nil: none) and, with relu, a ReLU, all in
// the normalisation's kernel (ops.Tape.BatchNorm2DAct): ReLU(BN(x)) and ReLU(BN(x) + residual)
// without their intermediate tensors.
func (bn *BatchNorm2d) ForwardAct(t *ops.Tape, x, residual *tensor.Tensor, relu bool) *tensor.Tensor {
	training := bn.Training && !bn.Frozen
	if training {
		bn.NumBatchesTracked++
	}
	return t.BatchNorm2DAct(x, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, residual, relu, training, bn.P)
}

// ForwardConvAct is ForwardAct(t, conv.Forward(t, x), residual, relu). In training, with a
// bias-free convolution, the convolution gathers the batch statistics as it writes its output
// (ops.Tape.Conv2DBatchNormAct), sparing batch norm a pass over it.
func (bn *BatchNorm2d) ForwardConvAct(t *ops.Tape, conv *Conv2d, x, residual *tensor.Tensor, relu bool) *tensor.Tensor {
	return bn.Act(bn.Conv(t, conv, x, nil), residual, relu)
}

// Conv runs ForwardConvAct's convolution, of x + x2 when x2 is not nil (in training, with a
// bias-free convolution, the convolution adds the two as it loads them, and no pass writes the
// sum); Act finishes. Independent branches can so run their convolutions first.
func (bn *BatchNorm2d) Conv(t *ops.Tape, conv *Conv2d, x, x2 *tensor.Tensor) *ops.ConvForBatchNorm {
	training := bn.Training && !bn.Frozen
	if training {
		bn.NumBatchesTracked++
	}
	return t.Conv2DForBatchNorm(x, x2, conv.Weight, conv.Bias, conv.P, bn.RunningMean, bn.RunningVar, training, bn.P)
}

// Act normalises what Conv computed, adds residual (nil: none) and, with relu, applies the ReLU.
func (bn *BatchNorm2d) Act(c *ops.ConvForBatchNorm, residual *tensor.Tensor, relu bool) *tensor.Tensor {
	return c.Act(bn.Weight, bn.Bias, residual, relu)
}

// SetTraining implements Trainer.
func (bn *BatchNorm2d) SetTraining(v bool) { bn.Training = v }

// Children implements Module.
func (bn *BatchNorm2d) Children() []Child { return nil }

// Tensors implements Module.
func (bn *BatchNorm2d) Tensors() []Entry {
	return []Entry{
		{"weight", &bn.Weight, Param}, {"bias", &bn.Bias, Param},
		{"running_mean", &bn.RunningMean, Buffer}, {"running_var", &bn.RunningVar, Buffer},
	}
}

// Counters implements Counters.
func (bn *BatchNorm2d) Counters() []Counter {
	return []Counter{{"num_batches_tracked", &bn.NumBatchesTracked}}
}
