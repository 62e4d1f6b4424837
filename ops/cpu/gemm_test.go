package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// TestGEMM checks every kernel set this CPU runs against a float64 reference on odd sizes, all
// four transpose combinations, several alpha/beta pairs and padded leading dimensions. Padding
// of A, B and C holds NaN or a sentinel, so reading or writing outside the matrices shows up.
func TestGEMM(t *testing.T) {
	sizes := []int{1, 3, 17, 64, 100, 257}
	// Seven pairs, coprime with the six sizes, so that every k meets every pair.
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {-0.5, 1}, {2, 0.25}, {1, 0}, {0.75, -1}, {0, 0.5}, {1, 1}}
	for _, ks := range usableKernels() {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			idx := 0
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, m := range sizes {
					for _, n := range sizes {
						for _, k := range sizes {
							s := scalars[idx%len(scalars)]
							workers := 1 + idx/len(scalars)%2
							idx++
							c := gemmCase{transA: tr[0], transB: tr[1], m: m, n: n, k: k, alpha: s.alpha, beta: s.beta}
							if err := c.check(ks, workers, rng); err != nil {
								t.Errorf("%v (workers %d): %v", c, workers, err)
							}
						}
					}
				}
			}
		})
	}
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
}

func (c gemmCase) String() string {
	return fmt.Sprintf("transA=%v transB=%v m=%d n=%d k=%d alpha=%g beta=%g", c.transA, c.transB, c.m, c.n, c.k, c.alpha, c.beta)
}

// check runs one case on ks and compares every element with the float64 result, allowing the
// worst-case float32 error of a k-term sum in any order: (k+2)·2⁻²⁴ times the sum of the
// magnitudes of the terms (Higham, Accuracy and Stability of Numerical Algorithms, §3.1).
func (c gemmCase) check(ks *kernelSet, workers int, rng *rand.Rand) error {
	const pad = 5
	nan := float32(math.NaN())
	// Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k when transposed).
	ar, ac := c.m, c.k
	if c.transA {
		ar, ac = c.k, c.m
	}
	br, bc := c.k, c.n
	if c.transB {
		br, bc = c.n, c.k
	}
	lda, ldb, ldc := ac+pad, bc+pad, c.n+pad
	fill := func(rows, cols, ld int) []float32 {
		d := make([]float32, rows*ld)
		for i := range d {
			d[i] = nan
		}
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				d[i*ld+j] = rng.Float32()*2 - 1
			}
		}
		return d
	}
	a, b := fill(ar, ac, lda), fill(br, bc, ldb)
	cm := fill(c.m, c.n, ldc)
	const sentinel = 12345
	for i := 0; i < c.m; i++ {
		for j := c.n; j < ldc; j++ {
			cm[i*ldc+j] = sentinel
		}
		if c.beta == 0 {
			// beta 0 must not read C: uninitialised memory may hold NaN.
			for j := 0; j < c.n; j++ {
				cm[i*ldc+j] = nan
			}
		}
	}
	c0 := append([]float32(nil), cm...)
	at := func(i, p int) float64 {
		if c.transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if c.transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}

	gemmWith(ks, workers, c.transA, c.transB, c.m, c.n, c.k, c.alpha, a, lda, b, ldb, c.beta, cm, ldc)

	const u = 1.0 / (1 << 24)
	for i := 0; i < c.m; i++ {
		for j := 0; j < ldc; j++ {
			got := cm[i*ldc+j]
			if j >= c.n {
				if got != sentinel {
					return fmt.Errorf("C[%d][%d] past column n was overwritten with %v", i, j, got)
				}
				continue
			}
			var sum, mag float64
			for p := 0; p < c.k; p++ {
				v := at(i, p) * bt(p, j)
				sum += v
				mag += math.Abs(v)
			}
			want := float64(c.alpha) * sum
			bound := math.Abs(float64(c.alpha)) * mag
			if c.beta != 0 {
				old := float64(c0[i*ldc+j])
				want += float64(c.beta) * old
				bound += math.Abs(float64(c.beta) * old)
			}
			tol := float64(c.k+2)*u*bound + 1e-30
			if d := math.Abs(float64(got) - want); !(d <= tol) {
				return fmt.Errorf("C[%d][%d] = %v, want %v (error %.3g, bound %.3g)", i, j, got, want, d, tol)
			}
		}
	}
	return nil
}

