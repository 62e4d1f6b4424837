package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// lossScalePush mirrors loss_scale.comp's push block.
type lossScalePush struct {
	Start, End, XOff, SOff uint32
	Growth, Backoff        float32
	Interval               uint32
}

// stateBinding binds the loss-scale state (written).
func (b *Backend) stateBinding(state *tensor.Tensor) (vkrt.Access, uint32, error) {
	o, err := b.dense(state)
	if err != nil {
		return vkrt.Access{}, 0, fmt.Errorf("loss-scale state: %w", err)
	}
	acc, s := b.bind(o.buf, o.off, o.off+ops.LossScaleStateLen, true)
	return acc, uint32(o.off - s), nil
}

// CheckFinite implements ops.Backend: one dispatch per binding-sized piece of x.
func (b *Backend) CheckFinite(state, x *tensor.Tensor) error {
	const what = "check_finite"
	sa, soff, err := b.stateBinding(state)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	xo, err := b.dense(x)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	k, err := b.kernel(shaders.LossScaleCheck, ewWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, pc := range b.elemPieces(int64(x.Numel()), xo) {
		xa, s := b.bind(xo.buf, xo.at(pc[0]), xo.at(pc[1]-1)+1, false)
		push := lossScalePush{Start: uint32(pc[0]), End: uint32(pc[1]), XOff: uint32(xo.off - s), SOff: soff}
		if err := b.dev.Dispatch(k, []vkrt.Access{sa, xa}, pushBytes(&push), [3]uint32{b.groups(pc[1]-pc[0], ewWorkGroup), 1, 1}, what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// UpdateLossScale implements ops.Backend: one invocation.
func (b *Backend) UpdateLossScale(state *tensor.Tensor, p ops.LossScaleParams) error {
	const what = "loss_scale_update"
	sa, soff, err := b.stateBinding(state)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	k, err := b.kernel(shaders.LossScaleUpdate, 1)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	push := lossScalePush{SOff: soff, Growth: p.Growth, Backoff: p.Backoff, Interval: uint32(p.Interval)}
	if err := b.dev.Dispatch(k, []vkrt.Access{sa}, pushBytes(&push), [3]uint32{1, 1, 1}, what); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
