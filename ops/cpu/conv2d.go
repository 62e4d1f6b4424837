package cpu

import (
	"fmt"
	"sync"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Convolution runs as GEMM on shifted windows, one image and group at a time.
//
// Along one axis, kernel tap t of a conv with stride s, dilation d and padding p reads input
// index s·o + d·t − p for output o. Writing d·t − p = s·q + r with 0 ≤ r < s, that is row o + q
// of the input's phase r (the indices ≡ r mod s, taken every s). So each input channel is split
// into its phases (one for stride 1), each phase zero-padded to cover every q, and the output is
// computed on a grid as wide as a padded phase (Wq ≥ OW): output pixel (oy, ox) is grid column
// oy·Wq + ox. Row (c, ky, kx) of the im2col matrix is then one padded phase of channel c
// shifted by (qy·Wq + qx), a contiguous run, and packing B is a plain copy. The grid's extra
// Wq − OW columns per row are computed and dropped. A 1×1 conv with stride 1 and no padding
// reads its input and writes its output as they are: a plain GEMM.
//
//   - The weight gradient dW = dY·im2col(X)ᵀ reads the same windows, with dY widened to the
//     grid by zeros; both operands run along the pixels, and packing them transposes 8×8 blocks.
//   - The input gradient of phase (ry, rx) of X gathers only the taps with those residues:
//     dX_phase[c][t][u] = Σ W[o][c][ky][kx]·dY[o][t−qy][u−qx], a GEMM over (o, ky, kx) on shifted
//     windows of the zero-padded dY. For stride 1 this is the conv of dY with the flipped,
//     transposed kernel; for stride s there are s² phases whose taps partition the kernel, so
//     the work equals the forward's, with no col2im.
//
// Weights are packed once per call. With at least as many images as workers, each worker takes
// a run of images and computes them on one goroutine (weight gradients into private partial
// sums); a single image instead splits every GEMM over all workers.

// convGeom is a convolution's sizes, shared by the forward and both gradients.
type convGeom struct {
	n, c, h, w    int // input
	o, oh, ow     int // output
	kh, kw        int
	g, cg, og     int // groups, input and output channels per group
	s, pad, d     int // stride, padding, dilation
	ckk, ohw, chw int
}

func newConvGeom(x, w *tensor.Tensor, y tensor.Shape, p ops.Conv2DParams) convGeom {
	// Zero fields mean the defaults here too, as they do to the tape (Groups 0 divided by zero).
	p = p.Norm()
	var g convGeom
	g.n, g.c, g.h, g.w = x.Shape().NCHW()
	g.o, _, g.kh, g.kw = w.Shape().NCHW()
	g.oh, g.ow = y[2], y[3]
	g.s, g.pad, g.d = p.Stride, p.Pad, p.Dilation
	g.g, g.cg, g.og = p.Groups, g.c/p.Groups, g.o/p.Groups
	g.ckk, g.ohw, g.chw = g.cg*g.kh*g.kw, g.oh*g.ow, g.cg*g.h*g.w
	return g
}

// axis is one spatial axis: input size n, output size on, k taps.
type axis struct {
	n, on, k, s int
	r, q        []int // per tap: d·t − p = s·q + r
	res         []int // the residues some tap has, ascending
	ri          []int // per tap: index of r in res
	qlo, qhi    int
}

func newAxis(n, on, k, s, d, p int) axis {
	a := axis{n: n, on: on, k: k, s: s, r: make([]int, k), q: make([]int, k), ri: make([]int, k)}
	used := make([]bool, s)
	for t := 0; t < k; t++ {
		e := d*t - p
		a.r[t] = ((e % s) + s) % s
		a.q[t] = (e - a.r[t]) / s
		used[a.r[t]] = true
		if t == 0 || a.q[t] < a.qlo {
			a.qlo = a.q[t]
		}
		if t == 0 || a.q[t] > a.qhi {
			a.qhi = a.q[t]
		}
	}
	for r, u := range used {
		if u {
			a.res = append(a.res, r)
		}
	}
	for t := range a.ri {
		for i, r := range a.res {
			if r == a.r[t] {
				a.ri[t] = i
			}
		}
	}
	return a
}

// np is the length of a padded phase: rows qlo … on−1+qhi.
func (a axis) np() int { return a.on + a.qhi - a.qlo }

// count is the number of input indices in phase r.
func (a axis) count(r int) int {
	if r >= a.n {
		return 0
	}
	return (a.n - r + a.s - 1) / a.s
}

// convPlan is the per-call layout of a convolution's windows.
type convPlan struct {
	g    convGeom
	y, x axis
	// off[k] is where row k = (c, ky, kx) of the im2col matrix starts in the padded phases.
	off []int
	// direct: the input is its own padded phase (stride 1, no padding, kw = 1).
	direct bool
}

func newConvPlan(g convGeom) *convPlan {
	pl := &convPlan{g: g, y: newAxis(g.h, g.oh, g.kh, g.s, g.d, g.pad), x: newAxis(g.w, g.ow, g.kw, g.s, g.d, g.pad)}
	pl.direct = g.s == 1 && g.pad == 0 && g.kw == 1
	npy, npx := pl.y.np(), pl.x.np()
	nry, nrx := len(pl.y.res), len(pl.x.res)
	pl.off = make([]int, 0, g.ckk)
	for c := 0; c < g.cg; c++ {
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				phase := (c*nry+pl.y.ri[ky])*nrx + pl.x.ri[kx]
				pl.off = append(pl.off, phase*npy*npx+(pl.y.q[ky]-pl.y.qlo)*npx+pl.x.q[kx]-pl.x.qlo)
			}
		}
	}
	return pl
}

