package vk

import (
	"errors"
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
// A second input is added as the kernel loads the first (conv2d.comp SUM_INPUT) where both have
// one layout and the convolution is not a plain GEMM; otherwise by an add first.
func (b *Backend) Conv2DBatchStats(dst, mean, invStd, x, x2, w, runMean, runVar *tensor.Tensor, p ops.Conv2DParams, bp ops.BatchNormParams) error {
	const what = "conv2d batch stats"
	g, xo, wo, yo, err := b.convOperands(what, x, w, dst, p)
	if err != nil {
		return err
	}
	var x2o operand
	if x2 != nil {
		if x2o, err = b.sumOperand(what, x, x2, xo, g); err != nil {
			if err != errSumApart {
				return err
			}
			return b.withSum(what, x, x2, func(sum *tensor.Tensor) error {
				return b.Conv2DBatchStats(dst, mean, invStd, sum, nil, w, runMean, runVar, p, bp)
			})
		}
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
	if !fused && x2 != nil {
		return b.withSum(what, x, x2, func(sum *tensor.Tensor) error {
			return b.Conv2DBatchStats(dst, mean, invStd, sum, nil, w, runMean, runVar, p, bp)
		})
	}
	if !fused {
		if err := b.Conv2D(dst, x, w, nil, p); err != nil {
			return err
		}
		return b.batchStats(what, yo, g.n, g.o, g.oh*g.ow, vs[0], vs[1], vs[2], vs[3], bp)
	}
	name := shaders.Conv2DBnStats
	if x2 != nil {
		name = shaders.Conv2DSumBnStats // never direct: sumOperand checked
	}
	k, err := b.convKernel(name, shaders.Conv2D1x1BnStats, g, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pa, release, err := b.statsPartials(3 * g.o * tiles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer release()
	rowBlocks := ceilDiv(g.og, t.bm)
	ca, coff, err := b.counterSlots(what, rowBlocks)
	if err != nil {
		return err
	}
	push := g.push()
	push.WRow = uint32(wo.stride)
	wa, woff := b.bindAll(wo, false)
	push.WOff = woff
	binds := []vkrt.Access{{}, {}, wa, wa, pa, ca}
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
	if x2 != nil {
		// The second input takes the bias's binding and offset (conv2d.comp SUM_INPUT).
		binds[3], push.BOff = b.bindItems(x2o, 0, g.n, false)
	}
	push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(xo.stride), yoff, uint32(yo.stride)
	push.N0, push.NImg, push.ColOff = 0, uint32(g.n), 0
	groups := [3]uint32{uint32(tiles), uint32(rowBlocks), 1}
	macs := g.n * g.oh * g.ow * g.o * g.cg * g.kh * g.kw
	if err := b.dev.DispatchMACs(k, binds, pushBytes(&push), groups, what, macs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// errSumApart reports a second input that the SUM_INPUT kernels cannot read beside the first.
var errSumApart = errors.New("second input not in the first's layout")

// sumOperand resolves the second input of a convolution of x + x2: an operand with x's item
// stride, for a convolution that is not a plain GEMM (whose kernels have no SUM_INPUT variant);
// errSumApart otherwise.
func (b *Backend) sumOperand(what string, x, x2 *tensor.Tensor, xo operand, g convGeom) (operand, error) {
	if !x2.Shape().Equal(x.Shape()) {
		return operand{}, fmt.Errorf("%s: inputs %v and %v differ", what, x.Shape(), x2.Shape())
	}
	o, err := b.operand(x2)
	if err != nil {
		return operand{}, fmt.Errorf("%s: %w", what, err)
	}
	if g.direct || o.stride != xo.stride || o.inner != xo.inner {
		return operand{}, errSumApart
	}
	return o, nil
}

// withSum runs f on x + x2, added into a temporary tensor.
func (b *Backend) withSum(what string, x, x2 *tensor.Tensor, f func(sum *tensor.Tensor) error) error {
	sum, err := b.Alloc(x.Shape())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer b.Release(sum.Storage())
	if err := b.Binary(ops.Add, sum, x, x2); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return f(sum)
}

// statsRingLen is the length of the ring of partial statistics, in floats (16 MiB): a
// convolution with more partials (more than a 352² batch of 16 has) takes a scratch buffer.
const statsRingLen = 1 << 22

// statsPartials returns n floats for one dispatch's partial statistics: the next range of the
// ring, starting at a binding boundary, so that consecutive dispatches do not look dependent
// to the recorder (reuse after the ring wraps is ordered by its hazard tracking), or, for more
// than half the ring, a scratch buffer, which release frees once the dispatch is recorded.
func (b *Backend) statsPartials(n int64) (acc vkrt.Access, release func(), err error) {
	if n > statsRingLen/2 {
		part, err := b.scratch(n)
		if err != nil {
			return vkrt.Access{}, nil, err
		}
		return vkrt.Access{Buf: part, Size: part.Size(), Write: true}, func() { part.Free() }, nil
	}
	b.statsRingMu.Lock()
	defer b.statsRingMu.Unlock()
	if b.statsRing == nil {
		r, err := b.Alloc(tensor.Shape{statsRingLen})
		if err != nil {
			return vkrt.Access{}, nil, err
		}
		b.statsRing = r
	}
	align := max(1, b.dev.BindAlign()/4)
	start := ceilDiv(b.statsRingNext, align) * align
	if start+n > statsRingLen {
		start = 0
	}
	b.statsRingNext = start + n
	st := b.statsRing.Storage().(*storage)
	acc, s := b.bind(st.buf, start, start+n, true)
	if s != start {
		return vkrt.Access{}, nil, fmt.Errorf("partial statistics: ring range at %d bound from %d", start, s)
	}
	return acc, func() {}, nil
}
