package nn

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Linear is torch.nn.Linear on token sequences [B T in] → [B T out]: state "weight" [out in] and
// optional "bias" [out].
type Linear struct {
	Weight, Bias *tensor.Tensor
}

// LinearInit selects a linear layer's initialisation.
type LinearInit int

const (
	// LinearDefault is PyTorch's: kaiming_uniform(a=√5) for the weight, which is U(±1/√in), and
	// U(±1/√in) for the bias.
	LinearDefault LinearInit = iota
	// LinearXavier is xavier_uniform for the weight, U(±√(6/(in+out))), and N(0, 1e-6²) for the
	// bias: ViT's and TransUNet's MLP layers (Mlp._init_weights).
	LinearXavier
)

// NewLinear creates a linear layer from in to out features.
func NewLinear(init Init, in, out int, bias bool, how LinearInit) (*Linear, error) {
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("linear %d->%d: sizes must be positive", in, out)
	}
	l := &Linear{}
	var err error
	if how == LinearXavier {
		l.Weight, err = init.uniform(math.Sqrt(6/float64(in+out)), out, in)
	} else {
		l.Weight, err = init.uniform(1/math.Sqrt(float64(in)), out, in)
	}
	if err != nil {
		return nil, err
	}
	l.Weight.SetRequiresGrad(true)
	if bias {
		if how == LinearXavier {
			l.Bias, err = init.normal(1e-6, out)
		} else {
			l.Bias, err = init.uniform(1/math.Sqrt(float64(in)), out)
		}
		if err != nil {
			return nil, err
		}
		l.Bias.SetRequiresGrad(true)
	}
	return l, nil
}

// Forward applies the layer to x [B T in].
func (l *Linear) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return t.Linear(x, l.Weight, l.Bias)
}

// Children implements Module.
func (l *Linear) Children() []Child { return nil }

// Tensors implements Module.
func (l *Linear) Tensors() []Entry {
	es := []Entry{{"weight", &l.Weight, Param}}
	if l.Bias != nil {
		es = append(es, Entry{"bias", &l.Bias, Param})
	}
	return es
}
