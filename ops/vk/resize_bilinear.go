package vk

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// resizePush mirrors resize_bilinear*.comp's push blocks (same layout, roles swapped in the
// gradient: x is gx and y is gy).
type resizePush struct {
	YOff, YStride, XOff, XStride uint32
	C, H, W, OH, OW              uint32
	TYOff, TXOff                 uint32
	N0, Count                    uint32
	Accum, ReLU                  uint32 // resize_bilinear.comp only
}

type tableKey struct {
	h, w, oh, ow int
	alignCorners bool
	grad         bool
}

func bits(i int) float32 { return math.Float32frombits(uint32(i)) }

// forwardTable lists, per output index, i0, i1, w0, w1.
func forwardTable(in, out int, ac bool) []float32 {
	tp := ops.BilinearTaps(in, out, ac)
	i0, i1, w0, w1 := tp.I0, tp.I1, tp.W0, tp.W1
	t := make([]float32, 0, 4*out)
	for d := range i0 {
		t = append(t, bits(i0[d]), bits(i1[d]), w0[d], w1[d])
	}
	return t
}

// gradTable lists, per input index, the (output index, weight) pairs that read it, in the
// order the CPU's scatter adds them: by output index, tap 0 before tap 1.
func gradTable(in, out int, ac bool) []float32 {
	tp := ops.BilinearTaps(in, out, ac)
	i0, i1, w0, w1 := tp.I0, tp.I1, tp.W0, tp.W1
	lists := make([][]float32, in)
	for d := range i0 {
		lists[i0[d]] = append(lists[i0[d]], bits(d), w0[d])
		lists[i1[d]] = append(lists[i1[d]], bits(d), w1[d])
	}
	t := make([]float32, 0, in+1+4*out)
	n := 0
	for i := 0; i < in; i++ {
		t = append(t, bits(n))
		n += len(lists[i]) / 2
	}
	t = append(t, bits(n))
	for _, l := range lists {
		t = append(t, l...)
	}
	return t
}

// tapTable is a resize's tables on the device: the Y axis's, then the X axis's at txoff.
type tapTable struct {
	t     *tensor.Tensor
	txoff uint32
}

// table returns the device copy of the tap tables for a resize (kept for the backend's life:
// training uses a handful of sizes).
func (b *Backend) table(k tableKey) (tapTable, error) {
	b.mu.Lock()
	t, ok := b.tables[k]
	b.mu.Unlock()
	if ok {
		return t, nil
	}
	build := forwardTable
	if k.grad {
		build = gradTable
	}
	ty, tx := build(k.h, k.oh, k.alignCorners), build(k.w, k.ow, k.alignCorners)
	v := append(ty, tx...)
	x, err := b.Alloc(tensor.Shape{len(v)})
	if err != nil {
		return t, err
	}
	if err := b.Upload(x, v); err != nil {
		return t, err
	}
	t = tapTable{t: x, txoff: uint32(len(ty))}
	b.mu.Lock()
	b.tables[k] = t
	b.mu.Unlock()
	return t, nil
}

func (b *Backend) resize(name, what string, src, dst *tensor.Tensor, alignCorners, grad bool, extra ...uint32) error {
	// in is the input-sized side (x, or gx), out the output-sized side (y, or gy).
	in, out := src, dst
	if grad {
		in, out = dst, src
	}
	if in.Rank() != 4 || out.Rank() != 4 || in.Dim(0) != out.Dim(0) || in.Dim(1) != out.Dim(1) {
		return fmt.Errorf("%s: shapes %v and %v do not match", what, in.Shape(), out.Shape())
	}
	os, err := b.operands(in, out)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, c, h, w := in.Shape().NCHW()
	key := tableKey{h: h, w: w, oh: out.Dim(2), ow: out.Dim(3), alignCorners: alignCorners, grad: grad}
	tab, err := b.table(key)
	if err != nil {
		return fmt.Errorf("%s: tap table: %w", what, err)
	}
	txoff := tab.txoff
	to, err := b.dense(tab.t)
	if err != nil {
		return err
	}
	k, err := b.kernel(name, perElementWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	chunks, err := b.itemChunks(what, int64(n), os...)
	if err != nil {
		return err
	}
	push := resizePush{C: uint32(c), H: uint32(h), W: uint32(w), OH: uint32(key.oh), OW: uint32(key.ow)}
	if len(extra) == 2 {
		push.Accum, push.ReLU = extra[0], extra[1]
	}
	ta, toff := b.bindAll(to, false)
	push.TYOff, push.TXOff = toff, toff+txoff
	written := 1
	if grad {
		written = 0
	}
	for _, ch := range chunks {
		i0, i1 := ch[0], ch[1]
		xa, xoff := b.bindItems(os[0], i0, i1, written == 0)
		ya, yoff := b.bindItems(os[1], i0, i1, written == 1)
		binds := []vkrt.Access{ya, xa, ta}
		if grad {
			// resize_bilinear_grad.comp: binding 0 gx (input-sized), push x fields first.
			binds = []vkrt.Access{xa, ya, ta}
			push.YOff, push.YStride, push.XOff, push.XStride = xoff, uint32(os[0].stride), yoff, uint32(os[1].stride)
		} else {
			push.YOff, push.YStride, push.XOff, push.XStride = yoff, uint32(os[1].stride), xoff, uint32(os[0].stride)
		}
		count := (i1 - i0) * os[written].inner
		push.N0, push.Count = uint32(i0), uint32(count)
		if err := b.dev.Dispatch(k, binds, pushBytes(&push), grid(count, perElementWorkGroup), what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// ResizeBilinear implements ops.Backend.
func (b *Backend) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error {
	return b.resize(shaders.ResizeBilinear, "resize_bilinear", x, dst, alignCorners, false)
}

// ResizeBilinearAdd implements ops.Backend: the resize kernel adds to dst's values.
func (b *Backend) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	r := uint32(0)
	if relu {
		r = 1
	}
	return b.resize(shaders.ResizeBilinear, "resize_bilinear add", x, dst, alignCorners, false, 1, r)
}

// ResizeBilinearGrad implements ops.Backend.
func (b *Backend) ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error {
	return b.resize(shaders.ResizeBilinearGrad, "resize_bilinear grad", gy, gx, alignCorners, true)
}