// cols is the number of grid columns: output rows times the padded phase width.
func (pl *convPlan) cols() int { return pl.g.oh * pl.x.np() }

// windows returns the im2col matrix of one group of one image (ckk rows of cols() columns) as
// shifted windows of its padded phases, built in s.xp unless the input serves as it is.
func (pl *convPlan) windows(s *convScratch, in []float32) rowPanel {
	g := pl.g
	in = in[:g.chw]
	if pl.direct {
		return rowPanel{d: in, off: pl.off, scale: 1}
	}
	npy, npx := pl.y.np(), pl.x.np()
	plane := npy * npx
	// A window starting qhi−qlo columns into a row runs that far past the last plane.
	slack := pl.x.qhi - pl.x.qlo
	nph := g.cg * len(pl.y.res) * len(pl.x.res)
	buf := s.grow(&s.xp, nph*plane+slack)
	clear(buf[nph*plane:])
	i := 0
	for c := 0; c < g.cg; c++ {
		for _, ry := range pl.y.res {
			for _, rx := range pl.x.res {
				fillPhase(buf[i*plane:(i+1)*plane], in[c*g.h*g.w:(c+1)*g.h*g.w], g.h, g.w, g.s, ry, rx, pl.y.qlo, pl.x.qlo, npx)
				i++
			}
		}
	}
	return rowPanel{d: buf, off: pl.off, scale: 1}
}

// fillPhase writes the padded phase (ry, rx) of an h×w plane: dst[t·npx+u] = src[s·(t+qy)+ry]
// [s·(u+qx)+rx], zero outside src.
func fillPhase(dst, src []float32, h, w, s, ry, rx, qy, qx, npx int) {
	for t := 0; t < len(dst)/npx; t++ {
		row := dst[t*npx : (t+1)*npx]
		iy := s*(t+qy) + ry
		if iy < 0 || iy >= h {
			clear(row)
			continue
		}
		in := src[iy*w : (iy+1)*w]
		if s == 1 {
			// Row u holds in[u+qx]: zeros, a copied run, zeros.
			lo := min(max(-qx, 0), npx)
			hi := max(min(w-qx, npx), lo)
			clear(row[:lo])
			copy(row[lo:hi], in[lo+qx:])
			clear(row[hi:])
			continue
		}
		// Row u holds in[s·u+b] for lo ≤ u < hi, zeros around.
		b := s*qx + rx
		lo := min(max(floorDiv(-b+s-1, s), 0), npx)
		hi := max(min(floorDiv(w-1-b, s)+1, npx), lo)
		clear(row[:lo])
		clear(row[hi:])
		if hi > lo {
			src := in[s*lo+b:]
			for i := range row[lo:hi] {
				row[lo+i] = src[s*i]
			}
		}
	}
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int) int {
	if a < 0 {
		return -((-a + b - 1) / b)
	}
	return a / b
}

