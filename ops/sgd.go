package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// SGDStep applies one torch.optim.SGD update (dampening 0) to param in place:
// g = grad + wd·param; buf = momentum·buf + g; step = nesterov ? g + momentum·buf : buf;
// param −= lr·step. buf must start at zero, which matches PyTorch's first step (buf = g).
func SGDStep(b Backend, param, grad, momentum *tensor.Tensor, p SGDParams) error {
	for _, v := range []*tensor.Tensor{grad, momentum} {
		if v == nil || !v.Shape().Equal(param.Shape()) {
			return fmt.Errorf("sgd: %v: gradient and momentum buffer must match the parameter's shape", param)
		}
	}
	for _, v := range []*tensor.Tensor{param, grad, momentum} {
		if !v.IsContiguous() {
			return fmt.Errorf("sgd: %v: tensors must be contiguous", param)
		}
	}
	if err := b.SGDStep(param, grad, momentum, p); err != nil {
		return fmt.Errorf("sgd: %v: %w", param, err)
	}
	return nil
}
