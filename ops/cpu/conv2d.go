package cpu

import (
	"fmt"
	"sync"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Convolution runs as GEMM, one image and group at a time:
//
//   - Stride 1 (every 1×1 and most 3×3 convs in CHNet): the input is zero-padded once, and
//     output pixel (oy, ox) is computed at column oy·Wp+ox of a grid as wide as the padded
//     image (Wp), so that row (c, ky, kx) of the im2col matrix is the padded image shifted by
//     c·Hp·Wp + ky·d·Wp + kx·d: packing B is then a plain copy of contiguous runs. The Wp−OW
//     extra columns per row are computed and dropped. For a 1×1 conv without padding the input
//     itself is B and the output is C: a plain GEMM.
//   - The input gradient of a stride-1 conv is the stride-1 conv of the output gradient with the
//     kernel flipped and its channel axes swapped (pad d·(k−1)−p), so it takes the same path.
//   - The weight gradient is dW = dY·im2col(X)ᵀ: with the same shifted rows (and dY widened to
//     Wp with zeros) both operands are contiguous along the sum over pixels, and packing them
//     transposes 8×8 blocks.
//   - Other strides pack B straight from the image (im2colPanel), compute the input gradient as
//     col2im(Wᵀ·dY), and the weight gradient from an explicit im2col.
//
// With at least as many images as workers, each worker takes a run of images and computes them
// on one goroutine (weight gradients into private partial sums); a single image instead splits
// every GEMM over all workers.

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
	var g convGeom
	g.n, g.c, g.h, g.w = x.Shape().NCHW()
	g.o, _, g.kh, g.kw = w.Shape().NCHW()
	g.oh, g.ow = y[2], y[3]
	g.s, g.pad, g.d = p.Stride, p.Pad, p.Dilation
	g.g, g.cg, g.og = p.Groups, g.c/p.Groups, g.o/p.Groups
	g.ckk, g.ohw, g.chw = g.cg*g.kh*g.kw, g.oh*g.ow, g.cg*g.h*g.w
	return g
}

// shift describes a stride-1 convolution of a cin×h×w input with a kh×kw kernel of dilation d
// and padding ph, pw, computed on the padded-width grid (see the comment at the top).
type shift struct {
	cin, h, w, kh, kw, d, ph, pw int
}

func (sh shift) hp() int { return sh.h + 2*sh.ph }
func (sh shift) wp() int { return sh.w + 2*sh.pw }
func (sh shift) oh() int { return sh.hp() - sh.d*(sh.kh-1) }
func (sh shift) ow() int { return sh.wp() - sh.d*(sh.kw-1) }

// cols is the number of grid columns: output rows times the padded width.
func (sh shift) cols() int { return sh.oh() * sh.wp() }

// inPlace reports whether the input can be read as it is: no padding, and windows that end
// inside it (true for kw = 1).
func (sh shift) inPlace() bool { return sh.ph == 0 && sh.pw == 0 && sh.kw == 1 }

// panel returns the im2col matrix of in (cin·kh·kw rows of cols() columns) as shifted windows,
// padding in into s.xp first unless it can be read in place.
func (sh shift) panel(s *convScratch, in []float32) rowPanel {
	hp, wp := sh.hp(), sh.wp()
	src := in[:sh.cin*sh.h*sh.w]
	if !sh.inPlace() {
		// The last window of a row reaches (kw−1)·d values past the padded image.
		src = s.grow(&s.xp, sh.cin*hp*wp+(sh.kw-1)*sh.d)
		clear(src[sh.cin*hp*wp:])
		for c := 0; c < sh.cin; c++ {
			dst := src[c*hp*wp : (c+1)*hp*wp]
			clear(dst[:sh.ph*wp])
			clear(dst[(sh.ph+sh.h)*wp:])
			for y := 0; y < sh.h; y++ {
				row := dst[(sh.ph+y)*wp : (sh.ph+y+1)*wp]
				clear(row[:sh.pw])
				copy(row[sh.pw:], in[(c*sh.h+y)*sh.w:(c*sh.h+y+1)*sh.w])
				clear(row[sh.pw+sh.w:])
			}
		}
	}
	off := s.growInts(sh.cin * sh.kh * sh.kw)
	k := 0
	for c := 0; c < sh.cin; c++ {
		for ky := 0; ky < sh.kh; ky++ {
			for kx := 0; kx < sh.kw; kx++ {
				off[k] = c*hp*wp + ky*sh.d*wp + kx*sh.d
				k++
			}
		}
	}
	return rowPanel{d: src, off: off, scale: 1}
}

