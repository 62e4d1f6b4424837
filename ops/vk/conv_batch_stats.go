package vk

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Conv2DBatchStats implements ops.Backend: one dispatch of the convolution whose epilogue
// gathers the batch-norm statistics of its output (conv2d.comp BN_STATS), where the whole
// output fits one dispatch; otherwise the convolution and then batch norm's statistics kernel.
func (b *Backend) Conv2DBatchStats(dst, mean, invStd, x, w, runMean, runVar *tensor.Tensor, p ops.Conv2DParams, bp ops.BatchNormParams) error {
	const what = "conv2d batch stats"
	g, xo, wo, yo, err := b.convOperands(what, x, w, dst, p)
	if err != nil {
		return err
	}
	vs, err := b.vectors(what, int(g.o), mean, invStd, runMean, runVar)
	if err != nil {
		return err
	}
	t := b.tiles.pick(g.og, g.n*g.oh*g.ow, g.g)
	cols := g.n * g.oh * g.ow
	tiles := ceilDiv(cols, t.bn)
	chunks, err := b.itemChunks(what, g.n, xo, yo)
	if err != nil {
		return err
	}
	// The epilogue needs every column tile in one dispatch (its counters count them), and the
	// last tile's merge loop, after the GEMM's, within lavapipe's loop budget.
	fused := g.g == 1 && len(chunks) == 1 && tiles <= 65535 && tiles+ceilDiv(g.cg*g.kh*g.kw, t.bk) <= maxLoopTrips
	if !fused {
		if err := b.Conv2D(dst, x, w, nil, p); err != nil {
			return err
		}
		return b.batchStats(what, yo, g.n, g.o, g.oh*g.ow, vs[0], vs[1], vs[2], vs[3], bp)
	}
	k, err := b.convKernel(shaders.Conv2DBnStats, shaders.Conv2D1x1BnStats, g, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	part, err := b.scratch(3 * g.o * tiles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	rowBlocks := ceilDiv(g.og, t.bm)
	ca, coff, err := b.counterSlots(what, rowBlocks)
	if err != nil {
		return err
	}
	push := g.push()
	push.WRow = uint32(wo.stride)
	wa, woff := b.bindAll(wo, false)
	push.WOff = woff
	binds := []vkrt.Access{{}, {}, wa, wa, {Buf: part, Size: part.Size(), Write: true}, ca}
	var offs [4]uint32
	for i, v := range vs {
		var a vkrt.Access
		a, offs[i] = b.bindAll(v, true)
		binds = append(binds, a)
	}
	// The push fields the forward convolution leaves unused carry the epilogue's (conv2d.comp).
	push.KPer, push.Splits, push.SOff, push.STotal, push.Accum = coff, offs[0], offs[1], offs[2], offs[3]
	push.Fixup, push.CntOff = math.Float32bits(bp.Eps), math.Float32bits(bp.Momentum)
	xa, xoff := b.bindItems(xo, 0, g.n, false)
	ya, yoff := b.bindItems(yo, 0, g.n, true)
	binds[0], binds[1] = ya, xa
	push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(xo.stride), yoff, uint32(yo.stride)
	push.N0, push.NImg, push.ColOff = 0, uint32(g.n), 0
	groups := [3]uint32{uint32(tiles), uint32(rowBlocks), 1}
	macs := g.n * g.oh * g.ow * g.o * g.cg * g.kh * g.kw
	if err := b.dev.DispatchMACs(k, binds, pushBytes(&push), groups, what, macs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
