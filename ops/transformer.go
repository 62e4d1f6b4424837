package ops

import "fmt"

// transformer returns the tape backend's optional TransformerKernels, or records an error that
// names the op and the backend (a Vulkan backend without them fails the first attention op, not
// a type assertion deep inside a model).
func (t *Tape) transformer(op string) TransformerKernels {
	var k TransformerKernels
	var ok bool
	if tr, traced := t.b.(*tracer); traced {
		k, ok = tr.transformer()
	} else {
		k, ok = t.b.(TransformerKernels)
	}
	if !ok {
		t.Fail(fmt.Errorf("%s: backend %q does not implement ops.TransformerKernels", op, t.b.Name()))
		return nil
	}
	return k
}