// forward computes out (cout channels, oh×ow) = W · im2col(in) + bias, where w is the packed
// cout × cin·kh·kw weight matrix.
func (sh shift) forward(ks *kernelSet, workers int, s *convScratch, w *packedA, in []float32, cout int, bias, out []float32) {
	oh, ow, wp := sh.oh(), sh.ow(), sh.wp()
	k := sh.cin * sh.kh * sh.kw
	op := &gemmOp{m: cout, n: sh.cols(), k: k, ap: w, b: sh.panel(s, in)}
	if wp == ow {
		// kw = 1: the grid is the output.
		op.c, op.ldc, op.bias = out[:cout*oh*ow], oh*ow, bias
		ks.run(op, workers)
		return
	}
	op.c, op.ldc = s.grow(&s.yp, cout*sh.cols()), sh.cols()
	ks.run(op, workers)
	for o := 0; o < cout; o++ {
		var bv float32
		if bias != nil {
			bv = bias[o]
		}
		for y := 0; y < oh; y++ {
			src := op.c[o*sh.cols()+y*wp:][:ow]
			dst := out[(o*oh+y)*ow:][:ow]
			for x, v := range src {
				dst[x] = v + bv
			}
		}
	}
}

// gradWeight computes dw (cout × cin·kh·kw) = gy · im2col(in)ᵀ, adding to dw when acc is set.
func (sh shift) gradWeight(ks *kernelSet, workers int, s *convScratch, in, gy []float32, cout int, dw []float32, acc bool) {
	oh, ow, wp := sh.oh(), sh.ow(), sh.wp()
	b := sh.panel(s, in)
	g := gy[:cout*oh*ow]
	if wp != ow {
		// Widen dY to the grid with zero columns, so the dropped columns contribute nothing.
		g = s.grow(&s.yp, cout*sh.cols())
		for o := 0; o < cout; o++ {
			for y := 0; y < oh; y++ {
				row := g[o*sh.cols()+y*wp:][:wp]
				copy(row, gy[(o*oh+y)*ow:(o*oh+y+1)*ow])
				clear(row[ow:])
			}
		}
	}
	k := sh.cin * sh.kh * sh.kw
	ks.run(&gemmOp{m: cout, n: k, k: sh.cols(), a: colPanel{d: g, ld: sh.cols(), scale: 1},
		b: colPanel{d: b.d, off: b.off, scale: 1}, c: dw[:cout*k], ldc: k, acc: acc}, workers)
}

// stride1 returns the forward's shift geometry when the conv has stride 1.
func (g convGeom) stride1() (shift, bool) {
	return shift{cin: g.cg, h: g.h, w: g.w, kh: g.kh, kw: g.kw, d: g.d, ph: g.pad, pw: g.pad}, g.s == 1
}

// transposed returns the shift geometry of the input gradient as a forward conv of dY, when the
// conv has stride 1 and its padding is at most d·(k−1).
func (g convGeom) transposed() (shift, bool) {
	sh := shift{cin: g.og, h: g.oh, w: g.ow, kh: g.kh, kw: g.kw, d: g.d, ph: g.d*(g.kh-1) - g.pad, pw: g.d*(g.kw-1) - g.pad}
	return sh, g.s == 1 && sh.ph >= 0 && sh.pw >= 0
}

// im2colPanel is the im2col matrix of one group of one image (cg·kh·kw rows, oh·ow columns),
// packed straight from the image for convs that the shift path does not cover.
type im2colPanel struct {
	g *convGeom
	x []float32
}

func (p im2colPanel) pack(_ *kernelSet, dst []float32, k0, kc, x0, nx, w int) {
	g := p.g
	kk2 := g.kh * g.kw
	for sl := 0; sl*w < nx; sl++ {
		cnt := min(w, nx-sl*w)
		out := dst[sl*kc*w : (sl+1)*kc*w]
		oy0, ox0 := (x0+sl*w)/g.ow, (x0+sl*w)%g.ow
		for kk := 0; kk < kc; kk++ {
			k := k0 + kk
			ci, ky, kx := k/kk2, k%kk2/g.kw, k%g.kw
			plane := p.x[ci*g.h*g.w : (ci+1)*g.h*g.w]
			row := out[kk*w : (kk+1)*w]
			oy, ox := oy0, ox0
			for j := 0; j < cnt; {
				seg := row[j : j+min(cnt-j, g.ow-ox)]
				iy := oy*g.s - g.pad + ky*g.d
				if iy < 0 || iy >= g.h {
					clear(seg)
				} else {
					src := plane[iy*g.w : (iy+1)*g.w]
					ix := ox*g.s - g.pad + kx*g.d
					for q := range seg {
						if uint(ix) < uint(g.w) {
							seg[q] = src[ix]
						} else {
							seg[q] = 0
						}
						ix += g.s
					}
				}
				j += len(seg)
				oy, ox = oy+1, 0
			}
			clear(row[cnt:])
		}
	}
}

