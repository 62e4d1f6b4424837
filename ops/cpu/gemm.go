package cpu

import (
	"sync"
)

// Blocking after BLIS (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly Instantiating
// BLAS Functionality"): a kc×nr sliver of packed B stays in L1 while the micro-kernel walks the
// mr-row slivers of an mc×kc packed block of A held in L2; a kc×nc block of packed B is reused
// across all of A. kc=256 keeps the AVX-512 kernel's 32 KiB B sliver inside Zen 5's 48 KiB L1.
// On CHNet's layer2 3×3 conv, nc from 512 to 2048 and kc 128 or 256 all ran within 5% of each
// other (best of six, one core); nc=1024 keeps a goroutine's packed B at 1 MiB.
const (
	gemmKC = 256
	gemmMC = 256  // a multiple of every kernel's mr
	gemmNC = 1024 // a multiple of every kernel's nr
)

// Problems below this many multiply-adds run on one goroutine: a spawn costs more than it saves.
const gemmParallelMin = 1 << 18

// kernelSet is one instruction set's micro-kernels. Each file that provides one (gemm_generic.go,
// gemm_simd_amd64.go) states its reference loop in the doc comment of its functions.
type kernelSet struct {
	name   string
	mr, nr int
	// tile computes one mr×nr block of C from a packed kc×mr sliver of A and kc×nr sliver of B:
	// C[i][j] = Σ_p a[p·mr+i]·b[p·nr+j], plus the old C[i][j] when acc is set, plus bias[i] when
	// bias is not nil. Row i of C starts at c[i·ldc].
	tile func(kc int, a, b, c []float32, ldc int, acc bool, bias []float32)
	// rows copies kc rows of nr values into a packed sliver: dst[kk·nr+j] = d[start(k0+kk)+x+j],
	// where start(k) is off[k], or k·ld when off is nil. It packs panels whose rows are contiguous.
	rows func(dst, d []float32, off []int, ld, k0, kc, x int)
	// t8 transposes an 8×8 block: row r of dst (at dst[r·ldd]) gets element r of the eight
	// columns src[off[c]:], c = 0…7. It packs panels whose columns are contiguous.
	t8 func(dst []float32, ldd int, src []float32, off *[8]int)
	// t4 transposes a 4×8 block into 8 rows of 4: dst[4r+c] = src[off[c]+r], r < 8, c < 4.
	// It packs A slivers (mr = 4) from columns that are contiguous.
	t4 func(dst []float32, src []float32, off *[4]int)
	// fin applies a convolution's epilogue (gemmEpilogue) to one whole mr×nr tile of C just
	// stored: c[i·ldc+j] += res[i·ldc+j] when res is not nil, then max(·, 0) with relu. Nil:
	// the portable loop.
	fin func(c, res []float32, ldc int, relu bool)

	scratch sync.Pool // *gemmScratch sized for this set's mr and nr
}

// gemmScratch is one goroutine's packing buffers; pooled so that a training step's thousands of
// GEMMs do not allocate.
type gemmScratch struct {
	a, b, t []float32
}

func (ks *kernelSet) getScratch() *gemmScratch {
	if s, ok := ks.scratch.Get().(*gemmScratch); ok {
		return s
	}
	return &gemmScratch{
		a: make([]float32, gemmMC*gemmKC),
		b: make([]float32, gemmKC*gemmNC),
		t: make([]float32, ks.mr*ks.nr),
	}
}

// panel is a k×x matrix that the packed GEMM reads by packing blocks of it: op(B) is a k×n
// panel and op(A)ᵀ a k×m one. pack copies rows [k0,k0+kc) of columns [x0,x0+nx) into dst as
// ⌈nx/w⌉ slivers of kc×w values, each row-major, with columns at or past nx set to zero; ks is
// the kernel set whose helpers it may use.
type panel interface {
	pack(ks *kernelSet, dst []float32, k0, kc, x0, nx, w int)
}

