package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// SGDStep applies one torch.optim.SGD update (dampening 0) to param in place:
// g = grad + wd·param; buf = momentum·buf + g; step = nesterov ? g + momentum·buf : buf;
// param −= lr·step. buf must start at zero, which matches PyTorch's first step (buf = g).
func SGDStep(b Backend, param, grad, momentum *tensor.Tensor, p SGDParams) error {
	return GuardedSGDStep(b, param, grad, momentum, nil, nil, p)
}

// GuardedSGDStep is SGDStep skipped on the device when loss is not finite or halt is set, which
// it then sets (Backend.SGDStep): one dispatch over a whole flat parameter buffer can stop on a
// bad loss without a round trip to the host.
func GuardedSGDStep(b Backend, param, grad, momentum, loss, halt *tensor.Tensor, p SGDParams) error {
	if (loss == nil) != (halt == nil) || loss != nil && (loss.Numel() != 1 || halt.Numel() != 1) {
		return fmt.Errorf("sgd: %v: loss and halt flag must both be one-element tensors or both absent", param)
	}
	if p.LRFrom != nil && p.LRFrom.Numel() != 1 {
		return fmt.Errorf("sgd: %v: the learning-rate tensor must have one element, not %v", param, p.LRFrom.Shape())
	}
	if p.ScaleFrom != nil {
		if err := checkLossScaleState(p.ScaleFrom); err != nil {
			return fmt.Errorf("sgd: %v: %w", param, err)
		}
	}
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
	ParamsWritten()
	if err := b.SGDStep(param, grad, momentum, loss, halt, p); err != nil {
		return fmt.Errorf("sgd: %v: %w", param, err)
	}
	return nil
}
