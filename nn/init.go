package nn

import (
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Init draws initial values; the same RNG state gives the same network.
type Init struct {
	B   ops.Backend
	RNG *tensor.RNG
}

// uniform allocates a tensor with values uniform in [-bound, bound).
func (in Init) uniform(bound float64, shape ...int) (*tensor.Tensor, error) {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = float32(in.RNG.Uniform(-bound, bound))
	}
	return ops.FromHost(in.B, v, shape...)
}

// normal allocates a tensor with values from N(0, std²).
func (in Init) normal(std float64, shape ...int) (*tensor.Tensor, error) {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = float32(in.RNG.Normal() * std)
	}
	return ops.FromHost(in.B, v, shape...)
}

// constant allocates a tensor filled with c.
func (in Init) constant(c float32, shape ...int) (*tensor.Tensor, error) {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = c
	}
	return ops.FromHost(in.B, v, shape...)
}

// ConvInit selects a convolution's weight initialisation.
type ConvInit int

const (
	// DefaultInit is PyTorch's Conv2d default: kaiming_uniform(a=√5), i.e. U(±1/√fan_in) for the
	// weight, and U(±1/√fan_in) for the bias.
	DefaultInit ConvInit = iota
	// KaimingFanOut is kaiming_normal(mode="fan_out", nonlinearity="relu"), N(0, 2/fan_out): what
	// the Res2Net constructors apply to every convolution.
	KaimingFanOut
)

// std is kaiming_normal's standard deviation; PyTorch's fan_out ignores groups.
func (c ConvInit) std(outC, k int) float64 {
	return math.Sqrt(2 / float64(outC*k*k))
}
