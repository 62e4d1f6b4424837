package nn

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Conv2d is torch.nn.Conv2d: state "weight" [out, in/groups, k, k] and optional "bias" [out].
type Conv2d struct {
	Weight, Bias *tensor.Tensor
	P            ops.Conv2DParams
}

// Conv2dConfig describes a square convolution.
type Conv2dConfig struct {
	In, Out, Kernel int
	ops.Conv2DParams
	Bias bool
	Init ConvInit
}

// NewConv2d creates a convolution initialised as cfg.Init says.
func NewConv2d(in Init, cfg Conv2dConfig) (*Conv2d, error) {
	p := cfg.Conv2DParams.Norm()
	if cfg.In%p.Groups != 0 || cfg.Out%p.Groups != 0 {
		return nil, fmt.Errorf("conv2d %d->%d: channels not divisible by groups %d", cfg.In, cfg.Out, p.Groups)
	}
	fanIn := cfg.In / p.Groups * cfg.Kernel * cfg.Kernel
	c := &Conv2d{P: p}
	var err error
	if cfg.Init == KaimingFanOut {
		c.Weight, err = in.normal(cfg.Init.std(cfg.Out, cfg.Kernel), cfg.Out, cfg.In/p.Groups, cfg.Kernel, cfg.Kernel)
	} else {
		c.Weight, err = in.uniform(1/math.Sqrt(float64(fanIn)), cfg.Out, cfg.In/p.Groups, cfg.Kernel, cfg.Kernel)
	}
	if err != nil {
		return nil, err
	}
	c.Weight.SetRequiresGrad(true)
	if cfg.Bias {
		if c.Bias, err = in.uniform(1/math.Sqrt(float64(fanIn)), cfg.Out); err != nil {
			return nil, err
		}
		c.Bias.SetRequiresGrad(true)
	}
	return c, nil
}

// Forward applies the convolution.
func (c *Conv2d) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return t.Conv2D(x, c.Weight, c.Bias, c.P)
}

// Children implements Module.
func (c *Conv2d) Children() []Child { return nil }

// Tensors implements Module.
func (c *Conv2d) Tensors() []Entry {
	es := []Entry{{"weight", &c.Weight, Param}}
	if c.Bias != nil {
		es = append(es, Entry{"bias", &c.Bias, Param})
	}
	return es
}