// forward computes one group of one image: out (og channels, oh×ow) = W · im2col(in) + bias,
// finished by epi (its residual laid out as out).
func (pl *convPlan) forward(ks *kernelSet, workers int, s *convScratch, w *packedA, in, bias, out []float32, epi gemmEpilogue) {
	g := pl.g
	npx, cols := pl.x.np(), pl.cols()
	op := &gemmOp{m: g.og, n: cols, k: g.ckk, ap: w, b: pl.windows(s, in)}
	if npx == g.ow {
		// The grid is the output: the GEMM's epilogue finishes it.
		op.c, op.ldc, op.bias, op.epi = out[:g.og*g.ohw], g.ohw, bias, epi
		ks.run(op, workers)
		return
	}
	op.c, op.ldc = s.grow(&s.yp, g.og*cols), cols
	ks.run(op, workers)
	// Dropping the grid's extra columns is a pass anyway: the epilogue rides on it.
	for o := 0; o < g.og; o++ {
		var bv float32
		if bias != nil {
			bv = bias[o]
		}
		for y := 0; y < g.oh; y++ {
			src := op.c[o*cols+y*npx:][:g.ow]
			at := (o*g.oh + y) * g.ow
			dst := out[at:][:g.ow]
			for x, v := range src {
				dst[x] = v + bv
			}
			if epi.active() {
				epi.apply(out, g.ow, o*g.oh+y, 0, 1, g.ow)
			}
		}
	}
}

// gradWeight computes one group of one image's dW (og × ckk) = gy · im2col(in)ᵀ, adding to dw
// when acc is set.
func (pl *convPlan) gradWeight(ks *kernelSet, workers int, s *convScratch, in, gy []float32, dw []float32, acc bool) {
	g := pl.g
	npx, cols := pl.x.np(), pl.cols()
	b := pl.windows(s, in)
	a := gy[:g.og*g.ohw]
	if npx != g.ow {
		// Widen dY to the grid with zero columns, so the dropped columns contribute nothing.
		a = s.grow(&s.yp, g.og*cols)
		for o := 0; o < g.og; o++ {
			for y := 0; y < g.oh; y++ {
				row := a[o*cols+y*npx:][:npx]
				copy(row, gy[(o*g.oh+y)*g.ow:(o*g.oh+y+1)*g.ow])
				clear(row[g.ow:])
			}
		}
	}
	ks.run(&gemmOp{m: g.og, n: g.ckk, k: cols, a: colPanel{d: a, ld: cols, scale: 1},
		b: colPanel{d: b.d, off: b.off, scale: 1}, c: dw[:g.og*g.ckk], ldc: g.ckk, acc: acc}, workers)
}

// gradPlan is the input gradient's layout: dY zero-padded by padT, padB rows and padL, padR
// columns (to Hg×Wg), and one GEMM per phase of X.
type gradPlan struct {
	pl                     *convPlan
	padT, padB, padL, padR int
	hg, wg                 int
	phases                 []gradPhase
}

// gradPhase is phase (ry, rx) of X: rows ht×ut of it, computed on a grid ht×wg from the taps
// with those residues. off[k] starts row k = (o, ky, kx) of its B in the padded dY; w is its
// packed A per group (cg × og·|taps|).
type gradPhase struct {
	ry, rx, ht, ut int
	k              int
	off            []int
	w              []*packedA
}

