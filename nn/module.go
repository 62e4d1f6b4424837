// Package nn builds networks from ops: modules with named parameters and buffers whose state-dict
// names are PyTorch's, train/eval mode, PyTorch's default initialisation, and transfer between
// backends.
package nn

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Kind says what a module's tensor is for.
type Kind int

const (
	// Param is trained by the optimiser.
	Param Kind = iota
	// Buffer is state updated in the forward pass (batch-norm running statistics).
	Buffer
)

// Entry is one tensor a module owns, named as in PyTorch's state_dict. Ptr lets the tensor be
// replaced (loading, moving to another backend) without the module knowing.
type Entry struct {
	Name string
	Ptr  **tensor.Tensor
	Kind Kind
}

// Counter is an integer a module keeps in its state dict (num_batches_tracked).
type Counter struct {
	Name string
	Ptr  *int64
}

// Child is a sub-module and its state-dict name ("layer1", "0", "conv1").
type Child struct {
	Name   string
	Module Module
}

// Module is anything with named state. Forward methods are per-type (their arguments differ).
type Module interface {
	// Children lists sub-modules in PyTorch's registration order.
	Children() []Child
	// Tensors lists the module's own parameters and buffers (not its children's).
	Tensors() []Entry
}

// Counters is implemented by modules with integer state.
type Counters interface {
	Counters() []Counter
}

// Trainer is implemented by modules whose behaviour differs in training and eval mode.
type Trainer interface {
	SetTraining(bool)
}

// Walk visits every tensor of m and its descendants with its full dotted name.
func Walk(m Module, prefix string, fn func(name string, e Entry)) {
	for _, e := range m.Tensors() {
		fn(join(prefix, e.Name), e)
	}
	for _, c := range m.Children() {
		Walk(c.Module, join(prefix, c.Name), fn)
	}
}

// WalkCounters visits every integer state entry of m and its descendants.
func WalkCounters(m Module, prefix string, fn func(name string, c Counter)) {
	if cs, ok := m.(Counters); ok {
		for _, c := range cs.Counters() {
			fn(join(prefix, c.Name), c)
		}
	}
	for _, c := range m.Children() {
		WalkCounters(c.Module, join(prefix, c.Name), fn)
	}
}

// WalkModules visits m and every descendant.
func WalkModules(m Module, fn func(Module)) {
	fn(m)
	for _, c := range m.Children() {
		WalkModules(c.Module, fn)
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// NamedParam is a trainable tensor with its state-dict name.
type NamedParam struct {
	Name   string
	Tensor *tensor.Tensor
}

// Params lists m's trainable tensors (those with RequiresGrad) in state-dict order.
func Params(m Module) []NamedParam {
	var ps []NamedParam
	Walk(m, "", func(name string, e Entry) {
		if e.Kind == Param && (*e.Ptr).RequiresGrad() {
			ps = append(ps, NamedParam{name, *e.Ptr})
		}
	})
	return ps
}

// CountParams is the number of parameter elements of m (trainable or frozen).
func CountParams(m Module) int {
	n := 0
	Walk(m, "", func(_ string, e Entry) {
		if e.Kind == Param {
			n += (*e.Ptr).Numel()
		}
	})
	return n
}

// SetTraining switches every module under m to training or eval mode.
func SetTraining(m Module, training bool) {
	WalkModules(m, func(x Module) {
		if t, ok := x.(Trainer); ok {
			t.SetTraining(training)
		}
	})
}

// SetRequiresGrad freezes (false) or unfreezes every parameter under m.
func SetRequiresGrad(m Module, v bool) {
	Walk(m, "", func(_ string, e Entry) {
		if e.Kind == Param {
			(*e.Ptr).SetRequiresGrad(v)
		}
	})
}

// Freeze stops training m: its parameters get no gradients and its batch norms keep their
// running statistics (eval mode) even when the network around them trains.
func Freeze(m Module) {
	SetRequiresGrad(m, false)
	WalkModules(m, func(x Module) {
		if bn, ok := x.(*BatchNorm2d); ok {
			bn.Frozen = true
		}
	})
}

// ZeroGrad drops every parameter's accumulated gradient, releasing its memory.
func ZeroGrad(b ops.Backend, m Module) {
	Walk(m, "", func(_ string, e Entry) {
		t := *e.Ptr
		if t.Grad != nil {
			b.Release(t.Grad.Storage())
			t.Grad = nil
		}
	})
}

// Release frees every tensor of m (and its gradients) on b now, instead of when the garbage
// collector finds them: what a device holds then no longer depends on when it runs. m must not
// be used afterwards.
func Release(b ops.Backend, m Module) {
	WalkModules(m, func(x Module) {
		if bn, ok := x.(*BatchNorm2d); ok {
			bn.dropFold()
		}
	})
	Walk(m, "", func(_ string, e Entry) {
		t := *e.Ptr
		if t.Grad != nil {
			b.Release(t.Grad.Storage())
		}
		b.Release(t.Storage())
	})
}

// MoveTo copies every tensor of m from backend `from` to backend `to`, replacing them in place
// and keeping names and trainability. Gradients are dropped.
func MoveTo(m Module, from, to ops.Backend) error {
	WalkModules(m, func(x Module) {
		if bn, ok := x.(*BatchNorm2d); ok {
			bn.dropFold()
		}
	})
	var err error
	Walk(m, "", func(name string, e Entry) {
		if err != nil {
			return
		}
		old := *e.Ptr
		v, derr := from.Download(old)
		if derr != nil {
			err = fmt.Errorf("move %s: %w", name, derr)
			return
		}
		nt, uerr := ops.FromHost(to, v, old.Shape()...)
		if uerr != nil {
			err = fmt.Errorf("move %s: %w", name, uerr)
			return
		}
		nt.Name = old.Name
		nt.SetRequiresGrad(old.RequiresGrad())
		*e.Ptr = nt
	})
	return err
}

// Segmenter is a network that maps an image batch [N 3 H W] to logits [N 1 H W].
type Segmenter interface {
	Module
	Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor
}
