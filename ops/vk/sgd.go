package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// sgdPush mirrors sgd.comp's push block.
type sgdPush struct {
	Start, End, WOff, GOff, BOff uint32
	LR, Momentum, WD             float32
	Nesterov                     uint32
	Guard, LOff, HOff            uint32
	LRDev, LROff                 uint32
	Scaled, SOff                 uint32
}

// SGDStep implements ops.Backend: one dispatch per binding-sized piece, so a flat buffer of
// every parameter is updated at once.
func (b *Backend) SGDStep(param, grad, momentum, loss, halt *tensor.Tensor, p ops.SGDParams) error {
	const what = "sgd"
	os := make([]operand, 3)
	for i, t := range []*tensor.Tensor{param, grad, momentum} {
		o, err := b.dense(t)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if o.n*o.inner != int64(param.Numel()) {
			return fmt.Errorf("%s: %v does not match the parameter %v", what, t.Shape(), param.Shape())
		}
		os[i] = o
	}
	k, err := b.kernel(shaders.SGD, ewWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	push := sgdPush{LR: p.LR, Momentum: p.Momentum, WD: p.WeightDecay}
	if p.Nesterov {
		push.Nesterov = 1
	}
	// Unguarded, the loss and flag bindings repeat the gradient's first element, never read.
	la, _ := b.bind(os[1].buf, os[1].off, os[1].off+1, false)
	ha := la
	if loss != nil {
		lo, err := b.dense(loss)
		if err != nil {
			return fmt.Errorf("%s: loss: %w", what, err)
		}
		ho, err := b.dense(halt)
		if err != nil {
			return fmt.Errorf("%s: halt flag: %w", what, err)
		}
		var s int64
		la, s = b.bind(lo.buf, lo.off, lo.off+1, false)
		push.LOff = uint32(lo.off - s)
		ha, s = b.bind(ho.buf, ho.off, ho.off+1, true)
		push.HOff = uint32(ho.off - s)
		push.Guard = 1
	}
	ra := la // without a learning-rate tensor the binding repeats the gradient's, never read
	if p.LRFrom != nil {
		ro, err := b.dense(p.LRFrom)
		if err != nil {
			return fmt.Errorf("%s: learning rate: %w", what, err)
		}
		var s int64
		ra, s = b.bind(ro.buf, ro.off, ro.off+1, false)
		push.LROff, push.LRDev = uint32(ro.off-s), 1
	}
	sa := la // unscaled, the binding repeats the loss's, never read
	if p.ScaleFrom != nil {
		so, err := b.dense(p.ScaleFrom)
		if err != nil {
			return fmt.Errorf("%s: loss-scale state: %w", what, err)
		}
		var s int64
		sa, s = b.bind(so.buf, so.off, so.off+ops.LossScaleStateLen, false)
		push.SOff, push.Scaled = uint32(so.off-s), 1
	}
	for _, pc := range b.elemPieces(int64(param.Numel()), os...) {
		binds := make([]vkrt.Access, 7)
		var offs [3]uint32
		for i, o := range os {
			acc, s := b.bind(o.buf, o.at(pc[0]), o.at(pc[1]-1)+1, i != 1)
			binds[i], offs[i] = acc, uint32(o.off-s)
		}
		binds[3], binds[4], binds[5], binds[6] = la, ha, ra, sa
		push.Start, push.End, push.WOff, push.GOff, push.BOff = uint32(pc[0]), uint32(pc[1]), offs[0], offs[1], offs[2]
		if err := b.dev.Dispatch(k, binds, pushBytes(&push), [3]uint32{b.groups(pc[1]-pc[0], ewWorkGroup), 1, 1}, what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