func newGradPlan(ks *kernelSet, pl *convPlan, wd []float32) (*gradPlan, func()) {
	g := pl.g
	gp := &gradPlan{pl: pl}
	gp.padT, gp.padL = max(0, pl.y.qhi), max(0, pl.x.qhi)
	gp.padB = max(0, pl.y.count(0)-pl.y.qlo-g.oh)
	gp.padR = max(0, pl.x.count(0)-pl.x.qlo-g.ow)
	gp.hg, gp.wg = g.oh+gp.padT+gp.padB, g.ow+gp.padL+gp.padR
	kk := g.kh * g.kw
	var bufs []*[]float32
	for ry := 0; ry < g.s; ry++ {
		for rx := 0; rx < g.s; rx++ {
			ph := gradPhase{ry: ry, rx: rx, ht: pl.y.count(ry), ut: pl.x.count(rx)}
			var taps [][2]int
			for ky := 0; ky < g.kh; ky++ {
				for kx := 0; kx < g.kw; kx++ {
					if pl.y.r[ky] == ry && pl.x.r[kx] == rx {
						taps = append(taps, [2]int{ky, kx})
					}
				}
			}
			ph.k = g.og * len(taps)
			if ph.k > 0 && ph.ht > 0 && ph.ut > 0 {
				for o := 0; o < g.og; o++ {
					for _, t := range taps {
						ph.off = append(ph.off, o*gp.hg*gp.wg+(gp.padT-pl.y.q[t[0]])*gp.wg+gp.padL-pl.x.q[t[1]])
					}
				}
				// A[c][o·|taps|+i] = W[o][c][taps[i]], for each group.
				dense := getFloats(g.cg * ph.k)
				buf := getFloats(g.g * ks.packASize(g.cg, ph.k))
				bufs = append(bufs, dense, buf)
				size := ks.packASize(g.cg, ph.k)
				for gi := 0; gi < g.g; gi++ {
					a := *dense
					for c := 0; c < g.cg; c++ {
						for o := 0; o < g.og; o++ {
							for i, t := range taps {
								a[c*ph.k+o*len(taps)+i] = wd[((gi*g.og+o)*g.cg+c)*kk+t[0]*g.kw+t[1]]
							}
						}
					}
					ph.w = append(ph.w, ks.packA(colPanel{d: a, ld: ph.k, scale: 1}, g.cg, ph.k, (*buf)[gi*size:(gi+1)*size]))
				}
			}
			gp.phases = append(gp.phases, ph)
		}
	}
	return gp, func() {
		for _, b := range bufs {
			floatPool.Put(b)
		}
	}
}

// gradInput computes one group of one image's dX (cg channels, h×w) from its dY.
func (gp *gradPlan) gradInput(ks *kernelSet, workers int, s *convScratch, gi int, gy, gx []float32) {
	g := gp.pl.g
	gy, gx = gy[:g.og*g.ohw], gx[:g.chw]
	src := gy
	if gp.hg != g.oh || gp.wg != g.ow {
		// A window starting padL−qlo columns into a row runs that far past the last plane.
		slack := gp.padL - gp.pl.x.qlo
		src = s.grow(&s.yp, g.og*gp.hg*gp.wg+slack)
		clear(src[g.og*gp.hg*gp.wg:])
		for o := 0; o < g.og; o++ {
			plane := src[o*gp.hg*gp.wg : (o+1)*gp.hg*gp.wg]
			clear(plane[:gp.padT*gp.wg])
			clear(plane[(gp.padT+g.oh)*gp.wg:])
			for y := 0; y < g.oh; y++ {
				row := plane[(gp.padT+y)*gp.wg : (gp.padT+y+1)*gp.wg]
				clear(row[:gp.padL])
				copy(row[gp.padL:], gy[(o*g.oh+y)*g.ow:(o*g.oh+y+1)*g.ow])
				clear(row[gp.padL+g.ow:])
			}
		}
	}
	for _, ph := range gp.phases {
		if ph.ht == 0 || ph.ut == 0 {
			continue
		}
		if ph.k == 0 {
			// No tap reads this phase: its gradient is zero.
			for c := 0; c < g.cg; c++ {
				for t := 0; t < ph.ht; t++ {
					row := gx[(c*g.h+g.s*t+ph.ry)*g.w:][:g.w]
					for u := 0; u < ph.ut; u++ {
						row[g.s*u+ph.rx] = 0
					}
				}
			}
			continue
		}
		cols := ph.ht * gp.wg
		op := &gemmOp{m: g.cg, n: cols, k: ph.k, ap: ph.w[gi], b: rowPanel{d: src, off: ph.off, scale: 1}}
		if g.s == 1 && gp.wg == g.w {
			// One phase, and its grid is dX.
			op.c, op.ldc = gx, g.h*g.w
			ks.run(op, workers)
			continue
		}
		op.c, op.ldc = s.grow(&s.col, g.cg*cols), cols
		ks.run(op, workers)
		for c := 0; c < g.cg; c++ {
			for t := 0; t < ph.ht; t++ {
				grid := op.c[c*cols+t*gp.wg:][:ph.ut]
				row := gx[(c*g.h+g.s*t+ph.ry)*g.w:][:g.w]
				if g.s == 1 {
					copy(row, grid)
					continue
				}
				dst := row[ph.rx:]
				for u, v := range grid {
					dst[g.s*u] = v
				}
			}
		}
	}
}

