package ops

import (
	"github.com/chnet/chnet/tensor"
)

// Gradients written where they are due. A Split's backward assembles its parts' gradients into
// one tensor; when a rule computing a part's gradient (a convolution's input gradient, say) can
// write it straight into that part's channel slice of the assembled buffer, and an add hands
// its output gradient unchanged to a part, no copy is needed at all. gradTarget finds that
// slice; a region is used only while no pending or in-flight gradient views it.

// splitRec is a recorded Split: its input, parts and their channel sizes, and the buffer the
// input's gradient is assembled in once chosen (buf, cut into bufParts).
type splitRec struct {
	x        *tensor.Tensor
	parts    []*tensor.Tensor
	sizes    []int
	buf      *tensor.Tensor
	bufParts []*tensor.Tensor
}

// accumTarget returns x's pending gradient when a rule may add x's next gradient into it in
// place, saving the accumulating pass: x is an op's output (a leaf's gradient must outlive the
// tape) and no other pending or in-flight gradient views that memory.
func (t *Tape) accumTarget(x *tensor.Tensor) *tensor.Tensor {
	if t.grads == nil || !t.produced[x] {
		return nil
	}
	prev := t.grads.grads[x]
	if prev == nil || t.regionShared(x, prev) {
		return nil
	}
	if _, ok := prev.BatchStride(); !ok {
		return nil
	}
	return prev
}

// maxPassDepth bounds how many pass-through ops gradTarget follows.
const maxPassDepth = 4

// gradTarget returns the view x's gradient should be written into, or nil: x's channel slice
// of its split's gradient buffer, or, for the output of an add, the target of one of the add's
// inputs (the add hands its output gradient to them unchanged). x must have no pending
// gradient yet.
func (t *Tape) gradTarget(x *tensor.Tensor, depth int) *tensor.Tensor {
	if t.grads == nil || depth > maxPassDepth {
		return nil
	}
	if _, pending := t.grads.grads[x]; pending {
		return nil
	}
	if r := t.splitOf[x]; r != nil {
		if !t.splitBuffer(r) {
			return nil
		}
		for i, p := range r.parts {
			if p == x && !t.regionBusy(r.bufParts[i]) {
				return r.bufParts[i]
			}
		}
		return nil
	}
	for _, in := range t.passTo[x] {
		if v := t.gradTarget(in, depth+1); v != nil {
			return v
		}
	}
	return nil
}

// splitBuffer chooses where split r assembles its input's gradient: a buffer that a part's
// pending gradient already is the right channel slice of (a concatenation's gradient whose
// slice passed through unchanged), else a new one. It reports false after an error.
func (t *Tape) splitBuffer(r *splitRec) bool {
	if r.buf != nil {
		return true
	}
	off := 0
	for i, p := range r.parts {
		if pg := t.grads.grads[p]; pg != nil {
			if full := channelParent(pg, r.x.Shape(), off); full != nil {
				return t.setSplitBuffer(r, full)
			}
		}
		off += r.sizes[i]
	}
	buf := t.allocGrad(r.x, "split grad")
	if buf == nil {
		return false
	}
	return t.setSplitBuffer(r, buf)
}

func (t *Tape) setSplitBuffer(r *splitRec, buf *tensor.Tensor) bool {
	parts, err := buf.Split(1, r.sizes...)
	if err != nil {
		t.Fail(err)
		return false
	}
	r.buf, r.bufParts = buf, parts
	return true
}

// channelParent returns the contiguous tensor of the given NCHW shape that v is the channel
// slice starting at channel c0 of, when v's storage holds exactly that tensor; else nil.
func channelParent(v *tensor.Tensor, shape tensor.Shape, c0 int) *tensor.Tensor {
	if v.Rank() != 4 || len(shape) != 4 || v.Storage() == nil || v.Storage().Len() != shape.Numel() {
		return nil
	}
	strides := tensor.ContiguousStrides(shape)
	if v.Dim(0) != shape[0] || v.Dim(2) != shape[2] || v.Dim(3) != shape[3] || c0+v.Dim(1) > shape[1] {
		return nil
	}
	if v.Offset() != c0*strides[1] {
		return nil
	}
	for i, s := range v.Strides() {
		if v.Dim(i) != 1 && s != strides[i] {
			return nil
		}
	}
	full, err := tensor.New(v.Storage(), shape)
	if err != nil {
		return nil
	}
	return full
}

// sameView reports whether a and b view the same elements the same way.
func sameView(a, b *tensor.Tensor) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.Storage() != b.Storage() || a.Offset() != b.Offset() || !a.Shape().Equal(b.Shape()) {
		return false
	}
	for i, s := range a.Strides() {
		if a.Dim(i) != 1 && s != b.Strides()[i] {
			return false
		}
	}
	return true
}

// overlaps reports whether a and b may share an element. Batch-strided views of one storage with
// the same batch stride are compared item by item; anything else by its whole span.
func overlaps(a, b *tensor.Tensor) bool {
	if a.Storage() != b.Storage() {
		return false
	}
	sa, oka := a.BatchStride()
	sb, okb := b.BatchStride()
	if oka && okb && a.Rank() > 0 && b.Rank() > 0 && sa == sb && a.Dim(0) == b.Dim(0) && sa > 0 {
		la, lb := a.Numel()/a.Dim(0), b.Numel()/b.Dim(0)
		lo, hi := min(a.Offset(), b.Offset()), max(a.Offset()+la, b.Offset()+lb)
		if hi-lo <= sa {
			return a.Offset() < b.Offset()+lb && b.Offset() < a.Offset()+la
		}
	}
	return spanStart(a) < spanEnd(b) && spanStart(b) < spanEnd(a)
}

func spanStart(x *tensor.Tensor) int { return x.Offset() }

// spanEnd is one past the last element x views (strides are never negative).
func spanEnd(x *tensor.Tensor) int {
	end := x.Offset() + 1
	for i, s := range x.Strides() {
		end += (x.Dim(i) - 1) * s
	}
	return end
}

// regionBusy reports whether a pending or in-flight gradient views any element of v.
func (t *Tape) regionBusy(v *tensor.Tensor) bool {
	if t.grads != nil {
		for _, g := range t.grads.grads {
			if overlaps(g, v) {
				return true
			}
		}
	}
	for _, g := range t.inflight {
		if g != nil && overlaps(g, v) {
			return true
		}
	}
	return false
}

// regionShared reports whether a gradient other than x's pending one (prev), pending or in
// flight, views any element of prev, so prev must not be written in place.
func (t *Tape) regionShared(x, prev *tensor.Tensor) bool {
	for y, g := range t.grads.grads {
		if y != x && overlaps(g, prev) {
			return true
		}
	}
	for _, g := range t.inflight {
		if g != nil && overlaps(g, prev) {
			return true
		}
	}
	return false
}

// isInflight reports whether x views the storage of an output gradient of the rule running.
func (t *Tape) isInflight(x *tensor.Tensor) bool {
	for _, g := range t.inflight {
		if g != nil && g.Storage() == x.Storage() {
			return true
		}
	}
	return false
}

// held reports whether gx's storage must outlive its handing over: a pending gradient views it,
// the running rule's output gradients do (the tape releases those after the rule), or the rule
// hands it to another input still.
func (t *Tape) held(g *gradSet, gx *tensor.Tensor) bool {
	return g.refs[gx.Storage()] > 0 || t.isInflight(gx) || t.handing[gx.Storage()] > 0
}