// TestGoldenKernels runs the PyTorch golden cases on every kernel set, not just the one this
// CPU would pick, so the AVX2 and portable paths are exercised on an AVX-512 machine.
func TestGoldenKernels(t *testing.T) {
	saved := kernels
	defer func() { kernels = saved }()
	for _, ks := range usableKernels() {
		if ks == saved {
			continue // TestGolden covers it
		}
		t.Run(ks.name, func(t *testing.T) {
			kernels = ks
			optest.Golden(t, New())
		})
	}
}

// TestConv2DLowering checks the convolution kernels, forward and both gradients, against a
// float64 direct convolution on shapes that reach every lowering path: 1×1 as a plain GEMM,
// shifted windows of padded phases (kernels with different height and width, strides 1 and
// 2, dilation, groups, padding above d·(k−1)), both input-gradient lowerings, k longer than
// one packed block, one image with each GEMM split over the workers, an odd number of images
// split over workers, and channel-sliced (batch-strided) operands.
func TestConv2DLowering(t *testing.T) {
	cases := []convCase{
		{name: "1x1_s1_b3_bias", n: 3, c: 24, o: 40, h: 20, w: 20, kh: 1, kw: 1, p: ops.Conv2DParams{}, bias: true},
		{name: "1x1_s1_k300_b1", n: 1, c: 300, o: 20, h: 16, w: 16, kh: 1, kw: 1},
		{name: "1x1_s1_p1", n: 1, c: 8, o: 12, h: 9, w: 7, kh: 1, kw: 1, p: ops.Conv2DParams{Pad: 1}, bias: true},
		{name: "3x3_s1_p1_b1_split", n: 1, c: 40, o: 36, h: 21, w: 19, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}},
		{name: "3x3_s1_p1_b2_sliced", n: 2, c: 10, o: 7, h: 11, w: 9, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}, sliceX: 3, sliceY: 2},
		{name: "3x3_s2_p1_b2", n: 2, c: 20, o: 24, h: 17, w: 15, kh: 3, kw: 3, p: ops.Conv2DParams{Stride: 2, Pad: 1}, bias: true},
		{name: "3x1_s1_p1", n: 2, c: 6, o: 5, h: 10, w: 8, kh: 3, kw: 1, p: ops.Conv2DParams{Pad: 1}},
		{name: "1x3_s1_p0", n: 1, c: 6, o: 5, h: 6, w: 9, kh: 1, kw: 3},
		{name: "3x3_d2_p2_g2_b3", n: 3, c: 8, o: 6, h: 12, w: 13, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 2, Dilation: 2, Groups: 2}, bias: true},
		{name: "5x5_s1_p2_b1_sliced", n: 1, c: 10, o: 7, h: 11, w: 9, kh: 5, kw: 5, p: ops.Conv2DParams{Pad: 2}, sliceX: 6},
		{name: "7x7_s2_p3", n: 2, c: 3, o: 8, h: 23, w: 19, kh: 7, kw: 7, p: ops.Conv2DParams{Stride: 2, Pad: 3}},
	}
	saved, savedMaxC := kernels, colGradMaxC
	defer func() { kernels, colGradMaxC = saved, savedMaxC }()
	// The input gradient has two lowerings (phase GEMMs, col2im for few input channels): run
	// every case through each.
	for _, path := range []struct {
		name string
		maxC int
	}{{"phase", 0}, {"col2im", 1 << 30}} {
		colGradMaxC = path.maxC
		for _, ks := range usableKernels() {
			kernels = ks
			for _, c := range cases {
				t.Run(path.name+"/"+ks.name+"/"+c.name, func(t *testing.T) { c.check(t) })
			}
		}
	}
}

type convCase struct {
	name           string
	n, c, o, h, w  int
	kh, kw         int
	p              ops.Conv2DParams
	bias           bool
	sliceX, sliceY int // extra channels around x and gy, making them batch-strided views
}

// tensorIn returns an [n ch h w] tensor of values in [-1, 1) as a view of a tensor with extra
// channels (so that it is batch-strided when extra > 0), and its values in row-major order.
func tensorIn(t *testing.T, rng *rand.Rand, n, ch, h, w, extra int) (*tensor.Tensor, []float32) {
	t.Helper()
	all := make([]float32, n*(ch+extra)*h*w)
	for i := range all {
		all[i] = rng.Float32()*2 - 1
	}
	full, err := tensor.FromSlice(all, n, ch+extra, h, w)
	if err != nil {
		t.Fatal(err)
	}
	v, err := full.Narrow(1, extra/2, ch)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, 0, n*ch*h*w)
	for i := 0; i < n; i++ {
		start := (i*(ch+extra) + extra/2) * h * w
		vals = append(vals, all[start:start+ch*h*w]...)
	}
	return v, vals
}

