package ops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/chnet/chnet/tensor"
)

// Tape runs ops on a backend and records, for each op whose inputs need gradients, what its
// backward rule needs. Backward walks the record in reverse.
//
// Errors are sticky: the first failing op records its error (with the current scope, e.g.
// "encode2.1.0.conv1: conv2d: …") and every later op returns nil without running, so model code
// checks Err once instead of after every op.
//
// Memory: tensors saved for the backward pass belong to the tape. Backward releases each one as
// soon as no remaining backward rule needs it, and Release frees whatever is left, so a training
// step's intermediates are invalid after Backward unless passed to Keep.
type Tape struct {
	b      Backend
	noGrad bool
	// noFold keeps eval-mode batch norms separate from their convolutions (SetFoldBatchNorm).
	noFold bool
	nodes  []*node
	err    error
	scope  []string
	kept   map[tensor.Storage]bool
	// owned are storages allocated by this tape's ops; only these are ever released.
	owned map[tensor.Storage]bool
	// produced marks outputs of recorded ops; trainable tensors not in it are leaves.
	produced map[*tensor.Tensor]bool
	// slots are where leaves' gradients go (SetGradSlots); uses counts, during Backward, the
	// recorded ops reading each slotted leaf, and slotted the leaves whose slot a rule wrote.
	slots map[*tensor.Tensor]*tensor.Tensor
	// lossScale, when set (SetLossScale), is the loss-scale state whose scale seeds Backward.
	lossScale *tensor.Tensor
	uses      map[*tensor.Tensor]int
	slotted   map[*tensor.Tensor]bool
	// splitOf maps each part of a recorded Split to its split, whose input gradient buffer the
	// parts' gradients are written into directly where possible (gradTarget); passTo lists, for
	// the output of an op that hands its gradient unchanged to some inputs (add), those inputs.
	splitOf map[*tensor.Tensor]*splitRec
	passTo  map[*tensor.Tensor][]*tensor.Tensor
	// concatBufs are the outputs NewConcat allocated, by storage, for Concat to recognise parts
	// already written in place; into is where the next op's output goes (Into).
	concatBufs map[tensor.Storage]*tensor.Tensor
	into       *tensor.Tensor
	intoTaken  bool
	// copiedInto maps a Concat input that CopyEarly already copied to its slice.
	copiedInto map[*tensor.Tensor]*tensor.Tensor
	// grads are the pending gradients and inflight the output gradients of the rule running,
	// during Backward: a gradient may be written into a region only when neither views it.
	grads    *gradSet
	inflight []*tensor.Tensor
	// handing counts, per storage, the gradients of the running rule not yet handed to inputs.
	handing map[tensor.Storage]int
	// secondOf maps the output of a rule that sums two incoming gradients itself (batch norm)
	// to the key its second pending gradient is kept under; secondGrad is the running rule's.
	secondOf   map[*tensor.Tensor]*tensor.Tensor
	secondGrad *tensor.Tensor
}

// node is one recorded op: its outputs, the inputs that need gradients, the tensors its backward
// rule keeps alive, and the rule itself.
type node struct {
	name     string
	outs     []*tensor.Tensor
	ins      []*tensor.Tensor
	saved    []*tensor.Tensor
	backward func(gys []*tensor.Tensor) []*tensor.Tensor
	// second is the key of the second gradient of outs[0] (acceptSecond), or nil.
	second *tensor.Tensor
}

// NewTape returns a tape recording ops on b.
func NewTape(b Backend) *Tape {
	t := &Tape{b: b, kept: map[tensor.Storage]bool{}, owned: map[tensor.Storage]bool{}}
	t.resetRecord()
	return t
}

// resetRecord forgets everything recorded about the ops of a step.
func (t *Tape) resetRecord() {
	t.produced = map[*tensor.Tensor]bool{}
	t.splitOf = map[*tensor.Tensor]*splitRec{}
	t.passTo = map[*tensor.Tensor][]*tensor.Tensor{}
	t.concatBufs = map[tensor.Storage]*tensor.Tensor{}
	t.copiedInto = map[*tensor.Tensor]*tensor.Tensor{}
	t.secondOf = map[*tensor.Tensor]*tensor.Tensor{}
	t.grads, t.inflight, t.secondGrad = nil, nil, nil
}

// acceptSecond lets the op just recorded, whose output is y, receive a second gradient of y
// unsummed: its rule reads it as SecondGrad and adds it itself.
func (t *Tape) acceptSecond(y *tensor.Tensor) {
	if len(t.nodes) == 0 {
		return
	}
	n := t.nodes[len(t.nodes)-1]
	if len(n.outs) != 1 || n.outs[0] != y {
		return
	}
	n.second = new(tensor.Tensor)
	t.secondOf[y] = n.second
}

