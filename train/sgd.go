// Package train trains and evaluates segmentation models: the optimiser and learning-rate
// schedule of the official recipe, checkpoints, and the training loop.
package train

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// SGD is torch.optim.SGD over a model's trainable parameters, with one momentum buffer each.
type SGD struct {
	b        ops.Backend
	params   []nn.NamedParam
	momentum map[string]*tensor.Tensor
	P        ops.SGDParams
}

// NewSGD creates the optimiser with zeroed momentum buffers (PyTorch's first step, buf = g,
// is the same update).
func NewSGD(b ops.Backend, m nn.Module, p ops.SGDParams) (*SGD, error) {
	s := &SGD{b: b, params: nn.Params(m), momentum: map[string]*tensor.Tensor{}, P: p}
	if p.Momentum != 0 {
		for _, np := range s.params {
			buf, err := ops.Zeros(b, np.Tensor.Shape()...)
			if err != nil {
				return nil, fmt.Errorf("sgd: momentum buffer for %s: %w", np.Name, err)
			}
			s.momentum[np.Name] = buf
		}
	}
	return s, nil
}

// Step updates every parameter that has a gradient, then drops the gradients.
func (s *SGD) Step() error {
	for _, np := range s.params {
		g := np.Tensor.Grad
		if g == nil {
			continue
		}
		buf := s.momentum[np.Name]
		if buf == nil {
			// Without momentum the kernel ignores the buffer; pass the gradient's own storage shape.
			buf = g
		}
		if err := ops.SGDStep(s.b, np.Tensor, g, buf, s.P); err != nil {
			return fmt.Errorf("%s: %w", np.Name, err)
		}
		s.b.Release(g.Storage())
		np.Tensor.Grad = nil
	}
	return nil
}

// State returns the momentum buffers on the host, by parameter name.
func (s *SGD) State() (map[string]nn.HostTensor, error) {
	out := map[string]nn.HostTensor{}
	for name, buf := range s.momentum {
		v, err := s.b.Download(buf)
		if err != nil {
			return nil, fmt.Errorf("sgd state %s: %w", name, err)
		}
		out[name] = nn.HostTensor{Shape: append([]int(nil), buf.Shape()...), Data: v}
	}
	return out, nil
}

// LoadState restores momentum buffers saved by State; every buffer must be present.
func (s *SGD) LoadState(st map[string]nn.HostTensor) error {
	for name, buf := range s.momentum {
		h, ok := st[name]
		if !ok {
			return fmt.Errorf("sgd state: no momentum buffer for %s", name)
		}
		if !tensor.Shape(h.Shape).Equal(buf.Shape()) {
			return fmt.Errorf("sgd state %s: shape %v, parameter has %v", name, h.Shape, buf.Shape())
		}
		if err := s.b.Upload(buf, h.Data); err != nil {
			return fmt.Errorf("sgd state %s: %w", name, err)
		}
	}
	return nil
}

// TriangularLR is the official per-epoch schedule (F3Net's "warm-up and linear decay"):
// lr_e = peak·(1 − |2(e+1)/(E+1) − 1|) for epoch e in [0, E).
func TriangularLR(peak float64, epoch, epochs int) float64 {
	x := 2*float64(epoch+1)/float64(epochs+1) - 1
	if x < 0 {
		x = -x
	}
	return peak * (1 - x)
}