// convScratch is one worker's buffers, pooled across calls.
type convScratch struct {
	xp, yp, col []float32
}

var convScratchPool = sync.Pool{New: func() any { return new(convScratch) }}

// grow returns (*buf)[:n], reallocating when it is too short; contents are unspecified.
func (s *convScratch) grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// floatPool holds buffers for per-call temporaries (packed weights, partial weight gradients).
var floatPool sync.Pool

// getFloats returns a pooled buffer of n values; contents are unspecified.
func getFloats(n int) *[]float32 {
	if p, ok := floatPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// forImages runs fn over all n images. Whole rounds of one image per worker run with each worker
// taking a contiguous run of images (part numbers the runs) and computing its GEMMs on one
// goroutine; the images left over (all of them when there are fewer than workers) then run
// as part 0, each GEMM split over all workers (gemmWorkers). So batch 1 and odd batches keep
// every worker busy too.
func (b *Backend) forImages(n int, fn func(part, lo, hi, gemmWorkers int, s *convScratch)) {
	run := func(part, lo, hi, gw int) {
		s := convScratchPool.Get().(*convScratch)
		fn(part, lo, hi, gw, s)
		convScratchPool.Put(s)
	}
	full := 0
	if b.workers > 1 {
		full = n / b.workers * b.workers
	}
	if full > 0 {
		var wg sync.WaitGroup
		for p := 0; p < b.workers; p++ {
			lo, hi := p*full/b.workers, (p+1)*full/b.workers
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(p, lo, hi, 1)
			}()
		}
		wg.Wait()
	}
	if full < n {
		run(0, full, n, b.workers)
	}
}

// Conv2D implements ops.Backend: per image and group, Y = W · im2col(X) + bias.
func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	return b.Conv2DAct(dst, x, w, bias, ops.ConvAct{}, p)
}

// Conv2DAct implements ops.Backend: Conv2D whose GEMM finishes each output tile, while it is in
// cache, with the residual and the ReLU.
func (b *Backend) Conv2DAct(dst, x, w, bias *tensor.Tensor, a ops.ConvAct, p ops.Conv2DParams) error {
	if !w.IsContiguous() {
		return b.withDenseWeight(w, func(wc *tensor.Tensor) error { return b.Conv2DAct(dst, x, wc, bias, a, p) })
	}
	vs, err := views(dst, x)
	if err != nil {
		return err
	}
	var rv view
	if a.Residual != nil {
		if !a.Residual.Shape().Equal(dst.Shape()) {
			return fmt.Errorf("conv2d: residual %v does not match the output %v", a.Residual.Shape(), dst.Shape())
		}
		if rv, err = viewOf(a.Residual); err != nil {
			return err
		}
	}
	wd, err := dense(w)
	if err != nil {
		return err
	}
	var bd []float32
	if bias != nil {
		if bd, err = dense(bias); err != nil {
			return err
		}
	}
	g := newConvGeom(x, w, dst.Shape(), p)
	if vs[0].inner != g.o*g.ohw {
		return fmt.Errorf("conv2d: destination %v does not match", dst.Shape())
	}
	ks := kernels
	pl := newConvPlan(g)
	wp, release := packWeights(ks, g, wd)
	defer release()
	b.forImages(g.n, func(_, lo, hi, gw int, s *convScratch) {
		for n := lo; n < hi; n++ {
			xn, yn := vs[1].item(n), vs[0].item(n)
			for gi := 0; gi < g.g; gi++ {
				var bg []float32
				if bd != nil {
					bg = bd[gi*g.og : (gi+1)*g.og]
				}
				epi := gemmEpilogue{relu: a.ReLU}
				if a.Residual != nil {
					epi.res = rv.item(n)[gi*g.og*g.ohw : (gi+1)*g.og*g.ohw]
				}
				pl.forward(ks, gw, s, wp[gi], xn[gi*g.chw:(gi+1)*g.chw], bg, yn[gi*g.og*g.ohw:(gi+1)*g.og*g.ohw], epi)
			}
		}
	})
	return nil
}