// rowPanel stores rows contiguously: element (k, x) is scale·d[start(k)+x], where start(k) is
// off[k] when off is set and k·ld otherwise. Per-row offsets let a stride-1 convolution's
// im2col matrix be shifted windows of one padded image (conv2d.go).
type rowPanel struct {
	d     []float32
	ld    int
	off   []int
	scale float32
}

func (p rowPanel) start(k int) int {
	if p.off != nil {
		return p.off[k]
	}
	return k * p.ld
}

// row returns n elements of row k from column x0 on.
func (p rowPanel) row(k, x0, n int) []float32 {
	s := p.start(k) + x0
	return p.d[s : s+n]
}

func (p rowPanel) pack(ks *kernelSet, dst []float32, k0, kc, x0, nx, w int) {
	for s := 0; s*w < nx; s++ {
		cnt := min(w, nx-s*w)
		out := dst[s*kc*w : (s+1)*kc*w]
		if cnt == w && w == ks.nr && p.scale == 1 {
			ks.rows(out, p.d, p.off, p.ld, k0, kc, x0+s*w)
			continue
		}
		for kk := 0; kk < kc; kk++ {
			row := out[kk*w : (kk+1)*w]
			src := p.row(k0+kk, x0+s*w, cnt)
			if p.scale == 1 {
				copy(row, src)
			} else {
				for j, v := range src {
					row[j] = p.scale * v
				}
			}
			clear(row[cnt:])
		}
	}
}

// colPanel stores columns contiguously: element (k, x) is scale·d[start(x)+k], where start(x)
// is off[x] when off is set and x·ld otherwise. It is a transposed operand (op(A) without
// transposition, op(B) with it), and with offsets the transposed im2col matrix of a stride-1
// convolution, whose weight gradient reads it.
type colPanel struct {
	d     []float32
	ld    int
	off   []int
	scale float32
}

func (p colPanel) start(x int) int {
	if p.off != nil {
		return p.off[x]
	}
	return x * p.ld
}

// pack transposes 8×8 blocks with the kernel set's t8 where it can (scale 1, full blocks) and
// copies element by element elsewhere.
func (p colPanel) pack(ks *kernelSet, dst []float32, k0, kc, x0, nx, w int) {
	var offs [8]int
	for s := 0; s*w < nx; s++ {
		cnt := min(w, nx-s*w)
		out := dst[s*kc*w : (s+1)*kc*w]
		j := 0
		if p.scale == 1 && w == 4 && cnt == 4 {
			var offs [4]int
			for c := range offs {
				offs[c] = p.start(x0+s*w+c) + k0
			}
			kk := 0
			for ; kk+8 <= kc; kk += 8 {
				ks.t4(out[kk*4:], p.d, &offs)
				for c := range offs {
					offs[c] += 8
				}
			}
			for c := range 4 {
				for r, v := range p.d[offs[c] : offs[c]+kc-kk] {
					out[(kk+r)*4+c] = v
				}
			}
			continue
		}
		if p.scale == 1 && w%8 == 0 {
			for ; j+8 <= cnt; j += 8 {
				for c := range offs {
					offs[c] = p.start(x0+s*w+j+c) + k0
				}
				kk := 0
				for ; kk+8 <= kc; kk += 8 {
					ks.t8(out[kk*w+j:], w, p.d, &offs)
					for c := range offs {
						offs[c] += 8
					}
				}
				for c := range 8 {
					for r, v := range p.d[offs[c] : offs[c]+kc-kk] {
						out[(kk+r)*w+j+c] = v
					}
				}
			}
		}
		for ; j < cnt; j++ {
			src := p.d[p.start(x0+s*w+j)+k0:][:kc]
			if p.scale == 1 {
				for kk, v := range src {
					out[kk*w+j] = v
				}
			} else {
				for kk, v := range src {
					out[kk*w+j] = p.scale * v
				}
			}
		}
		if cnt < w {
			for kk := 0; kk < kc; kk++ {
				clear(out[kk*w+cnt : (kk+1)*w])
			}
		}
	}
}