// SetGradSlots makes Backward write the gradient of each leaf x with a slot into slots[x], a
// tensor of x's shape that the caller owns (a view of an optimiser's flat gradient buffer), and
// set x.Grad to it. A rule computes a single-use leaf's gradient straight into its slot; other
// gradients are copied or added there. Leaves that get no gradient keep Grad nil, and a leaf
// whose Grad is already set accumulates into it as usual.
func (t *Tape) SetGradSlots(slots map[*tensor.Tensor]*tensor.Tensor) { t.slots = slots }

// SetLossScale makes Backward seed the loss gradient with the scale in state (LossScaleState,
// on the device) instead of 1, so every gradient comes out multiplied by it (dynamic loss
// scaling; the optimiser divides it out). nil: unscaled.
func (t *Tape) SetLossScale(state *tensor.Tensor) { t.lossScale = state }

// Backend is the backend the tape's ops run on.
func (t *Tape) Backend() Backend { return t.b }

// SetNoGrad turns recording off (inference) or back on; it returns the previous setting.
func (t *Tape) SetNoGrad(v bool) bool {
	old := t.noGrad
	t.noGrad = v
	return old
}

// NoGrad reports whether recording is off.
func (t *Tape) NoGrad() bool { return t.noGrad }

// Err returns the first error any op on the tape hit.
func (t *Tape) Err() error { return t.err }

// Scope pushes a name onto the error context ("layer1", then "0", …); call the returned function
// to pop it: defer t.Scope("conv1")().
func (t *Tape) Scope(name string) func() {
	t.scope = append(t.scope, name)
	return func() { t.scope = t.scope[:len(t.scope)-1] }
}

// ScopeName is the current scope path ("encode2.layer1.0.convs.1"), for profilers.
func (t *Tape) ScopeName() string { return strings.Join(t.scope, ".") }

// Fail records err as the tape's error (if it has none yet), prefixed with the current scope.
func (t *Tape) Fail(err error) {
	if t.err != nil || err == nil {
		return
	}
	if len(t.scope) > 0 {
		err = fmt.Errorf("%s: %w", strings.Join(t.scope, "."), err)
	}
	t.err = err
}

// Keep exempts tensors from release by Backward and Release, so they stay readable after the step.
func (t *Tape) Keep(ts ...*tensor.Tensor) {
	for _, x := range ts {
		if x != nil {
			t.kept[x.Storage()] = true
		}
	}
}

// ok reports whether the tape can run another op on these inputs; a nil input means an earlier
// op failed (its error is already recorded).
func (t *Tape) ok(ins ...*tensor.Tensor) bool {
	if t.err != nil {
		return false
	}
	for _, x := range ins {
		if x == nil {
			t.Fail(errors.New("internal: nil input tensor without a recorded error"))
			return false
		}
	}
	return true
}

// check records a kernel error with the op's description; it reports whether err was nil.
func (t *Tape) check(err error, op string) bool {
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return false
	}
	return true
}

// alloc allocates a tape-owned output tensor.
func (t *Tape) alloc(shape tensor.Shape, op string) *tensor.Tensor {
	y, err := t.b.Alloc(shape)
	if err != nil {
		t.Fail(fmt.Errorf("%s: allocate %v: %w", op, shape, err))
		return nil
	}
	t.owned[y.Storage()] = true
	return y
}

// allocGrad returns where a backward rule writes the gradient of input x: x's gradient slot when
// x is a slotted leaf that this is the only recorded use of and that has no gradient yet, else a
// new tape-owned tensor.
func (t *Tape) allocGrad(x *tensor.Tensor, op string) *tensor.Tensor {
	if s := t.slots[x]; s != nil && x.Grad == nil && t.uses[x] == 1 && !t.slotted[x] && t.isLeaf(x) {
		t.slotted[x] = true
		return s
	}
	return t.alloc(x.Shape(), op)
}

// allocGradView is allocGrad for rules whose kernels accept a batch-strided destination: it may
// also return a channel slice of another gradient buffer where x's gradient is due (gradTarget),
// so no copy has to move it there later.
func (t *Tape) allocGradView(x *tensor.Tensor, op string) *tensor.Tensor {
	if s := t.slots[x]; s != nil && t.isLeaf(x) {
		return t.allocGrad(x, op)
	}
	if v := t.gradTarget(x, 0); v != nil {
		return v
	}
	return t.alloc(x.Shape(), op)
}

