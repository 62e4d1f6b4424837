package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Push blocks of batch_norm2d.comp and batch_norm2d_grad.comp.
type bnStatsPush struct {
	Off, Stride, L, C             uint32
	APer, JChunks, Chunk, NChunks uint32
	A0, A1, POff, COff            uint32
	MOff, IOff, RMOff, RVOff      uint32
	Count, Eps, Momentum          float32
}

type bnApplyPush struct {
	YOff, YStride, XOff, XStride uint32
	C, HW, N0, Count             uint32
	MOff, SOff, GOff, BOff       uint32
	ROff, RStride, Flags         uint32
	Eps                          float32
}

// Flags of bnApplyPush (batch_norm2d.comp BN_APPLY).
const (
	bnEval     = 1
	bnResidual = 2
	bnReLU     = 4
)

type bngSumsPush struct {
	GYOff, GYStride, XOff, XStride uint32
	L, C, APer, JChunks            uint32
	Chunk, NChunks, A0, A1         uint32
	MOff, POff, YOff, YStride      uint32
	GROff, GRStride, Flags, COff   uint32
	GGOff, GBOff, IOff             uint32
}

type bngApplyPush struct {
	GXOff, GXStride, GYOff, GYStride uint32
	XOff, XStride, C, HW             uint32
	N0, Count, GOff, MOff            uint32
	IOff, GGOff, GBOff, Train        uint32
	M                                float32
	YOff, YStride, Flags             uint32
	GY2Off, GY2Stride                uint32
}

// Flags of the gradient kernels (batch_norm2d_grad.comp).
const (
	bngMask     = 1
	bngResidual = 2
	bngSecond   = 4 // a second incoming gradient, added to the first
)

// bnCounterSlots is the size of the ring of per-channel counters by which the last workgroup of
// a batch-norm reduction finds itself (batch_norm2d.comp): zeroed once when the backend opens
// and left zero by every reduction, so a call needs no clearing pass.
const bnCounterSlots = 1 << 14

// initCounters allocates and zeroes the counter ring.
func (b *Backend) initCounters() error {
	buf, err := b.dev.Alloc(4 * bnCounterSlots)
	if err != nil {
		return fmt.Errorf("batch-norm counters: %w", err)
	}
	if err := b.dev.Upload(buf, []vkrt.Region{{Off: 0, Size: 4 * bnCounterSlots}}, make([]byte, 4*bnCounterSlots)); err != nil {
		buf.Free()
		return fmt.Errorf("batch-norm counters: %w", err)
	}
	b.counters = buf
	return nil
}

// counterSlots takes c counters from the ring, aligned for binding. Reuse of a range is ordered
// after its earlier use by the recorder's hazard tracking, like any buffer's.
func (b *Backend) counterSlots(what string, c int64) (vkrt.Access, uint32, error) {
	align := max(b.dev.BindAlign()/4, 1)
	n := (c + align - 1) / align * align
	if n > bnCounterSlots {
		return vkrt.Access{}, 0, fmt.Errorf("%s: %d channels, more than the %d counters of a reduction", what, c, bnCounterSlots)
	}
	b.mu.Lock()
	if b.counterNext+n > bnCounterSlots {
		b.counterNext = 0
	}
	off := b.counterNext
	b.counterNext += n
	b.mu.Unlock()
	acc, start := b.bind(b.counters, off, off+c, true)
	return acc, uint32(off - start), nil
}