// im2col writes the column matrix [cg·kh·kw × oh·ow] of one group of one image.
func (g convGeom) im2col(col, x []float32) {
	im2colPanel{g: &g, x: x}.rows(col)
}

// rows writes the whole matrix row by row (the packing loop with one sliver as wide as a row).
func (p im2colPanel) rows(col []float32) {
	g := p.g
	for k := 0; k < g.ckk; k++ {
		p.pack(nil, col[k*g.ohw:(k+1)*g.ohw], k, 1, 0, g.ohw, g.ohw)
	}
}

// col2im adds a column matrix back into one group of one image's input gradient (which the
// caller zeroed): the adjoint of im2col.
func (g convGeom) col2im(x, col []float32) {
	s, pad, d := g.s, g.pad, g.d
	for ci := 0; ci < g.cg; ci++ {
		plane := x[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((ci*g.kh+ky)*g.kw+kx)*g.ohw:][:g.ohw]
				for oy := 0; oy < g.oh; oy++ {
					iy := oy*s - pad + ky*d
					if iy < 0 || iy >= g.h {
						continue
					}
					dst := plane[iy*g.w : (iy+1)*g.w]
					src := row[oy*g.ow : (oy+1)*g.ow]
					ix := kx*d - pad
					for ox := range src {
						if ix >= 0 && ix < g.w {
							dst[ix] += src[ox]
						}
						ix += s
					}
				}
			}
		}
	}
}

// convScratch is one worker's buffers, pooled across calls.
type convScratch struct {
	xp, yp, col, part []float32
	off               []int
}

var convScratchPool = sync.Pool{New: func() any { return new(convScratch) }}

// grow returns (*buf)[:n], reallocating when it is too short; contents are unspecified.
func (s *convScratch) grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

func (s *convScratch) growInts(n int) []int {
	if cap(s.off) < n {
		s.off = make([]int, n)
	}
	return s.off[:n]
}

// floatPool holds buffers for per-call temporaries (flipped kernels, partial weight gradients).
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

// imageParts is the number of goroutines forImages splits n images over.
func (b *Backend) imageParts(n int) int {
	if b.workers > 1 && n >= b.workers {
		return b.workers
	}
	return 1
}

// forImages runs fn over all n images. With at least as many images as workers, fn gets
// contiguous runs on separate goroutines (part numbers them) and must run its GEMMs on one
// goroutine; otherwise one call covers every image and gemmWorkers is all the workers.
func (b *Backend) forImages(n int, fn func(part, lo, hi, gemmWorkers int, s *convScratch)) {
	parts := b.imageParts(n)
	run := func(part, lo, hi, gw int) {
		s := convScratchPool.Get().(*convScratch)
		fn(part, lo, hi, gw, s)
		convScratchPool.Put(s)
	}
	if parts == 1 {
		run(0, 0, n, b.workers)
		return
	}
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(p, lo, hi, 1)
		}()
	}
	wg.Wait()
}

// Conv2D implements ops.Backend: per image and group, Y = W · im2col(X) + bias.
func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	vs, err := views(dst, x)
	if err != nil {
		return err
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
	sh, stride1 := g.stride1()
	wp, release := packWeights(ks, g.g, func(gi int) panel {
		return colPanel{d: wd[gi*g.og*g.ckk : (gi+1)*g.og*g.ckk], ld: g.ckk, scale: 1}
	}, g.og, g.ckk)
	defer release()
	b.forImages(g.n, func(_, lo, hi, gw int, s *convScratch) {
		for n := lo; n < hi; n++ {
			xn, yn := vs[1].item(n), vs[0].item(n)
			for gi := 0; gi < g.g; gi++ {
				xg := xn[gi*g.chw : (gi+1)*g.chw]
				yg := yn[gi*g.og*g.ohw : (gi+1)*g.og*g.ohw]
				var bg []float32
				if bd != nil {
					bg = bd[gi*g.og : (gi+1)*g.og]
				}
				if stride1 {
					sh.forward(ks, gw, s, wp[gi], xg, g.og, bg, yg)
					continue
				}
				ks.run(&gemmOp{m: g.og, n: g.ohw, k: g.ckk, ap: wp[gi], b: im2colPanel{g: &g, x: xg}, c: yg, ldc: g.ohw, bias: bg}, gw)
			}
		}
	})
	return nil
}