// allocOut allocates an op's output, or takes the destination Into set when its shape matches.
func (t *Tape) allocOut(shape tensor.Shape, op string) *tensor.Tensor {
	if t.into != nil && !t.intoTaken && t.into.Shape().Equal(shape) {
		t.intoTaken = true
		return t.into
	}
	return t.alloc(shape, op)
}

// needsGrad reports whether any of ins is (or depends on) a trainable tensor.
func (t *Tape) needsGrad(ins ...*tensor.Tensor) bool {
	if t.noGrad {
		return false
	}
	for _, x := range ins {
		if x != nil && x.RequiresGrad() {
			return true
		}
	}
	return false
}

// record adds an op to the tape if any input needs a gradient. ins lists the differentiable
// inputs in the order backward returns their gradients; saved lists what backward reads.
func (t *Tape) record(name string, outs, ins, saved []*tensor.Tensor, backward func(gys []*tensor.Tensor) []*tensor.Tensor) {
	if !t.needsGrad(ins...) {
		return
	}
	for _, y := range outs {
		y.SetRequiresGrad(true)
		t.produced[y] = true
	}
	t.nodes = append(t.nodes, &node{name: name, outs: outs, ins: ins, saved: saved, backward: backward})
}

// Backward computes the gradient of loss (a one-element tensor) with respect to every trainable
// leaf tensor it depends on and adds it to that tensor's Grad.
func (t *Tape) Backward(loss *tensor.Tensor) error {
	if t.err != nil {
		return t.err
	}
	if loss == nil || loss.Numel() != 1 {
		return fmt.Errorf("backward: loss must be a one-element tensor, got %v", loss)
	}
	if !loss.RequiresGrad() {
		return errors.New("backward: loss does not depend on any trainable tensor")
	}
	t.endPlan()
	t.Keep(loss)

	// The last backward rule to run (the earliest node in tape order) that reads each storage;
	// after it runs, the storage is released. Storages no rule reads are released now.
	lastUse := map[tensor.Storage]int{}
	for i, n := range t.nodes {
		for _, s := range n.saved {
			if s == nil {
				continue
			}
			if _, seen := lastUse[s.Storage()]; !seen {
				lastUse[s.Storage()] = i
			}
		}
	}
	free := map[int][]tensor.Storage{}
	for s, i := range lastUse {
		free[i] = append(free[i], s)
	}
	for s := range t.owned {
		if _, used := lastUse[s]; !used {
			t.releaseStorage(s)
		}
	}

	t.uses, t.slotted = map[*tensor.Tensor]int{}, map[*tensor.Tensor]bool{}
	if t.slots != nil {
		for _, n := range t.nodes {
			for _, x := range n.ins {
				if x != nil && t.slots[x] != nil {
					t.uses[x]++
				}
			}
		}
	}

	seed := t.alloc(loss.Shape(), "backward")
	if seed == nil || !t.check(t.seed(seed), "backward: seed") {
		return t.err
	}
	g := &gradSet{grads: map[*tensor.Tensor]*tensor.Tensor{}, refs: map[tensor.Storage]int{}}
	t.grads = g
	g.put(loss, seed)
	for i := len(t.nodes) - 1; i >= 0 && t.err == nil; i-- {
		n := t.nodes[i]
		gys := make([]*tensor.Tensor, len(n.outs))
		has := false
		for j, y := range n.outs {
			gys[j] = g.take(y)
			has = has || gys[j] != nil
		}
		var g2 *tensor.Tensor
		if n.second != nil {
			g2 = g.take(n.second)
		}
		if has {
			t.inflight, t.secondGrad = append(gys[:len(gys):len(gys)], g2), g2
			done := t.Scope(n.name)
			gxs := n.backward(gys)
			done()
			t.secondGrad = nil
			t.handing = map[tensor.Storage]int{}
			for j, x := range n.ins {
				if j < len(gxs) && gxs[j] != nil && x != nil && x.RequiresGrad() {
					t.handing[gxs[j].Storage()]++
				}
			}
			for j, x := range n.ins {
				if t.err == nil && j < len(gxs) && gxs[j] != nil && x != nil && x.RequiresGrad() {
					t.handing[gxs[j].Storage()]--
					t.accumulate(g, x, gxs[j])
				}
			}
			t.inflight, t.handing = nil, nil
		}
		for _, gy := range append(gys, g2) {
			if gy != nil && g.refs[gy.Storage()] == 0 {
				t.release(gy)
			}
		}
		for _, s := range free[i] {
			t.releaseStorage(s)
		}
		t.nodes[i] = nil // drop references so the host GC can reclaim memory early
	}
	t.nodes = t.nodes[:0]
	t.resetRecord()
	return t.err
}

