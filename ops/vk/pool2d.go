package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// poolPush mirrors pool2d.glsl's push block.
type poolPush struct {
	XOff, XStride, YOff, YStride, FOff, FStride uint32
	C, H, W, OH, OW                             uint32
	K, S, Pad                                   int32
	IncludePad, N0, Count                       uint32
}

const perElementWorkGroup = 128

// grid covers count invocations of workgroups of wg, folding into y beyond 65535 groups.
func grid(count, wg int64) [3]uint32 {
	g := max((count+wg-1)/wg, 1)
	gx := min(g, 65535)
	return [3]uint32{uint32(gx), uint32((g + gx - 1) / gx), 1}
}

// pool records a pooling kernel: one invocation per element of the operand `per` (the output
// for the forward passes, the input gradient for the backward ones), over item pieces.
func (b *Backend) pool(name, what string, in, out *tensor.Tensor, fwdIn *tensor.Tensor, perIn bool, p ops.PoolParams) error {
	if in.Rank() != 4 || out.Rank() != 4 || in.Dim(0) != out.Dim(0) || in.Dim(1) != out.Dim(1) {
		return fmt.Errorf("%s: shapes %v and %v do not match", what, in.Shape(), out.Shape())
	}
	ts := []*tensor.Tensor{in, out}
	if fwdIn != nil {
		ts = append(ts, fwdIn)
	}
	os, err := b.operands(ts...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	k, err := b.kernel(name, perElementWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, c, h, w := in.Shape().NCHW()
	push := poolPush{C: uint32(c), H: uint32(h), W: uint32(w), OH: uint32(out.Dim(2)), OW: uint32(out.Dim(3)),
		K: int32(p.Kernel), S: int32(p.Stride), Pad: int32(p.Pad)}
	if p.CountIncludePad {
		push.IncludePad = 1
	}
	chunks, err := b.itemChunks(what, int64(n), os...)
	if err != nil {
		return err
	}
	per := os[1].inner
	if perIn {
		per = os[0].inner
	}
	for _, ch := range chunks {
		i0, i1 := ch[0], ch[1]
		// Binding order: the written operand first.
		xa, xoff := b.bindItems(os[0], i0, i1, perIn)
		ya, yoff := b.bindItems(os[1], i0, i1, !perIn)
		push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(os[0].stride), yoff, uint32(os[1].stride)
		binds := []vkrt.Access{ya, xa}
		if perIn {
			binds = []vkrt.Access{xa, ya}
		}
		if fwdIn != nil {
			fa, foff := b.bindItems(os[2], i0, i1, false)
			push.FOff, push.FStride = foff, uint32(os[2].stride)
			binds = append(binds, fa)
		}
		push.N0, push.Count = uint32(i0), uint32((i1-i0)*per)
		if err := b.dev.Dispatch(k, binds, pushBytes(&push), grid((i1-i0)*per, perElementWorkGroup), what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// MaxPool2D implements ops.Backend.
func (b *Backend) MaxPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	return b.pool(shaders.MaxPool2D, "max_pool2d", x, dst, nil, false, p)
}

// MaxPool2DGrad implements ops.Backend.
func (b *Backend) MaxPool2DGrad(gx, gy, x *tensor.Tensor, p ops.PoolParams) error {
	if !x.Shape().Equal(gx.Shape()) {
		return fmt.Errorf("max_pool2d grad: input %v and its gradient %v differ", x.Shape(), gx.Shape())
	}
	return b.pool(shaders.MaxPool2DGrad, "max_pool2d grad", gx, gy, x, true, p)
}

// AvgPool2D implements ops.Backend.
func (b *Backend) AvgPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	return b.pool(shaders.AvgPool2D, "avg_pool2d", x, dst, nil, false, p)
}

// AvgPool2DGrad implements ops.Backend.
func (b *Backend) AvgPool2DGrad(gx, gy *tensor.Tensor, p ops.PoolParams) error {
	return b.pool(shaders.AvgPool2DGrad, "avg_pool2d grad", gx, gy, nil, true, p)
}