// packWeights packs each group's og×ckk weight matrix once for all images; release returns
// the buffer to the pool.
func packWeights(ks *kernelSet, g convGeom, wd []float32) ([]*packedA, func()) {
	size := ks.packASize(g.og, g.ckk)
	buf := getFloats(g.g * size)
	out := make([]*packedA, g.g)
	for gi := range out {
		a := colPanel{d: wd[gi*g.og*g.ckk : (gi+1)*g.og*g.ckk], ld: g.ckk, scale: 1}
		out[gi] = ks.packA(a, g.og, g.ckk, (*buf)[gi*size:(gi+1)*size])
	}
	return out, func() { floatPool.Put(buf) }
}

// Conv2DGradInput implements ops.Backend: per image, group and phase of X, a GEMM of the
// phase's taps of W with shifted windows of dY.
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	if !w.IsContiguous() {
		return b.withDenseWeight(w, func(wc *tensor.Tensor) error { return b.Conv2DGradInput(dst, gy, wc, p) })
	}
	vs, err := views(dst, gy)
	if err != nil {
		return err
	}
	wd, err := dense(w)
	if err != nil {
		return err
	}
	g := newConvGeom(dst, w, gy.Shape(), p)
	ks := kernels
	if g.cg < colGradMaxC && g.kh*g.kw > 1 {
		b.gradInputCol2Im(ks, g, vs, wd)
		return nil
	}
	gp, release := newGradPlan(ks, newConvPlan(g), wd)
	defer release()
	b.forImages(g.n, func(_, lo, hi, gw int, s *convScratch) {
		for n := lo; n < hi; n++ {
			xn, yn := vs[0].item(n), vs[1].item(n)
			for gi := 0; gi < g.g; gi++ {
				gp.gradInput(ks, gw, s, gi, yn[gi*g.og*g.ohw:(gi+1)*g.og*g.ohw], xn[gi*g.chw:(gi+1)*g.chw])
			}
		}
	})
	return nil
}

// Conv2DGradInputAdd implements ops.Backend: the input gradient into scratch, then added to dst
// as a separate Add would.
func (b *Backend) Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	tmp, err := b.Alloc(dst.Shape())
	if err != nil {
		return err
	}
	defer b.Release(tmp.Storage())
	if err := b.Conv2DGradInput(tmp, gy, w, p); err != nil {
		return err
	}
	return b.Binary(ops.Add, dst, dst, tmp)
}

// Below this many input channels per group the phase GEMMs of the input gradient have too few
// rows (M = cg) to repay packing dY's windows, og·kh·kw values per pixel: the stem's 3-channel
// 7×7 conv took 560 ms that way. Such convs compute col = Wᵀ·dY (M = cg·kh·kw, B = dY itself)
// and add col into dX. A variable so that tests can force either path.
var colGradMaxC = 16

// gradInputCol2Im is the input gradient as col2im(Wᵀ·dY), per image and group.
func (b *Backend) gradInputCol2Im(ks *kernelSet, g convGeom, vs []view, wd []float32) {
	size := ks.packASize(g.ckk, g.og)
	buf := getFloats(g.g * size)
	defer floatPool.Put(buf)
	wt := make([]*packedA, g.g)
	for gi := range wt {
		// op(A) = Wᵀ (ckk × og), so op(A)ᵀ is W's rows.
		a := rowPanel{d: wd[gi*g.og*g.ckk : (gi+1)*g.og*g.ckk], ld: g.ckk, scale: 1}
		wt[gi] = ks.packA(a, g.ckk, g.og, (*buf)[gi*size:(gi+1)*size])
	}
	b.forImages(g.n, func(_, lo, hi, gw int, s *convScratch) {
		for n := lo; n < hi; n++ {
			xn, yn := vs[0].item(n), vs[1].item(n)
			for gi := 0; gi < g.g; gi++ {
				col := s.grow(&s.col, g.ckk*g.ohw)
				ks.run(&gemmOp{m: g.ckk, n: g.ohw, k: g.og, ap: wt[gi],
					b: rowPanel{d: yn[gi*g.og*g.ohw : (gi+1)*g.og*g.ohw], ld: g.ohw, scale: 1}, c: col, ldc: g.ohw}, gw)
				xg := xn[gi*g.chw : (gi+1)*g.chw]
				clear(xg)
				g.col2im(xg, col)
			}
		}
	})
}