// seed writes the loss gradient: 1, or the loss scale.
func (t *Tape) seed(dst *tensor.Tensor) error {
	if t.lossScale == nil {
		return t.b.Fill(dst, 1)
	}
	if err := checkLossScaleState(t.lossScale); err != nil {
		return err
	}
	s, err := t.lossScale.Narrow(0, LossScaleValue, 1)
	if err == nil {
		s, err = s.Reshape(dst.Shape()...)
	}
	if err != nil {
		return err
	}
	return t.b.Copy(dst, s)
}

// gradSet holds the pending gradients of non-leaf tensors, counting how many entries view each
// storage: a rule may pass its output gradient through, or return views of it, and the storage
// is released only when no entry views it.
type gradSet struct {
	grads map[*tensor.Tensor]*tensor.Tensor
	refs  map[tensor.Storage]int
}

func (g *gradSet) put(x, gx *tensor.Tensor) {
	g.grads[x] = gx
	g.refs[gx.Storage()]++
}

func (g *gradSet) take(x *tensor.Tensor) *tensor.Tensor {
	gx, ok := g.grads[x]
	if !ok {
		return nil
	}
	delete(g.grads, x)
	g.refs[gx.Storage()]--
	return gx
}

// accumulate adds gx to the gradient of x: into x.Grad for leaves, into the pending set otherwise.
func (t *Tape) accumulate(g *gradSet, x, gx *tensor.Tensor) {
	if slot := t.slots[x]; slot != nil && t.isLeaf(x) && x.Grad == nil {
		if gx != slot {
			if !t.check(t.b.Copy(slot, gx), "copy gradient of "+x.String()) {
				return
			}
			if !t.held(g, gx) {
				t.release(gx)
			}
		}
		x.Grad = slot
		return
	}
	if t.isLeaf(x) {
		if x.Grad == nil {
			// The gradient becomes the leaf's and must outlive the tape. A view of a larger gradient
			// buffer is copied so the leaf does not pin (or share) the whole buffer.
			if g.refs[gx.Storage()] > 0 || t.handing[gx.Storage()] > 0 || !gx.IsContiguous() || gx.Numel() != gx.Storage().Len() {
				c := t.alloc(gx.Shape(), "copy gradient of "+x.String())
				if c == nil || !t.check(t.b.Copy(c, gx), "copy gradient of "+x.String()) {
					return
				}
				gx = c
			}
			delete(t.owned, gx.Storage())
			x.Grad = gx
			return
		}
		t.check(t.b.Binary(Add, x.Grad, x.Grad, gx), "accumulate gradient of "+x.String())
		if !t.held(g, gx) {
			t.release(gx)
		}
		return
	}
	if prev := g.grads[x]; prev != nil {
		if prev == gx {
			return // the rule accumulated into the pending gradient itself
		}
		if key := t.secondOf[x]; key != nil && g.grads[key] == nil {
			g.put(key, gx) // x's rule adds it
			return
		}
		if t.regionShared(x, prev) {
			// Another pending gradient views prev (a rule handed one gradient to several
			// inputs): sum out of place.
			sum := t.alloc(prev.Shape(), "accumulate gradient")
			if sum == nil || !t.check(t.b.Binary(Add, sum, prev, gx), "accumulate gradient") {
				return
			}
			g.take(x)
			if !t.held(g, prev) {
				t.release(prev)
			}
			g.put(x, sum)
		} else {
			t.check(t.b.Binary(Add, prev, prev, gx), "accumulate gradient")
		}
		if !t.held(g, gx) {
			t.release(gx)
		}
		return
	}
	g.put(x, gx)
}

// isLeaf reports whether x is a trainable tensor not produced by a recorded op.
func (t *Tape) isLeaf(x *tensor.Tensor) bool {
	return !t.produced[x]
}

// release frees a tape-owned tensor unless it is kept.
func (t *Tape) release(x *tensor.Tensor) {
	if x != nil {
		t.releaseStorage(x.Storage())
	}
}

func (t *Tape) releaseStorage(s tensor.Storage) {
	if !t.owned[s] || t.kept[s] {
		return
	}
	delete(t.owned, s)
	t.b.Release(s)
}

// Release frees every tensor the tape still owns except kept ones, and clears the record. Call it
// at the end of each step.
func (t *Tape) Release() {
	t.endPlan()
	for s := range t.owned {
		if !t.kept[s] {
			t.b.Release(s)
		}
	}
	t.owned = map[tensor.Storage]bool{}
	t.kept = map[tensor.Storage]bool{}
	t.resetRecord()
	t.nodes = nil
}