// vectors resolves per-channel operands, each a dense [C] tensor.
func (b *Backend) vectors(what string, c int, ts ...*tensor.Tensor) ([]operand, error) {
	out := make([]operand, len(ts))
	for i, t := range ts {
		o, err := b.dense(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if o.n*o.inner != int64(c) {
			return nil, fmt.Errorf("%s: per-channel tensor %v for %d channels", what, t.Shape(), c)
		}
		out[i] = o
	}
	return out, nil
}

// bnOperands checks x (NCHW) and the same-shaped others.
func (b *Backend) bnOperands(what string, x *tensor.Tensor, others ...*tensor.Tensor) ([]operand, error) {
	if x.Rank() != 4 {
		return nil, fmt.Errorf("%s: input %v is not NCHW", what, x.Shape())
	}
	for _, t := range others {
		if !t.Shape().Equal(x.Shape()) {
			return nil, fmt.Errorf("%s: shapes differ: %v and %v", what, x.Shape(), t.Shape())
		}
	}
	os, err := b.operands(append([]*tensor.Tensor{x}, others...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return os, nil
}

// bnApply records y = act(x·scale + shift + residual) (batch statistics, or running ones when
// eval); res is nil for no residual.
func (b *Backend) bnApply(what string, y, x operand, res *operand, relu bool, c, hw int64, m, s, g, be operand, eval bool, eps float32) error {
	k, err := b.kernel(shaders.BatchNorm2DApply, perElementWorkGroup)
	if err != nil {
		return err
	}
	bound := []operand{x, y}
	if res != nil {
		bound = append(bound, *res)
	}
	chunks, err := b.itemChunks(what, x.n, bound...)
	if err != nil {
		return err
	}
	push := bnApplyPush{C: uint32(c), HW: uint32(hw), Eps: eps}
	if eval {
		push.Flags |= bnEval
	}
	if res != nil {
		push.Flags |= bnResidual
	}
	if relu {
		push.Flags |= bnReLU
	}
	ma, moff := b.bindAll(m, false)
	sa, soff := b.bindAll(s, false)
	ga, goff := b.bindAll(g, false)
	ba, boff := b.bindAll(be, false)
	push.MOff, push.SOff, push.GOff, push.BOff = moff, soff, goff, boff
	for _, ch := range chunks {
		ya, yoff := b.bindItems(y, ch[0], ch[1], true)
		xa, xoff := b.bindItems(x, ch[0], ch[1], false)
		ra, roff := b.standIn(x)
		rstride := uint32(0)
		if res != nil {
			ra, roff = b.bindItems(*res, ch[0], ch[1], false)
			rstride = uint32(res.stride)
		}
		push.YOff, push.YStride, push.XOff, push.XStride = yoff, uint32(y.stride), xoff, uint32(x.stride)
		push.ROff, push.RStride = roff, rstride
		count := (ch[1] - ch[0]) * x.inner
		push.N0, push.Count = uint32(ch[0]), uint32(count)
		if err := b.dev.Dispatch(k, []vkrt.Access{ya, xa, ma, sa, ga, ba, ra}, pushBytes(&push), grid(count, perElementWorkGroup), what); err != nil {
			return err
		}
	}
	return nil
}

// standIn binds the first element of o, read-only: the binding of an operand a kernel was told
// (by a flag) not to touch, kept to one element so that it adds no traffic and no hazard.
func (b *Backend) standIn(o operand) (vkrt.Access, uint32) {
	acc, s := b.bind(o.buf, o.off, o.off+1, false)
	return acc, uint32(o.off - s)
}

// residualOperand resolves an optional residual of x's shape.
func (b *Backend) residualOperand(what string, x, residual *tensor.Tensor) (*operand, error) {
	if residual == nil {
		return nil, nil
	}
	os, err := b.bnOperands(what, x, residual)
	if err != nil {
		return nil, err
	}
	return &os[1], nil
}

// BatchNormTrain implements ops.Backend: two dispatches, the statistics (whose last workgroup
// per channel finishes them) and the normalisation with its tail.
func (b *Backend) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	const what = "batch_norm2d"
	os, err := b.bnOperands(what, x, dst)
	if err != nil {
		return err
	}
	res, err := b.residualOperand(what, x, residual)
	if err != nil {
		return err
	}
	n, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, mean, invStd, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	xo, hw := os[0], int64(h*w)
	if err := b.batchStats(what, xo, int64(n), int64(c), hw, vs[0], vs[1], vs[4], vs[5], p); err != nil {
		return err
	}
	return b.bnApply(what, os[1], xo, res, relu, int64(c), hw, vs[0], vs[1], vs[2], vs[3], false, p.Eps)
}

// batchStats records the statistics kernel over x [n c hw]: mean, invStd and the running
// statistics rm, rv.
func (b *Backend) batchStats(what string, xo operand, n, c, hw int64, mean, invStd, rm, rv operand, p ops.BatchNormParams) error {
	plan, err := b.planSegments(what, c, hw, c, false, xo)
	if err != nil {
		return err
	}
	part, err := b.scratch(3 * c * plan.nchunks)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	k, err := b.kernel(shaders.BatchNorm2DStats, reduceWorkGroup)
	if err != nil {
		return err
	}
	ca, coff, err := b.counterSlots(what, c)
	if err != nil {
		return err
	}
	binds := make([]vkrt.Access, 7)
	binds[0] = vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	binds[2] = ca
	var offs [4]uint32
	for i, v := range []operand{mean, invStd, rm, rv} {
		binds[3+i], offs[i] = b.bindAll(v, true)
	}
	push := bnStatsPush{L: uint32(hw), C: uint32(c), APer: uint32(plan.aPer), JChunks: uint32(plan.jchunks), Chunk: uint32(plan.chunk), NChunks: uint32(plan.nchunks),
		COff: coff, MOff: offs[0], IOff: offs[1], RMOff: offs[2], RVOff: offs[3], Count: float32(n * hw), Eps: p.Eps, Momentum: p.Momentum}
	for i0 := int64(0); i0 < xo.n; i0 += plan.per {
		i1 := min(i0+plan.per, xo.n)
		xa, xoff := b.bindItems(xo, i0, i1, false)
		binds[1] = xa
		push.Off, push.Stride, push.A0, push.A1 = xoff, uint32(xo.stride), uint32(i0), uint32(i1)
		groups := [3]uint32{uint32(plan.jchunks), uint32(c), uint32((i1 - i0 + plan.aPer - 1) / plan.aPer)}
		if err := b.dev.Dispatch(k, binds, pushBytes(&push), groups, what); err != nil {
			return err
		}
	}
	return nil
}

// BatchNormApply implements ops.Backend.
func (b *Backend) BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error {
	const what = "batch_norm2d apply"
	os, err := b.bnOperands(what, x, dst)
	if err != nil {
		return err
	}
	res, err := b.residualOperand(what, x, residual)
	if err != nil {
		return err
	}
	_, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, mean, invStd, gamma, beta)
	if err != nil {
		return err
	}
	return b.bnApply(what, os[1], os[0], res, relu, int64(c), int64(h*w), vs[0], vs[1], vs[2], vs[3], false, 0)
}

// BatchNormEval implements ops.Backend.
func (b *Backend) BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	const what = "batch_norm2d eval"
	os, err := b.bnOperands(what, x, dst)
	if err != nil {
		return err
	}
	res, err := b.residualOperand(what, x, residual)
	if err != nil {
		return err
	}
	_, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	return b.bnApply(what, os[1], os[0], res, relu, int64(c), int64(h*w), vs[2], vs[3], vs[0], vs[1], true, p.Eps)
}