func (c convCase) check(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	p := c.p.Norm()
	oh, ow := p.OutSize(c.h, c.kh), p.OutSize(c.w, c.kw)
	cg, og := c.c/p.Groups, c.o/p.Groups
	x, xv := tensorIn(t, rng, c.n, c.c, c.h, c.w, c.sliceX)
	w, wv := tensorIn(t, rng, c.o, cg, c.kh, c.kw, 0)
	gy, gyv := tensorIn(t, rng, c.n, c.o, oh, ow, c.sliceY)
	var bias *tensor.Tensor
	bv := make([]float32, c.o)
	if c.bias {
		bias, bv = tensorIn(t, rng, 1, c.o, 1, 1, 0)
		bias, _ = bias.Reshape(c.o)
	}
	nan := float32(math.NaN())
	alloc := func(shape ...int) *tensor.Tensor {
		// Kernels must write every element: start from NaN.
		d := make([]float32, tensor.Shape(shape).Numel())
		for i := range d {
			d[i] = nan
		}
		tt, err := tensor.FromSlice(d, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	y, gx, gw := alloc(c.n, c.o, oh, ow), alloc(c.n, c.c, c.h, c.w), alloc(c.o, cg, c.kh, c.kw)
	b := New()
	if err := b.Conv2D(y, x, w, bias, p); err != nil {
		t.Fatal(err)
	}
	if err := b.Conv2DGradInput(gx, gy, w, p); err != nil {
		t.Fatal(err)
	}
	if err := b.Conv2DGradWeight(gw, x, gy, p); err != nil {
		t.Fatal(err)
	}

	// Direct convolution in float64; each output also gets the sum of its terms' magnitudes.
	ry, my := make([]float64, c.n*c.o*oh*ow), make([]float64, c.n*c.o*oh*ow)
	rgx, mgx := make([]float64, len(xv)), make([]float64, len(xv))
	rgw, mgw := make([]float64, len(wv)), make([]float64, len(wv))
	for n := 0; n < c.n; n++ {
		for o := 0; o < c.o; o++ {
			grp := o / og
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					yi := ((n*c.o+o)*oh+oy)*ow + ox
					ry[yi], my[yi] = float64(bv[o]), math.Abs(float64(bv[o]))
					g := float64(gyv[yi])
					for ci := 0; ci < cg; ci++ {
						for ky := 0; ky < c.kh; ky++ {
							iy := oy*p.Stride - p.Pad + ky*p.Dilation
							if iy < 0 || iy >= c.h {
								continue
							}
							for kx := 0; kx < c.kw; kx++ {
								ix := ox*p.Stride - p.Pad + kx*p.Dilation
								if ix < 0 || ix >= c.w {
									continue
								}
								xi := ((n*c.c+grp*cg+ci)*c.h+iy)*c.w + ix
								wi := ((o*cg+ci)*c.kh+ky)*c.kw + kx
								xw := float64(xv[xi]) * float64(wv[wi])
								ry[yi] += xw
								my[yi] += math.Abs(xw)
								rgx[xi] += g * float64(wv[wi])
								mgx[xi] += math.Abs(g * float64(wv[wi]))
								rgw[wi] += g * float64(xv[xi])
								mgw[wi] += math.Abs(g * float64(xv[xi]))
							}
						}
					}
				}
			}
		}
	}
	// Every output is a float32 sum of at most terms products (Higham §3.1, as in TestGEMM).
	terms := max(cg*c.kh*c.kw+1, og*c.kh*c.kw, c.n*oh*ow)
	compare := func(what string, got *tensor.Tensor, want, mag []float64) {
		d, _ := got.HostData()
		for i, v := range d {
			tol := float64(terms+2) / (1 << 24) * mag[i]
			if e := math.Abs(float64(v) - want[i]); !(e <= tol+1e-30) {
				t.Errorf("%s[%d] = %v, want %v (error %.3g, bound %.3g)", what, i, v, want[i], e, tol)
				return
			}
		}
	}
	compare("y", y, ry, my)
	compare("grad input", gx, rgx, mgx)
	compare("grad weight", gw, rgw, mgw)
}

// TestConvActKernels runs the fused convolution epilogue (residual, ReLU) on every kernel set
// against the unfused composition: the SIMD sets finish full tiles with their own fin.
func TestConvActKernels(t *testing.T) {
	saved := kernels
	defer func() { kernels = saved }()
	for _, ks := range usableKernels() {
		t.Run(ks.name, func(t *testing.T) {
			kernels = ks
			optest.CompareConvAct(t, New(), New())
		})
	}
}
