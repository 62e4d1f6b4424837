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
	A0, A1, POff                  uint32
}

type bnFinalPush struct {
	C, NChunks                     uint32
	Count, Eps, Momentum           float32
	MOff, IOff, RMOff, RVOff, POff uint32
}

type bnApplyPush struct {
	YOff, YStride, XOff, XStride uint32
	C, HW, N0, Count             uint32
	MOff, SOff, GOff, BOff       uint32
	Eval                         uint32
	Eps                          float32
}

type bngSumsPush struct {
	GYOff, GYStride, XOff, XStride uint32
	L, C, APer, JChunks            uint32
	Chunk, NChunks, A0, A1         uint32
	MOff, POff                     uint32
}

type bngFinalPush struct {
	C, NChunks, GGOff, GBOff, POff, IOff uint32
}

type bngApplyPush struct {
	GXOff, GXStride, GYOff, GYStride uint32
	XOff, XStride, C, HW             uint32
	N0, Count, GOff, MOff            uint32
	IOff, GGOff, GBOff, Train        uint32
	M                                float32
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

// bnApply records y = x·scale + shift (batch statistics, or running ones when eval).
func (b *Backend) bnApply(what string, y, x operand, c, hw int64, m, s, g, be operand, eval bool, eps float32) error {
	k, err := b.kernel(shaders.BatchNorm2DApply, perElementWorkGroup)
	if err != nil {
		return err
	}
	chunks, err := b.itemChunks(what, x.n, x, y)
	if err != nil {
		return err
	}
	push := bnApplyPush{C: uint32(c), HW: uint32(hw), Eps: eps}
	if eval {
		push.Eval = 1
	}
	ma, moff := b.bindAll(m, false)
	sa, soff := b.bindAll(s, false)
	ga, goff := b.bindAll(g, false)
	ba, boff := b.bindAll(be, false)
	push.MOff, push.SOff, push.GOff, push.BOff = moff, soff, goff, boff
	for _, ch := range chunks {
		ya, yoff := b.bindItems(y, ch[0], ch[1], true)
		xa, xoff := b.bindItems(x, ch[0], ch[1], false)
		push.YOff, push.YStride, push.XOff, push.XStride = yoff, uint32(y.stride), xoff, uint32(x.stride)
		count := (ch[1] - ch[0]) * x.inner
		push.N0, push.Count = uint32(ch[0]), uint32(count)
		if err := b.dev.Dispatch(k, []vkrt.Access{ya, xa, ma, sa, ga, ba}, pushBytes(&push), grid(count, perElementWorkGroup), what); err != nil {
			return err
		}
	}
	return nil
}

// BatchNormTrain implements ops.Backend.
func (b *Backend) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	const what = "batch_norm2d"
	os, err := b.bnOperands(what, x, dst)
	if err != nil {
		return err
	}
	n, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, mean, invStd, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	xo, hw := os[0], int64(h*w)
	plan, err := b.planSegments(what, int64(c), hw, int64(c), false, xo)
	if err != nil {
		return err
	}
	part, err := b.scratch(3 * int64(c) * plan.nchunks)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	k, err := b.kernel(shaders.BatchNorm2DStats, reduceWorkGroup)
	if err != nil {
		return err
	}
	pa := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	push := bnStatsPush{L: uint32(hw), C: uint32(c), APer: uint32(plan.aPer), JChunks: uint32(plan.jchunks), Chunk: uint32(plan.chunk), NChunks: uint32(plan.nchunks)}
	for i0 := int64(0); i0 < xo.n; i0 += plan.per {
		i1 := min(i0+plan.per, xo.n)
		xa, xoff := b.bindItems(xo, i0, i1, false)
		push.Off, push.Stride, push.A0, push.A1 = xoff, uint32(xo.stride), uint32(i0), uint32(i1)
		groups := [3]uint32{uint32(plan.jchunks), uint32(c), uint32((i1 - i0 + plan.aPer - 1) / plan.aPer)}
		if err := b.dev.Dispatch(k, []vkrt.Access{pa, xa}, pushBytes(&push), groups, what); err != nil {
			return err
		}
	}
	fk, err := b.kernel(shaders.BatchNorm2DFinal, 64)
	if err != nil {
		return err
	}
	binds := make([]vkrt.Access, 5)
	var offs [4]uint32
	for i, v := range []operand{vs[0], vs[1], vs[4], vs[5]} {
		binds[i], offs[i] = b.bindAll(v, true)
	}
	pa.Write = false
	binds[4] = pa
	fp := bnFinalPush{C: uint32(c), NChunks: uint32(plan.nchunks), Count: float32(n * h * w), Eps: p.Eps, Momentum: p.Momentum,
		MOff: offs[0], IOff: offs[1], RMOff: offs[2], RVOff: offs[3]}
	if err := b.dev.Dispatch(fk, binds, pushBytes(&fp), [3]uint32{uint32((c + 63) / 64), 1, 1}, what); err != nil {
		return err
	}
	return b.bnApply(what, os[1], xo, int64(c), hw, vs[0], vs[1], vs[2], vs[3], false, p.Eps)
}