// BatchNormGrad implements ops.Backend: two dispatches, the sums (whose last workgroup per
// channel finishes the scale and shift gradients; they also mask gy and write the residual's
// gradient) and the input gradient.
func (b *Backend) BatchNormGrad(gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	const what = "batch_norm2d grad"
	os, err := b.bnOperands(what, x, gx, gy)
	if err != nil {
		return err
	}
	yo, err := b.residualOperand(what, x, y)
	if err != nil {
		return err
	}
	gro, err := b.residualOperand(what, x, gResidual)
	if err != nil {
		return err
	}
	g2o, err := b.residualOperand(what, x, gy2)
	if err != nil {
		return err
	}
	if gro != nil && g2o != nil {
		// The sums kernel binds the residual's gradient or the second gradient, not both: add
		// the two gradients first.
		sum, err := b.Alloc(x.Shape())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer b.Release(sum.Storage())
		if err := b.Binary(ops.Add, sum, gy, gy2); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return b.BatchNormGrad(gx, gGamma, gBeta, gResidual, sum, nil, x, y, gamma, mean, invStd, batchStats)
	}
	n, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, gGamma, gBeta, gamma, mean, invStd)
	if err != nil {
		return err
	}
	xo, gxo, gyo, hw := os[0], os[1], os[2], int64(h*w)
	all := []operand{xo, gyo, gxo}
	if yo != nil {
		all = append(all, *yo)
	}
	if gro != nil {
		all = append(all, *gro)
	}
	if g2o != nil {
		all = append(all, *g2o)
	}
	plan, err := b.planSegments(what, int64(c), hw, int64(c), false, all...)
	if err != nil {
		return err
	}
	part, err := b.scratch(2 * int64(c) * plan.nchunks)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	k, err := b.kernel(shaders.BatchNorm2DGradSums, reduceWorkGroup)
	if err != nil {
		return err
	}
	ca, coff, err := b.counterSlots(what, int64(c))
	if err != nil {
		return err
	}
	pa := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	ma, moff := b.bindAll(vs[3], false)
	gga, ggoff := b.bindAll(vs[0], true)
	gba, gboff := b.bindAll(vs[1], true)
	ia, ioff := b.bindAll(vs[4], false)
	push := bngSumsPush{L: uint32(hw), C: uint32(c), APer: uint32(plan.aPer), JChunks: uint32(plan.jchunks), Chunk: uint32(plan.chunk),
		NChunks: uint32(plan.nchunks), MOff: moff, COff: coff, GGOff: ggoff, GBOff: gboff, IOff: ioff}
	if yo != nil {
		push.Flags |= bngMask
	}
	if gro != nil {
		push.Flags |= bngResidual
	}
	if g2o != nil {
		push.Flags |= bngSecond
	}
	for i0 := int64(0); i0 < xo.n; i0 += plan.per {
		i1 := min(i0+plan.per, xo.n)
		ga, goff := b.bindItems(gyo, i0, i1, false)
		xa, xoff := b.bindItems(xo, i0, i1, false)
		ya, yoff := b.standIn(gyo)
		ystride := uint32(0)
		if yo != nil {
			ya, yoff = b.bindItems(*yo, i0, i1, false)
			ystride = uint32(yo.stride)
		}
		// Binding 5: the residual's gradient (written) or the second gradient (read).
		ra, roff := b.standIn(gyo)
		rstride := uint32(0)
		if gro != nil {
			ra, roff = b.bindItems(*gro, i0, i1, true)
			rstride = uint32(gro.stride)
		} else if g2o != nil {
			ra, roff = b.bindItems(*g2o, i0, i1, false)
			rstride = uint32(g2o.stride)
		}
		push.GYOff, push.GYStride, push.XOff, push.XStride = goff, uint32(gyo.stride), xoff, uint32(xo.stride)
		push.YOff, push.YStride, push.GROff, push.GRStride = yoff, ystride, roff, rstride
		push.A0, push.A1 = uint32(i0), uint32(i1)
		groups := [3]uint32{uint32(plan.jchunks), uint32(c), uint32((i1 - i0 + plan.aPer - 1) / plan.aPer)}
		if err := b.dev.Dispatch(k, []vkrt.Access{pa, ga, xa, ma, ya, ra, ca, gga, gba, ia}, pushBytes(&push), groups, what); err != nil {
			return err
		}
	}

	ak, err := b.kernel(shaders.BatchNorm2DGradApply, perElementWorkGroup)
	if err != nil {
		return err
	}
	gama, gamoff := b.bindAll(vs[2], false)
	gga.Write, gba.Write = false, false
	ap := bngApplyPush{C: uint32(c), HW: uint32(hw), GOff: gamoff, MOff: moff, IOff: ioff, GGOff: ggoff, GBOff: gboff, M: float32(n * h * w)}
	if batchStats {
		ap.Train = 1
	}
	// The residual's gradient is gy (+ gy2) already masked: read it instead of gy, gy2 and y.
	src, mask, second := gyo, yo, g2o
	if gro != nil {
		src, mask, second = *gro, nil, nil
	}
	if mask != nil {
		ap.Flags |= bngMask
	}
	if second != nil {
		ap.Flags |= bngSecond
	}
	chunks, err := b.itemChunks(what, xo.n, all...)
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		oa, ooff := b.bindItems(gxo, ch[0], ch[1], true)
		sa, soff := b.bindItems(src, ch[0], ch[1], false)
		xa, xoff := b.bindItems(xo, ch[0], ch[1], false)
		ya, yoff := b.standIn(src)
		ystride := uint32(0)
		if mask != nil {
			ya, yoff = b.bindItems(*mask, ch[0], ch[1], false)
			ystride = uint32(mask.stride)
		}
		ap.GXOff, ap.GXStride, ap.GYOff, ap.GYStride, ap.XOff, ap.XStride = ooff, uint32(gxo.stride), soff, uint32(src.stride), xoff, uint32(xo.stride)
		s2a, s2off := b.standIn(src)
		s2stride := uint32(0)
		if second != nil {
			s2a, s2off = b.bindItems(*second, ch[0], ch[1], false)
			s2stride = uint32(second.stride)
		}
		ap.YOff, ap.YStride, ap.GY2Off, ap.GY2Stride = yoff, ystride, s2off, s2stride
		count := (ch[1] - ch[0]) * xo.inner
		ap.N0, ap.Count = uint32(ch[0]), uint32(count)
		binds := []vkrt.Access{oa, sa, xa, gama, ma, ia, gga, gba, ya, s2a}
		if err := b.dev.Dispatch(ak, binds, pushBytes(&ap), grid(count, perElementWorkGroup), what); err != nil {
			return err
		}
	}
	return nil
}