// packWeights packs each group's m×k weight matrix (as returned by a) once for all images;
// release returns the buffer to the pool.
func packWeights(ks *kernelSet, groups int, a func(gi int) panel, m, k int) ([]*packedA, func()) {
	size := ks.packASize(m, k)
	buf := getFloats(groups * size)
	out := make([]*packedA, groups)
	for gi := range out {
		out[gi] = ks.packA(a(gi), m, k, (*buf)[gi*size:(gi+1)*size])
	}
	return out, func() { floatPool.Put(buf) }
}

// Conv2DGradInput implements ops.Backend: per image and group, dX = col2im(Wᵀ · dY), computed
// for stride 1 as a conv of dY with the flipped, transposed kernel.
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
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
	sh, flip := g.transposed()
	var wt []float32
	if flip {
		// wt[group][c][o·kh·kw + (kh−1−ky)·kw + (kw−1−kx)] = W[group·og + o][c][ky][kx]
		buf := getFloats(len(wd))
		defer floatPool.Put(buf)
		wt = *buf
		kk := g.kh * g.kw
		for gi := 0; gi < g.g; gi++ {
			for o := 0; o < g.og; o++ {
				for c := 0; c < g.cg; c++ {
					src := wd[((gi*g.og+o)*g.cg+c)*kk:][:kk]
					d := wt[(gi*g.cg+c)*g.og*kk+o*kk:][:kk]
					for i, v := range src {
						d[kk-1-i] = v
					}
				}
			}
		}
	}
	var wp []*packedA
	if flip {
		kk := g.og * g.kh * g.kw
		var release func()
		wp, release = packWeights(ks, g.g, func(gi int) panel {
			return colPanel{d: wt[gi*g.cg*kk : (gi+1)*g.cg*kk], ld: kk, scale: 1}
		}, g.cg, kk)
		defer release()
	} else {
		var release func()
		wp, release = packWeights(ks, g.g, func(gi int) panel {
			return rowPanel{d: wd[gi*g.og*g.ckk : (gi+1)*g.og*g.ckk], ld: g.ckk, scale: 1}
		}, g.ckk, g.og)
		defer release()
	}
	b.forImages(g.n, func(_, lo, hi, gw int, s *convScratch) {
		for n := lo; n < hi; n++ {
			xn, yn := vs[0].item(n), vs[1].item(n)
			for gi := 0; gi < g.g; gi++ {
				xg := xn[gi*g.chw : (gi+1)*g.chw]
				yg := yn[gi*g.og*g.ohw : (gi+1)*g.og*g.ohw]
				if flip {
					sh.forward(ks, gw, s, wp[gi], yg, g.cg, nil, xg)
					continue
				}
				col := s.grow(&s.col, g.ckk*g.ohw)
				ks.run(&gemmOp{m: g.ckk, n: g.ohw, k: g.og, ap: wp[gi], b: rowPanel{d: yg, ld: g.ohw, scale: 1}, c: col, ldc: g.ohw}, gw)
				clear(xg)
				g.col2im(xg, col)
			}
		}
	})
	return nil
}

// Conv2DGradWeight implements ops.Backend: dW = Σ_images dY · im2col(X)ᵀ per group.
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
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
	sh, stride1 := g.stride1()
	parts := b.imageParts(g.n)
	// Part 0 sums straight into dW, the others into their own buffers, added at the end.
	partials := make([]*[]float32, parts)
	for i := 1; i < parts; i++ {
		partials[i] = getFloats(len(wd))
	}
	b.forImages(g.n, func(part, lo, hi, gw int, s *convScratch) {
		out := wd
		if part > 0 {
			out = *partials[part]
		}
		for n := lo; n < hi; n++ {
			xn, yn := vs[0].item(n), vs[1].item(n)
			for gi := 0; gi < g.g; gi++ {
				xg := xn[gi*g.chw : (gi+1)*g.chw]
				yg := yn[gi*g.og*g.ohw : (gi+1)*g.og*g.ohw]
				dw := out[gi*g.og*g.ckk : (gi+1)*g.og*g.ckk]
				if stride1 {
					sh.gradWeight(ks, gw, s, xg, yg, g.og, dw, n > lo)
					continue
				}
				col := s.grow(&s.col, g.ckk*g.ohw)
				g.im2col(col, xg)
				ks.run(&gemmOp{m: g.og, n: g.ckk, k: g.ohw, a: colPanel{d: yg, ld: g.ohw, scale: 1},
					b: colPanel{d: col, ld: g.ohw, scale: 1}, c: dw, ldc: g.ckk, acc: n > lo}, gw)
			}
		}
	})
	for _, p := range partials[1:] {
		for i, v := range *p {
			wd[i] += v
		}
		floatPool.Put(p)
	}
	return nil
}
