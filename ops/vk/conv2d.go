package vk

import (
	"fmt"
	"os"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// convPush mirrors conv_gemm.glsl's push block.
type convPush struct {
	XOff, XStride, YOff, YStride uint32
	WOff, BOff                   uint32
	C, H, W                      uint32
	O, OH, OW                    uint32
	Cg, Og                       uint32
	Pad, Dil                     int32
	N0, NImg                     uint32
	HasBias                      uint32
	KPer, Splits, SOff, STotal   uint32
	ColOff                       uint32
	Accum                        uint32
	Fixup, CntOff                uint32
	WRow                         uint32
	ROff, RStride                uint32 // conv2d CONV_ACT: the residual
}

// tile is a GEMM tile configuration: a BM×BN block of outputs per workgroup, BK deep, each
// invocation owning TM×TN of them.
type tile struct{ bm, bn, bk, tm, tn int64 }

func (t tile) wg() int64 { return (t.bm / t.tm) * (t.bn / t.tn) }

// valid checks the shaders' load mappings (conv_gemm.glsl) and the device's limits.
func (t tile) valid(info vkrt.DeviceInfo) bool {
	wg := t.wg()
	shared := 4 * t.bk * (t.bm + 4 + t.bn + 1)
	return t.bm%t.tm == 0 && t.bn%t.tn == 0 && wg%t.bn == 0 && wg%t.bk == 0 &&
		(t.bm*t.bk)%wg == 0 && (t.bk*t.bn)%wg == 0 &&
		wg <= int64(info.MaxWorkGroupInvocations) && wg <= int64(info.MaxWorkGroupSize[0]) &&
		shared <= int64(info.MaxSharedMemory)
}

// tileSet holds a device class's tiles, largest first, how many workgroups keep it busy, and
// the register-tile row mapping (conv_gemm.glsl AVEC).
type tileSet struct {
	tiles    []tile
	parallel int64
	avec     uint32
}

// chooseTiles picks tile sizes per device class. GPUs get 128×128 tiles with 8×8 outputs per
// invocation (the shape that reached 16.5 TFLOP/s as a plain SGEMM on the H100, gpu.md), and
// smaller ones for the narrow layers (Res2Net's 26-wide splits, 11×11 maps) where big tiles
// would leave most of the GPU idle. CPU devices (lavapipe) get small tiles: their workgroups run
// as SIMD loops on a few cores.
func chooseTiles(info vkrt.DeviceInfo) tileSet {
	var ts tileSet
	switch info.Type {
	case vkrt.CPU:
		ts = tileSet{tiles: []tile{{32, 32, 8, 4, 4}}, parallel: 8}
	default:
		ts = tileSet{tiles: []tile{
			{128, 128, 16, 8, 8},
			{64, 64, 16, 4, 4},
			{32, 64, 16, 4, 4},
			{32, 32, 8, 4, 4},
		}, parallel: 256}
		if info.Type == vkrt.Integrated {
			ts.parallel = 64
		}
	}
	var ok []tile
	for _, t := range ts.tiles {
		if t.valid(info) {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		ok = []tile{{16, 16, 8, 2, 2}} // 64 invocations and 2 KiB: within every device's minimum
	}
	ts.tiles = ok
	// Rows per invocation contiguous (AVEC 1) on GPUs, where it allows 128-bit shared loads;
	// CHNET_VK_AVEC=0/1 overrides, to compare on a given GPU.
	if info.Type != vkrt.CPU {
		ts.avec = 1
	}
	switch os.Getenv("CHNET_VK_AVEC") {
	case "0":
		ts.avec = 0
	case "1":
		ts.avec = 1
	}
	if ts.avec == 1 {
		for _, t := range ts.tiles {
			if t.tm%4 != 0 {
				ts.avec = 0 // 128-bit loads need whole groups of four rows
			}
		}
	}
	return ts
}

// pick chooses a tile for an M×N GEMM per group: the largest that does not waste most of its
// rows and still yields enough workgroups to fill the device, else the smallest.
func (ts tileSet) pick(m, n, groups int64) tile {
	for _, t := range ts.tiles {
		if m < t.bm*3/4 || n < t.bn {
			continue
		}
		if ceilDiv(m, t.bm)*ceilDiv(n, t.bn)*groups >= ts.parallel {
			return t
		}
	}
	return ts.tiles[len(ts.tiles)-1]
}

// pickSplitK chooses the weight gradient's tile, for an M×N GEMM per group reducing over kLen:
// as pick, but counting the workgroups that splitting K adds (Conv2DGradWeight splits it into
// pieces of at least minSplitK until the device is full), so that deep layers' small weights
// get large tiles and their parallelism from the split instead of falling to the smallest tile.
func (ts tileSet) pickSplitK(m, n, groups, kLen int64) tile {
	for _, t := range ts.tiles {
		if m < t.bm*3/4 || n < t.bn {
			continue
		}
		tiles := ceilDiv(m, t.bm) * ceilDiv(n, t.bn) * groups
		splits := max(1, min(ceilDiv(ts.parallel, tiles), kLen/minSplitK))
		if tiles*splits >= ts.parallel {
			return t
		}
	}
	return ts.tiles[len(ts.tiles)-1]
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// convGeom is a convolution's sizes.
type convGeom struct {
	n, c, h, w, o, oh, ow, kh, kw, g, cg, og int64
	p                                        ops.Conv2DParams
	direct                                   bool // 1x1, stride 1, no padding: a plain GEMM
}

func newConvGeom(what string, x, w, y tensor.Shape, p ops.Conv2DParams) (convGeom, error) {
	var g convGeom
	if len(x) != 4 || len(w) != 4 || len(y) != 4 {
		return g, fmt.Errorf("%s: input %v, weight %v and output %v must be NCHW", what, x, w, y)
	}
	p = p.Norm()
	g.p = p
	g.n, g.c, g.h, g.w = int64(x[0]), int64(x[1]), int64(x[2]), int64(x[3])
	g.o, g.kh, g.kw = int64(w[0]), int64(w[2]), int64(w[3])
	g.oh, g.ow = int64(y[2]), int64(y[3])
	g.g = int64(p.Groups)
	if g.c%g.g != 0 || g.o%g.g != 0 || int64(w[1]) != g.c/g.g {
		return g, fmt.Errorf("%s: input %v and weight %v do not match groups %d", what, x, w, p.Groups)
	}
	if int64(y[0]) != g.n || int64(y[1]) != g.o || int64(p.OutSize(x[2], w[2])) != g.oh || int64(p.OutSize(x[3], w[3])) != g.ow {
		return g, fmt.Errorf("%s: output %v does not match input %v, weight %v (%v)", what, y, x, w, p)
	}
	g.cg, g.og = g.c/g.g, g.o/g.g
	g.direct = g.kh == 1 && g.kw == 1 && p.Stride == 1 && p.Pad == 0
	return g, nil
}

func (g convGeom) push() convPush {
	return convPush{C: uint32(g.c), H: uint32(g.h), W: uint32(g.w), O: uint32(g.o), OH: uint32(g.oh), OW: uint32(g.ow),
		Cg: uint32(g.cg), Og: uint32(g.og), Pad: int32(g.p.Pad), Dil: int32(g.p.Dilation), Splits: 1, STotal: 1}
}

func (b *Backend) convKernel(name, name1x1 string, g convGeom, t tile) (*vkrt.Kernel, error) {
	if g.direct {
		name = name1x1
	}
	avec := b.tiles.avec
	if t.tm%4 != 0 {
		avec = 0
	}
	return b.kernel(name, uint32(t.wg()), uint32(t.bm), uint32(t.bn), uint32(t.bk), uint32(t.tm), uint32(t.tn),
		uint32(g.kh), uint32(g.kw), uint32(g.p.Stride), avec)
}

// columnPieces splits a per-image GEMM over images [i0,i1) into dispatches of at most 65535
// column tiles; a single huge image is split by column ranges.
func columnPieces(i0, i1, perImage, bn int64) [][3]int64 {
	maxCols := int64(65535) * bn
	var out [][3]int64 // first image, images, first column within them
	if perImage <= maxCols {
		per := max(1, maxCols/perImage)
		for i := i0; i < i1; i += per {
			out = append(out, [3]int64{i, min(per, i1-i), 0})
		}
		return out
	}
	for i := i0; i < i1; i++ {
		for c := int64(0); c < perImage; c += maxCols {
			out = append(out, [3]int64{i, 1, c})
		}
	}
	return out
}

// convOperands checks a convolution's shapes and binds its tensors: x (input or input
// gradient) and y (output or output gradient) batched, w (weight or weight gradient) with its
// output rows batch-strided (a slice of a larger weight along its input channels, as CHNet's
// factorized head reads it).
func (b *Backend) convOperands(what string, x, w, y *tensor.Tensor, p ops.Conv2DParams) (g convGeom, xo, wo, yo operand, err error) {
	if g, err = newConvGeom(what, x.Shape(), w.Shape(), y.Shape(), p); err != nil {
		return
	}
	os, err := b.operands(x, y)
	if err != nil {
		return g, xo, wo, yo, fmt.Errorf("%s: %w", what, err)
	}
	if wo, err = b.operand(w); err != nil {
		return g, xo, wo, yo, fmt.Errorf("%s: %w", what, err)
	}
	return g, os[0], wo, os[1], nil
}

// Conv2D implements ops.Backend.
func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	return b.Conv2DAct(dst, x, w, bias, ops.ConvAct{}, p)
}

// Conv2DAct implements ops.Backend: with an epilogue, the conv2d_act kernels (conv2d.comp
// CONV_ACT) add the residual and take the ReLU as they store the output.
func (b *Backend) Conv2DAct(dst, x, w, bias *tensor.Tensor, a ops.ConvAct, p ops.Conv2DParams) error {
	const what = "conv2d"
	g, xo, wo, yo, err := b.convOperands(what, x, w, dst, p)
	if err != nil {
		return err
	}
	if a.Residual == nil && !a.ReLU {
		return b.conv2DForward(what, shaders.Conv2D, shaders.Conv2D1x1, g, xo, wo, yo, bias)
	}
	push, t, wa, ba, err := b.forwardSetup(what, g, wo, bias)
	if err != nil {
		return err
	}
	// --- eval epilogue (ops.ConvAct) ---
	var act uint32
	ra := wa // bound but unread without a residual
	if a.ReLU {
		act |= 1
	}
	if a.Residual != nil {
		act |= 2
		if !a.Residual.Shape().Equal(dst.Shape()) {
			return fmt.Errorf("%s: residual %v does not match the output %v", what, a.Residual.Shape(), dst.Shape())
		}
		ro, err := b.operand(a.Residual)
		if err != nil {
			return fmt.Errorf("%s: residual: %w", what, err)
		}
		// The residual binds whole; when the batch does not fit one binding, run it in pieces
		// of images that do (dispatchImages then binds x and y the same way).
		chunks, err := b.itemChunks(what, g.n, xo, yo, ro)
		if err != nil {
			return err
		}
		if len(chunks) > 1 {
			for _, ch := range chunks {
				var vs [3]*tensor.Tensor
				for i, v := range []*tensor.Tensor{dst, x, a.Residual} {
					if vs[i], err = v.Narrow(0, int(ch[0]), int(ch[1]-ch[0])); err != nil {
						return fmt.Errorf("%s: %w", what, err)
					}
				}
				if err := b.Conv2DAct(vs[0], vs[1], w, bias, ops.ConvAct{Residual: vs[2], ReLU: a.ReLU}, p); err != nil {
					return err
				}
			}
			return nil
		}
		var roff uint32
		ra, roff = b.bindAll(ro, false)
		push.ROff, push.RStride = roff, uint32(ro.stride)
	}
	k, err := b.convActKernel(g, t, act)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return b.dispatchImages(what, k, &push, g, t, xo, yo, false, wa, ba, ra)
}

// forwardSetup is a forward convolution's push block with the weight's and bias's offsets,
// its tile, and the weight and bias bindings (the weight stands in for a missing bias).
func (b *Backend) forwardSetup(what string, g convGeom, wo operand, bias *tensor.Tensor) (convPush, tile, vkrt.Access, vkrt.Access, error) {
	bo := wo // bound but unread without a bias
	push := g.push()
	push.WRow = uint32(wo.stride)
	if bias != nil {
		var err error
		if bo, err = b.dense(bias); err != nil {
			return push, tile{}, vkrt.Access{}, vkrt.Access{}, fmt.Errorf("%s: bias: %w", what, err)
		}
		if bo.n*bo.inner != g.o {
			return push, tile{}, vkrt.Access{}, vkrt.Access{}, fmt.Errorf("%s: bias %v for %d output channels", what, bias.Shape(), g.o)
		}
		push.HasBias = 1
	}
	t := b.tiles.pick(g.og, g.n*g.oh*g.ow, g.g)
	wa, woff := b.bindAll(wo, false)
	ba, boff := b.bindAll(bo, false)
	push.WOff, push.BOff = woff, boff
	return push, t, wa, ba, nil
}

// conv2DForward runs the forward kernel name (name1x1 for a direct 1x1 convolution) without an
// epilogue: the fp32 conv2d, or conv2d_mixed's fp16 forms on Half operands.
func (b *Backend) conv2DForward(what, name, name1x1 string, g convGeom, xo, wo, yo operand, bias *tensor.Tensor) error {
	push, t, wa, ba, err := b.forwardSetup(what, g, wo, bias)
	if err != nil {
		return err
	}
	k, err := b.convKernel(name, name1x1, g, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return b.dispatchImages(what, k, &push, g, t, xo, yo, false, wa, ba)
}

// convActKernel is the forward kernel with the eval epilogue act (conv2d.comp ACT).
func (b *Backend) convActKernel(g convGeom, t tile, act uint32) (*vkrt.Kernel, error) {
	name := shaders.Conv2DAct
	if g.direct {
		name = shaders.Conv2DAct1x1
	}
	avec := b.tiles.avec
	if t.tm%4 != 0 {
		avec = 0
	}
	return b.kernel(name, uint32(t.wg()), uint32(t.bm), uint32(t.bn), uint32(t.bk), uint32(t.tm), uint32(t.tn),
		uint32(g.kh), uint32(g.kw), uint32(g.p.Stride), avec, act)
}

// --- end eval epilogue ---

// dispatchImages runs a forward or input-gradient conv kernel over the batch: in chunks of
// images that each fit one binding, and within those in pieces of at most 65535 workgroups of
// output columns. The written tensor (y forward, x with gradX) binds first, the read one
// second, then fixed.
func (b *Backend) dispatchImages(what string, k *vkrt.Kernel, push *convPush, g convGeom, t tile, xo, yo operand, gradX bool, fixed ...vkrt.Access) error {
	chunks, err := b.itemChunks(what, g.n, xo, yo)
	if err != nil {
		return err
	}
	perImage, rows := g.oh*g.ow, g.og
	if gradX {
		perImage, rows = g.h*g.w, g.cg
	}
	macsPerImage := g.oh * g.ow * g.o * g.cg * g.kh * g.kw // useful work, forward and input gradient alike
	access := make([]vkrt.Access, 2, 2+len(fixed))
	access = append(access, fixed...)
	for _, ch := range chunks {
		xa, xoff := b.bindItems(xo, ch[0], ch[1], gradX)
		ya, yoff := b.bindItems(yo, ch[0], ch[1], !gradX)
		push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(xo.stride), yoff, uint32(yo.stride)
		access[0], access[1] = ya, xa
		if gradX {
			access[0], access[1] = xa, ya
		}
		for _, pc := range columnPieces(ch[0], ch[1], perImage, t.bn) {
			cols := min(pc[1]*perImage-pc[2], 65535*t.bn)
			push.N0, push.NImg, push.ColOff = uint32(pc[0]), uint32(pc[1]), uint32(pc[2])
			groups := [3]uint32{uint32(ceilDiv(cols, t.bn)), uint32(ceilDiv(rows, t.bm)), uint32(g.g)}
			if err := b.dev.DispatchMACs(k, access, pushBytes(push), groups, what, macsPerImage*cols/perImage); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	return nil
}

// Conv2DGradInput implements ops.Backend.
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	return b.conv2DGradInput("conv2d grad input", dst, gy, w, p, false)
}

// Conv2DGradInputAdd implements ops.Backend: the kernel adds its result to dst's values.
func (b *Backend) Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	return b.conv2DGradInput("conv2d grad input add", dst, gy, w, p, true)
}

func (b *Backend) conv2DGradInput(what string, dst, gy, w *tensor.Tensor, p ops.Conv2DParams, accum bool) error {
	g, xo, wo, yo, err := b.convOperands(what, dst, w, gy, p)
	if err != nil {
		return err
	}
	return b.gradInputRun(what, shaders.Conv2DGradInput, shaders.Conv2DGradInput1x1, g, xo, wo, yo, accum)
}

// gradInputRun runs the input-gradient kernel name (name1x1 for a direct 1x1 convolution) into
// xo: the fp32 kernel, or conv2d_grad_input_mixed's fp16 forms on Half operands.
func (b *Backend) gradInputRun(what, name, name1x1 string, g convGeom, xo, wo, yo operand, accum bool) error {
	push := g.push()
	push.WRow = uint32(wo.stride)
	if accum {
		push.Accum = 1
	}
	t := b.tiles.pick(g.cg, g.n*g.h*g.w, g.g)
	k, err := b.convKernel(name, name1x1, g, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	wa, woff := b.bindAll(wo, false)
	push.WOff = woff
	return b.dispatchImages(what, k, &push, g, t, xo, yo, true, wa)
}

// minSplitK is the least reduction length worth a split of its own.
const minSplitK = 512

// maxLoopTrips bounds the iterations of any loop in a kernel invocation: lavapipe's gallivm
// silently ends a shader's loops after 65535 iterations in all (LP_MAX_TGSI_LOOP_ITERATIONS,
// shared by every loop of an invocation), which once cut split-K sums short.
const maxLoopTrips = 16384

// maxSplitK bounds one split's reduction length for accuracy: each invocation sums its split
// sequentially in float32, whose worst-case error grows with the length; the partials are then
// added in a second pass.
const maxSplitK = 32768

// Conv2DGradWeight implements ops.Backend: a GEMM reducing over every output pixel of the
// batch, split along that reduction when the weight alone gives too few workgroups (deep layers:
// 2048×512 weights, 11×11 maps), with the partials summed in a fixed order.
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
	return b.conv2DGradWeight(dst, x, nil, gy, p)
}

// Conv2DGradWeightSum implements ops.Backend: the kernel adds x2 to x as it loads them
// (conv2d_grad_weight.comp SUM_INPUT) where both have one layout; otherwise an add first.
func (b *Backend) Conv2DGradWeightSum(dst, x, x2, gy *tensor.Tensor, p ops.Conv2DParams) error {
	return b.conv2DGradWeight(dst, x, x2, gy, p)
}

func (b *Backend) conv2DGradWeight(dst, x, x2, gy *tensor.Tensor, p ops.Conv2DParams) error {
	const what = "conv2d grad weight"
	g, xo, do, yo, err := b.convOperands(what, x, dst, gy, p)
	if err != nil {
		return err
	}
	var x2o *operand
	if x2 != nil {
		o, err := b.sumOperand(what, x, x2, xo, g)
		if err == errSumApart {
			return b.withSum(what, x, x2, func(sum *tensor.Tensor) error { return b.Conv2DGradWeight(dst, sum, gy, p) })
		}
		if err != nil {
			return err
		}
		x2o = &o
	}
	name := shaders.Conv2DGradWeight
	if x2o != nil {
		name = shaders.Conv2DGradWeightSum // never direct: sumOperand checked
	}
	return b.gradWeightRun(what, name, shaders.Conv2DGradWeight1x1, dst, g, xo, x2o, yo, do)
}

// gradWeightRun runs the weight-gradient kernel name (name1x1 for a direct 1x1 convolution)
// into dst (operand do): the fp32 kernels, or conv2d_grad_weight_mixed's on Half operands.
func (b *Backend) gradWeightRun(what, name, name1x1 string, dst *tensor.Tensor, g convGeom, xo operand, x2o *operand, yo, do operand) error {
	m, n := g.og, g.cg*g.kh*g.kw
	weights := g.o * n
	t := b.tiles.pickSplitK(m, n, g.g, g.n*g.oh*g.ow)
	k, err := b.convKernel(name, name1x1, g, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	chunks, err := b.itemChunks(what, g.n, xo, yo)
	if err != nil {
		return err
	}
	// Splits per piece of images: enough workgroups to fill the device, each split at least
	// minSplitK long, and all partials within one binding.
	ohw := g.oh * g.ow
	tiles := ceilDiv(m, t.bm) * ceilDiv(n, t.bn) * g.g
	maxTotal := max(1, min(b.maxElems()/weights, 65535/g.g))
	type piece struct{ i0, i1, splits, kPer int64 }
	var pieces []piece
	total := int64(0)
	for _, ch := range chunks {
		kLen := (ch[1] - ch[0]) * ohw
		s := max(1, min(ceilDiv(b.tiles.parallel, tiles), kLen/minSplitK), ceilDiv(kLen, min(maxLoopTrips*t.bk, maxSplitK)))
		kPer := ceilDiv(ceilDiv(kLen, s), t.bk) * t.bk
		s = ceilDiv(kLen, kPer)
		pieces = append(pieces, piece{ch[0], ch[1], s, kPer})
		total += s
	}
	if total > maxTotal {
		return fmt.Errorf("%s: %d partial weight gradients of %d values exceed one binding", what, total, weights)
	}
	fixup := splitKFixup && total > 1 && len(pieces) == 1 && total*t.tm*t.tn <= maxLoopTrips/2
	if do.stride != n && total > 1 && !fixup {
		// The reduction kernel writes dense rows: sum into a dense gradient, then copy.
		tmp, err := b.Alloc(dst.Shape())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer b.Release(tmp.Storage())
		tmpo, err := b.operand(tmp)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := b.gradWeightRun(what, name, name1x1, tmp, g, xo, x2o, yo, tmpo); err != nil {
			return err
		}
		return b.Copy(dst, tmp)
	}
	out, outOff := b.bindAll(do, true)
	// With one dispatch, the kernel sums its own partials (the fix-up, conv2d_grad_weight.comp):
	// no reduction kernel, and no barrier before one. Bounded so the summing loop stays well
	// within lavapipe's loop budget.
	if fixup {
		return b.gradWeightFixup(what, k, g, t, pieces[0].kPer, total, weights, out, outOff, xo, x2o, yo, do)
	}
	var part *vkrt.Buffer
	if total > 1 {
		if part, err = b.scratch(total * weights); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer part.Free()
		out, outOff = vkrt.Access{Buf: part, Size: part.Size(), Write: true}, 0
	}
	push := g.push()
	push.WOff, push.STotal, push.WRow = outOff, uint32(total), uint32(do.stride)
	if total > 1 {
		push.WRow = uint32(n) // dense partials
	}
	sOff := int64(0)
	for _, pc := range pieces {
		xa, xoff := b.bindItems(xo, pc.i0, pc.i1, false)
		ya, yoff := b.bindItems(yo, pc.i0, pc.i1, false)
		push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(xo.stride), yoff, uint32(yo.stride)
		push.N0, push.NImg = uint32(pc.i0), uint32(pc.i1-pc.i0)
		push.KPer, push.Splits, push.SOff = uint32(pc.kPer), uint32(pc.splits), uint32(sOff)
		groups := [3]uint32{uint32(ceilDiv(n, t.bn)), uint32(ceilDiv(m, t.bm)), uint32(g.g * pc.splits)}
		macs := (pc.i1 - pc.i0) * ohw * weights
		binds := []vkrt.Access{out, out, xa, ya, out}
		if x2o != nil {
			var x2a vkrt.Access
			x2a, push.BOff = b.bindItems(*x2o, pc.i0, pc.i1, false)
			binds = append(binds, x2a)
		}
		if err := b.dev.DispatchMACs(k, binds, pushBytes(&push), groups, what, macs); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		sOff += pc.splits
	}
	if total == 1 {
		return nil
	}
	da, doff := b.bindAll(do, true)
	out.Write = false
	return b.sumRows(what, da, out, doff, 0, weights, total, 1, weights, 1)
}

// splitKFixup lets a split-K weight gradient sum its partials in its own kernel; a variable so
// that a test can compare with the reduction kernel.
var splitKFixup = true

// splitCounterLen is the length of the ring of split-K tile counters.
const splitCounterLen = 1 << 16

// splitCounters returns n zero counters of the ring for one fix-up dispatch: a range no recent
// dispatch used, starting at a binding boundary, so that consecutive dispatches do not look
// dependent to the recorder. The ring is allocated and zeroed once; each dispatch leaves its
// counters zero again.
func (b *Backend) splitCounters(n int64) (vkrt.Access, uint32, error) {
	b.splitRingMu.Lock()
	defer b.splitRingMu.Unlock()
	if b.splitRing == nil {
		c, err := b.Alloc(tensor.Shape{splitCounterLen})
		if err != nil {
			return vkrt.Access{}, 0, err
		}
		if err := b.Fill(c, 0); err != nil { // float zero is uint zero
			return vkrt.Access{}, 0, err
		}
		b.splitRing = c
	}
	align := max(1, b.dev.BindAlign()/4)
	start := ceilDiv(b.splitRingNext, align) * align
	if start+n > splitCounterLen {
		start = 0
	}
	b.splitRingNext = start + n
	st := b.splitRing.Storage().(*storage)
	acc, s := b.bind(st.buf, start, start+n, true)
	return acc, uint32(start - s), nil
}

// gradWeightFixup records the weight gradient as one split-K dispatch whose last workgroup per
// tile sums the partials.
func (b *Backend) gradWeightFixup(what string, k *vkrt.Kernel, g convGeom, t tile, kPer, splits, weights int64, out vkrt.Access, outOff uint32, xo operand, x2o *operand, yo, wo operand) error {
	m, n := g.og, g.cg*g.kh*g.kw
	tiles := ceilDiv(n, t.bn) * ceilDiv(m, t.bm) * g.g
	if splits > 65535/g.g || tiles > splitCounterLen {
		return fmt.Errorf("%s: %d splits of %d tiles is too many for one dispatch", what, splits, tiles)
	}
	cnt, cntOff, err := b.splitCounters(tiles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	part, err := b.scratch(splits * weights)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	pacc := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	push := g.push()
	push.WOff, push.STotal, push.Fixup, push.CntOff = outOff, uint32(splits), 1, cntOff
	push.WRow = uint32(wo.stride)
	xa, xoff := b.bindItems(xo, 0, g.n, false)
	ya, yoff := b.bindItems(yo, 0, g.n, false)
	push.XOff, push.XStride, push.YOff, push.YStride = xoff, uint32(xo.stride), yoff, uint32(yo.stride)
	push.N0, push.NImg = 0, uint32(g.n)
	push.KPer, push.Splits, push.SOff = uint32(kPer), uint32(splits), 0
	groups := [3]uint32{uint32(ceilDiv(n, t.bn)), uint32(ceilDiv(m, t.bm)), uint32(g.g * splits)}
	macs := g.n * g.oh * g.ow * weights
	binds := []vkrt.Access{out, pacc, xa, ya, cnt}
	if x2o != nil {
		var x2a vkrt.Access
		x2a, push.BOff = b.bindItems(*x2o, 0, g.n, false)
		binds = append(binds, x2a)
	}
	if err := b.dev.DispatchMACs(k, binds, pushBytes(&push), groups, what, macs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