// gemmOp is C = op(A)·op(B) (+ C when acc) (+ bias[i] on row i), for the packed engine, then
// the epilogue epi.
type gemmOp struct {
	m, n, k int
	a, b    panel    // op(A)ᵀ as k×m, op(B) as k×n
	ap      *packedA // a packed in advance, or nil
	c       []float32
	ldc     int
	acc     bool
	bias    []float32
	epi     gemmEpilogue
}

// gemmEpilogue finishes each tile of C while it is still in cache, after its last block of k:
// it adds res (laid out as C, row stride ldc; nil: none), then with relu takes max(·, 0). This
// is a convolution's fused residual and ReLU (ops.ConvAct) without a pass of its own.
type gemmEpilogue struct {
	res  []float32
	relu bool
}

func (e gemmEpilogue) active() bool { return e.res != nil || e.relu }

// apply finishes the mh×nw block of c at (i, j), both with row stride ldc.
func (e gemmEpilogue) apply(c []float32, ldc, i, j, mh, nw int) {
	for ii := i; ii < i+mh; ii++ {
		row := c[ii*ldc+j:][:nw]
		if e.res != nil {
			for jj, r := range e.res[ii*ldc+j:][:nw] {
				row[jj] += r
			}
		}
		if e.relu {
			for jj, v := range row {
				row[jj] = max(v, 0)
			}
		}
	}
}

// packedA is op(A)ᵀ packed whole, one block of k after another: the block at k offset pc
// starts at d[pc·mpad] and holds ⌈m/mr⌉ slivers of kc×mr. A convolution packs its weights once
// per call and reuses them for every image.
type packedA struct {
	d    []float32
	mpad int
}

// packA packs all of the k×m panel a into buf, which must hold packASize(m, k) values.
func (ks *kernelSet) packA(a panel, m, k int, buf []float32) *packedA {
	mpad := (m + ks.mr - 1) / ks.mr * ks.mr
	for pc := 0; pc < k; pc += gemmKC {
		a.pack(ks, buf[pc*mpad:], pc, min(gemmKC, k-pc), 0, m, ks.mr)
	}
	return &packedA{d: buf[:mpad*k], mpad: mpad}
}

// packASize is the length of a packed m×k A.
func (ks *kernelSet) packASize(m, k int) int { return (m + ks.mr - 1) / ks.mr * ks.mr * k }

