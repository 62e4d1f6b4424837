package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Push blocks of structure_loss.comp.
type slBoxPush struct {
	OOff, MOff, MStride, ROff uint32
	H, W, N0, Count           uint32
}

type slTermsPush struct {
	XOff, XStride, MOff, MStride uint32
	WOff, HW, Chunk, NChunks     uint32
	N0, POff                     uint32
}

type slFinalPush struct {
	N, NChunks, Weighted, LossOff uint32
	TOff, POff                    uint32
	Numel                         float32
}

type slGradPush struct {
	GXOff, GXStride, XOff, XStride uint32
	MOff, MStride, WOff, TOff      uint32
	GLOff, HW, N0, Count           uint32
	Weighted, N                    uint32
	Numel                          float32
}

// structure holds the scratch of one structure-loss evaluation: the weight map and the
// per-image sums (bce, w·bce, w, I, U), in that order.
type structure struct {
	wt, terms *vkrt.Buffer
	n, hw     int64
}

func (s structure) free() {
	s.wt.Free()
	s.terms.Free()
}

// structureTerms records the weight map, the per-image sums and the batch loss into loss
// (which may be a scratch range when only the gradient is wanted).
func (b *Backend) structureTerms(what string, x, mask operand, n, h, w int64, loss vkrt.Access, lossOff uint32, form ops.StructureLossForm) (structure, error) {
	hw := h * w
	s := structure{n: n, hw: hw}
	rows, err := b.scratch(n * hw)
	if err != nil {
		return s, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Free()
	if s.wt, err = b.scratch(n * hw); err != nil {
		return s, fmt.Errorf("%s: %w", what, err)
	}
	if s.terms, err = b.scratch(5 * n); err != nil {
		s.wt.Free()
		return s, fmt.Errorf("%s: %w", what, err)
	}
	fail := func(err error) (structure, error) {
		s.free()
		return s, err
	}
	// The scratch maps are dense [N H W]; as operands they slice like the inputs.
	ro := operand{buf: rows, stride: hw, n: n, inner: hw}
	wo := operand{buf: s.wt, stride: hw, n: n, inner: hw}
	chunks, err := b.itemChunks(what, n, x, mask, ro, wo)
	if err != nil {
		return fail(err)
	}
	rk, err := b.kernel(shaders.StructureLossBoxRows, perElementWorkGroup)
	if err != nil {
		return fail(err)
	}
	wk, err := b.kernel(shaders.StructureLossWeight, perElementWorkGroup)
	if err != nil {
		return fail(err)
	}
	for _, ch := range chunks {
		ma, moff := b.bindItems(mask, ch[0], ch[1], false)
		ra, roff := b.bindItems(ro, ch[0], ch[1], true)
		count := (ch[1] - ch[0]) * hw
		p := slBoxPush{OOff: roff, MOff: moff, MStride: uint32(mask.stride), H: uint32(h), W: uint32(w), N0: uint32(ch[0]), Count: uint32(count)}
		if err := b.dev.Dispatch(rk, []vkrt.Access{ra, ma}, pushBytes(&p), grid(count, perElementWorkGroup), what); err != nil {
			return fail(err)
		}
		wa, woff := b.bindItems(wo, ch[0], ch[1], true)
		ra.Write = false
		p.OOff, p.ROff = woff, roff
		if err := b.dev.Dispatch(wk, []vkrt.Access{wa, ma, ra}, pushBytes(&p), grid(count, perElementWorkGroup), what); err != nil {
			return fail(err)
		}
	}

	chunk := int64(chunkElems)
	nchunks := (hw + chunk - 1) / chunk
	part, err := b.scratch(5 * n * nchunks)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", what, err))
	}
	defer part.Free()
	pa := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	tk, err := b.kernel(shaders.StructureLossTerms, reduceWorkGroup)
	if err != nil {
		return fail(err)
	}
	for _, ch := range chunks {
		xa, xoff := b.bindItems(x, ch[0], ch[1], false)
		ma, moff := b.bindItems(mask, ch[0], ch[1], false)
		wa, woff := b.bindItems(wo, ch[0], ch[1], false)
		p := slTermsPush{XOff: xoff, XStride: uint32(x.stride), MOff: moff, MStride: uint32(mask.stride), WOff: woff,
			HW: uint32(hw), Chunk: uint32(chunk), NChunks: uint32(nchunks), N0: uint32(ch[0])}
		if err := b.dev.Dispatch(tk, []vkrt.Access{pa, xa, ma, wa}, pushBytes(&p), [3]uint32{uint32(nchunks), uint32(ch[1] - ch[0]), 1}, what); err != nil {
			return fail(err)
		}
	}
	fk, err := b.kernel(shaders.StructureLossFinal, 64)
	if err != nil {
		return fail(err)
	}
	pa.Write = false
	ta := vkrt.Access{Buf: s.terms, Size: s.terms.Size(), Write: true}
	fp := slFinalPush{N: uint32(n), NChunks: uint32(nchunks), LossOff: lossOff, Numel: float32(n * hw)}
	if form == ops.StructureLossWeighted {
		fp.Weighted = 1
	}
	if err := b.dev.Dispatch(fk, []vkrt.Access{loss, ta, pa}, pushBytes(&fp), [3]uint32{1, 1, 1}, what); err != nil {
		return fail(err)
	}
	return s, nil
}