// BatchNormEval implements ops.Backend.
func (b *Backend) BatchNormEval(dst, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	const what = "batch_norm2d eval"
	os, err := b.bnOperands(what, x, dst)
	if err != nil {
		return err
	}
	_, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	return b.bnApply(what, os[1], os[0], int64(c), int64(h*w), vs[2], vs[3], vs[0], vs[1], true, p.Eps)
}

// BatchNormGrad implements ops.Backend.
func (b *Backend) BatchNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	const what = "batch_norm2d grad"
	os, err := b.bnOperands(what, x, gx, gy)
	if err != nil {
		return err
	}
	n, c, h, w := x.Shape().NCHW()
	vs, err := b.vectors(what, c, gGamma, gBeta, gamma, mean, invStd)
	if err != nil {
		return err
	}
	xo, gxo, gyo, hw := os[0], os[1], os[2], int64(h*w)
	plan, err := b.planSegments(what, int64(c), hw, int64(c), false, xo, gyo, gxo)
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
	pa := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	ma, moff := b.bindAll(vs[3], false)
	push := bngSumsPush{L: uint32(hw), C: uint32(c), APer: uint32(plan.aPer), JChunks: uint32(plan.jchunks), Chunk: uint32(plan.chunk),
		NChunks: uint32(plan.nchunks), MOff: moff}
	for i0 := int64(0); i0 < xo.n; i0 += plan.per {
		i1 := min(i0+plan.per, xo.n)
		ga, goff := b.bindItems(gyo, i0, i1, false)
		xa, xoff := b.bindItems(xo, i0, i1, false)
		push.GYOff, push.GYStride, push.XOff, push.XStride = goff, uint32(gyo.stride), xoff, uint32(xo.stride)
		push.A0, push.A1 = uint32(i0), uint32(i1)
		groups := [3]uint32{uint32(plan.jchunks), uint32(c), uint32((i1 - i0 + plan.aPer - 1) / plan.aPer)}
		if err := b.dev.Dispatch(k, []vkrt.Access{pa, ga, xa, ma}, pushBytes(&push), groups, what); err != nil {
			return err
		}
	}
	fk, err := b.kernel(shaders.BatchNorm2DGradFinal, 64)
	if err != nil {
		return err
	}
	gga, ggoff := b.bindAll(vs[0], true)
	gba, gboff := b.bindAll(vs[1], true)
	ia, ioff := b.bindAll(vs[4], false)
	pa.Write = false
	fp := bngFinalPush{C: uint32(c), NChunks: uint32(plan.nchunks), GGOff: ggoff, GBOff: gboff, IOff: ioff}
	if err := b.dev.Dispatch(fk, []vkrt.Access{gga, gba, pa, ia}, pushBytes(&fp), [3]uint32{uint32((c + 63) / 64), 1, 1}, what); err != nil {
		return err
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
	chunks, err := b.itemChunks(what, xo.n, xo, gyo, gxo)
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		oa, ooff := b.bindItems(gxo, ch[0], ch[1], true)
		ya, yoff := b.bindItems(gyo, ch[0], ch[1], false)
		xa, xoff := b.bindItems(xo, ch[0], ch[1], false)
		ap.GXOff, ap.GXStride, ap.GYOff, ap.GYStride, ap.XOff, ap.XStride = ooff, uint32(gxo.stride), yoff, uint32(gyo.stride), xoff, uint32(xo.stride)
		count := (ch[1] - ch[0]) * xo.inner
		ap.N0, ap.Count = uint32(ch[0]), uint32(count)
		binds := []vkrt.Access{oa, ya, xa, gama, ma, ia, gga, gba}
		if err := b.dev.Dispatch(ak, binds, pushBytes(&ap), grid(count, perElementWorkGroup), what); err != nil {
			return err
		}
	}
	return nil
}