// kernels is the best kernel set this CPU and build support, chosen once at start-up
// (gemm_simd_amd64.go, gemm_nosimd.go).
var kernels = bestKernels()

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where op(A) is m×k and
// op(B) is k×n; op transposes when the flag is set. lda, ldb, ldc are row strides. With beta 0
// C's old contents are not read. Work is split over the backend's workers.
func (b *Backend) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmWith(kernels, b.workers, transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// gemmWith is gemm on a given kernel set and number of goroutines.
func gemmWith(ks *kernelSet, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if beta != 0 && beta != 1 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
	acc := beta != 0
	if k == 0 || alpha == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	var pa, pb panel
	if transA {
		pa = rowPanel{d: a, ld: lda, scale: alpha}
	} else {
		pa = colPanel{d: a, ld: lda, scale: alpha}
	}
	if transB {
		pb = colPanel{d: bm, ld: ldb, scale: 1}
	} else {
		pb = rowPanel{d: bm, ld: ldb, scale: 1}
	}
	ks.run(&gemmOp{m: m, n: n, k: k, a: pa, b: pb, c: c, ldc: ldc, acc: acc}, workers)
}

// run computes g on up to workers goroutines, giving each a band of columns of C (or of rows
// when C is too narrow) so that no two write the same element.
func (ks *kernelSet) run(g *gemmOp, workers int) {
	if g.k == 0 {
		panic("gemm: empty k reaches the packed engine")
	}
	split(workers, g.m, g.n, g.k, ks.mr, ks.nr, func(i0, i1, j0, j1 int) {
		s := ks.getScratch()
		ks.serial(g, s, i0, i1, j0, j1)
		ks.scratch.Put(s)
	})
}

// split runs fn over bands of an m×n output: columns in multiples of nr when there are enough
// of them, else rows in multiples of mr, else everything on the caller's goroutine.
func split(workers, m, n, k, mr, nr int, fn func(i0, i1, j0, j1 int)) {
	if workers <= 1 || m*n*k < gemmParallelMin {
		fn(0, m, 0, n)
		return
	}
	if cols := (n + nr - 1) / nr; cols >= 2*workers || cols >= (m+mr-1)/mr {
		parallelFor(workers, cols, 1, func(lo, hi int) { fn(0, m, lo*nr, min(hi*nr, n)) })
		return
	}
	rows := (m + mr - 1) / mr
	parallelFor(workers, rows, 1, func(lo, hi int) { fn(lo*mr, min(hi*mr, m), 0, n) })
}

// serial computes rows [i0,i1) and columns [j0,j1) of g's C on the calling goroutine.
func (ks *kernelSet) serial(g *gemmOp, s *gemmScratch, i0, i1, j0, j1 int) {
	mr, nr := ks.mr, ks.nr
	for jc := j0; jc < j1; jc += gemmNC {
		nc := min(gemmNC, j1-jc)
		for pc := 0; pc < g.k; pc += gemmKC {
			kc := min(gemmKC, g.k-pc)
			g.b.pack(ks, s.b, pc, kc, jc, nc, nr)
			// Only the first block of k overwrites C and adds the bias; later ones accumulate.
			acc := g.acc || pc > 0
			bias := g.bias
			if pc > 0 {
				bias = nil
			}
			last := pc+kc == g.k && g.epi.active()
			for ic := i0; ic < i1; ic += gemmMC {
				mc := min(gemmMC, i1-ic)
				ablock := s.a
				if g.ap != nil {
					// Row bands start at multiples of mr (split), so sliver (ic+ir)/mr is at (ic+ir)·kc.
					ablock = g.ap.d[pc*g.ap.mpad+ic*kc:]
				} else {
					g.a.pack(ks, s.a, pc, kc, ic, mc, mr)
				}
				for jr := 0; jr < nc; jr += nr {
					bp := s.b[jr*kc : (jr+nr)*kc]
					nw := min(nr, nc-jr)
					for ir := 0; ir < mc; ir += mr {
						ap := ablock[ir*kc : (ir+mr)*kc]
						mh := min(mr, mc-ir)
						i, j := ic+ir, jc+jr
						var tb []float32
						if bias != nil {
							tb = bias[i : i+mh]
						}
						if mh == mr && nw == nr {
							ks.tile(kc, ap, bp, g.c[i*g.ldc+j:], g.ldc, acc, tb)
							if last {
								if ks.fin != nil {
									var res []float32
									if g.epi.res != nil {
										res = g.epi.res[i*g.ldc+j:]
									}
									ks.fin(g.c[i*g.ldc+j:], res, g.ldc, g.epi.relu)
								} else {
									g.epi.apply(g.c, g.ldc, i, j, mh, nw)
								}
							}
							continue
						}
						// An edge tile: compute it whole into scratch, keep the part inside C.
						ks.tile(kc, ap, bp, s.t, nr, false, nil)
						for ii := 0; ii < mh; ii++ {
							crow := g.c[(i+ii)*g.ldc+j:][:nw]
							trow := s.t[ii*nr:][:nw]
							for jj, v := range trow {
								if acc {
									v += crow[jj]
								}
								if tb != nil {
									v += tb[ii]
								}
								crow[jj] = v
							}
						}
						if last {
							g.epi.apply(g.c, g.ldc, i, j, mh, nw)
						}
					}
				}
			}
		}
	}
}