// col2im adds the column matrix [cg·kh·kw × oh·ow] into one group of one image's input
// gradient: the adjoint of im2col.
func (g convGeom) col2im(x, col []float32) {
	for ci := 0; ci < g.cg; ci++ {
		plane := x[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((ci*g.kh+ky)*g.kw+kx)*g.ohw:][:g.ohw]
				// Output column ox reads input column s·ox + b, inside the image for lo ≤ ox < hi.
				b := kx*g.d - g.pad
				lo := min(max(floorDiv(-b+g.s-1, g.s), 0), g.ow)
				hi := max(min(floorDiv(g.w-1-b, g.s)+1, g.ow), lo)
				if hi == lo {
					continue
				}
				for oy := 0; oy < g.oh; oy++ {
					iy := oy*g.s - g.pad + ky*g.d
					if iy < 0 || iy >= g.h {
						continue
					}
					dst := plane[iy*g.w+g.s*lo+b:]
					for i, v := range row[oy*g.ow+lo : oy*g.ow+hi] {
						dst[g.s*i] += v
					}
				}
			}
		}
	}
}

// Conv2DGradWeight implements ops.Backend: dW = Σ_images dY · im2col(X)ᵀ per group.
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
	if !dst.IsContiguous() {
		// A slice of a larger weight's gradient: compute densely, then copy in.
		tmp, err := b.Alloc(dst.Shape())
		if err != nil {
			return err
		}
		defer b.Release(tmp.Storage())
		if err := b.Conv2DGradWeight(tmp, x, gy, p); err != nil {
			return err
		}
		return b.Copy(dst, tmp)
	}
	vs, err := views(x, gy)
	if err != nil {
		return err
	}
	wd, err := dense(dst)
	if err != nil {
		return err
	}
	g := newConvGeom(x, dst, gy.Shape(), p)
	ks := kernels
	pl := newConvPlan(g)
	// Part 0 sums straight into dW, the others into their own buffers, added at the end. A
	// part's first image overwrites its sum; a part only ever runs on one goroutine at a time.
	partials := make([]*[]float32, b.workers)
	started := make([]bool, b.workers)
	b.forImages(g.n, func(part, lo, hi, gw int, s *convScratch) {
		out := wd
		if part > 0 {
			partials[part] = getFloats(len(wd))
			out = *partials[part]
		}
		for n := lo; n < hi; n++ {
			xn, yn := vs[0].item(n), vs[1].item(n)
			for gi := 0; gi < g.g; gi++ {
				pl.gradWeight(ks, gw, s, xn[gi*g.chw:(gi+1)*g.chw], yn[gi*g.og*g.ohw:(gi+1)*g.og*g.ohw],
					out[gi*g.og*g.ckk:(gi+1)*g.og*g.ckk], started[part])
			}
			started[part] = true
		}
	})
	for _, p := range partials[1:] {
		if p == nil {
			continue
		}
		for i, v := range *p {
			wd[i] += v
		}
		floatPool.Put(p)
	}
	return nil
}

// withDenseWeight runs f on a dense copy of a weight that is a slice of a larger one (CHNet's
// factorized head reads column blocks of its classifier's weight).
func (b *Backend) withDenseWeight(w *tensor.Tensor, f func(*tensor.Tensor) error) error {
	wc, err := b.Alloc(w.Shape())
	if err != nil {
		return err
	}
	defer b.Release(wc.Storage())
	if err := b.Copy(wc, w); err != nil {
		return err
	}
	return f(wc)
}

// Conv2DGradWeightSum implements ops.Backend: the sum, then Conv2DGradWeight.
func (b *Backend) Conv2DGradWeightSum(dst, x, x2, gy *tensor.Tensor, p ops.Conv2DParams) error {
	sum, release, err := b.sumInput(x, x2)
	if err != nil {
		return err
	}
	defer release()
	return b.Conv2DGradWeight(dst, sum, gy, p)
}

// sumInput returns x + x2 in a temporary tensor, and its release.
func (b *Backend) sumInput(x, x2 *tensor.Tensor) (*tensor.Tensor, func(), error) {
	sum, err := b.Alloc(x.Shape())
	if err != nil {
		return nil, nil, err
	}
	release := func() { b.Release(sum.Storage()) }
	if err := b.Binary(ops.Add, sum, x, x2); err != nil {
		release()
		return nil, nil, fmt.Errorf("conv2d input sum: %w", err)
	}
	return sum, release, nil
}