func (b *Backend) lossOperands(what string, x, mask *tensor.Tensor) (xo, mo operand, n, h, w int64, err error) {
	if x.Rank() != 4 || x.Dim(1) != 1 || !x.Shape().Equal(mask.Shape()) {
		return xo, mo, 0, 0, 0, fmt.Errorf("%s: logits %v and mask %v must both be [N 1 H W]", what, x.Shape(), mask.Shape())
	}
	os, err := b.operands(x, mask)
	if err != nil {
		return xo, mo, 0, 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	return os[0], os[1], int64(x.Dim(0)), int64(x.Dim(2)), int64(x.Dim(3)), nil
}

// StructureLoss implements ops.Backend.
func (b *Backend) StructureLoss(dst, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	const what = "structure_loss"
	d, err := b.dense(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.n*d.inner != 1 {
		return fmt.Errorf("%s: destination %v must have one element", what, dst.Shape())
	}
	xo, mo, n, h, w, err := b.lossOperands(what, x, mask)
	if err != nil {
		return err
	}
	la, loff := b.bindAll(d, true)
	s, err := b.structureTerms(what, xo, mo, n, h, w, la, loff, form)
	if err != nil {
		return err
	}
	s.free()
	return nil
}

// StructureLossGrad implements ops.Backend.
func (b *Backend) StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	const what = "structure_loss grad"
	gl, err := b.dense(gLoss)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !gx.Shape().Equal(x.Shape()) {
		return fmt.Errorf("%s: gradient %v for logits %v", what, gx.Shape(), x.Shape())
	}
	xo, mo, n, h, w, err := b.lossOperands(what, x, mask)
	if err != nil {
		return err
	}
	gxo, err := b.operand(gx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	lossScratch, err := b.scratch(1)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer lossScratch.Free()
	s, err := b.structureTerms(what, xo, mo, n, h, w, vkrt.Access{Buf: lossScratch, Size: lossScratch.Size(), Write: true}, 0, form)
	if err != nil {
		return err
	}
	defer s.free()
	k, err := b.kernel(shaders.StructureLossGrad, perElementWorkGroup)
	if err != nil {
		return err
	}
	hw := h * w
	wo := operand{buf: s.wt, stride: hw, n: n, inner: hw}
	chunks, err := b.itemChunks(what, n, xo, mo, gxo, wo)
	if err != nil {
		return err
	}
	ta := vkrt.Access{Buf: s.terms, Size: s.terms.Size()}
	ga, gloff := b.bindAll(gl, false)
	p := slGradPush{HW: uint32(hw), N: uint32(n), Numel: float32(n * hw), GLOff: gloff}
	if form == ops.StructureLossWeighted {
		p.Weighted = 1
	}
	for _, ch := range chunks {
		oa, ooff := b.bindItems(gxo, ch[0], ch[1], true)
		xa, xoff := b.bindItems(xo, ch[0], ch[1], false)
		ma, moff := b.bindItems(mo, ch[0], ch[1], false)
		wa, woff := b.bindItems(wo, ch[0], ch[1], false)
		count := (ch[1] - ch[0]) * hw
		p.GXOff, p.GXStride, p.XOff, p.XStride, p.MOff, p.MStride, p.WOff = ooff, uint32(gxo.stride), xoff, uint32(xo.stride), moff, uint32(mo.stride), woff
		p.N0, p.Count = uint32(ch[0]), uint32(count)
		if err := b.dev.Dispatch(k, []vkrt.Access{oa, xa, ma, wa, ta, ga}, pushBytes(&p), grid(count, perElementWorkGroup), what); err != nil {
			return err
		}
	}
	return nil
}
