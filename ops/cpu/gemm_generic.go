package cpu

// genericKernels is portable Go: the fallback for builds without GOEXPERIMENT=simd and for CPUs
// without AVX2. A 4×4 tile keeps 16 accumulators, about what the 16 SSE registers hold.
var genericKernels = &kernelSet{name: "generic", mr: 4, nr: 4, tile: tileGeneric, rows: rows4, t8: transpose8Generic, t4: transpose4Generic}

// tileGeneric is the reference loop of every tile kernel, for mr = nr = 4:
//
//	C[i][j] = Σ_p a[p·4+i]·b[p·4+j] (+ C[i][j] if acc) (+ bias[i] if bias != nil)
func tileGeneric(kc int, a, b, c []float32, ldc int, acc bool, bias []float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	a, b = a[:kc*4], b[:kc*4]
	for p := 0; p < kc; p++ {
		ap := a[p*4 : p*4+4 : p*4+4]
		bp := b[p*4 : p*4+4 : p*4+4]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		x := ap[0]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		x = ap[1]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		x = ap[2]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		x = ap[3]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
	}
	st := func(i int, v0, v1, v2, v3 float32) {
		r := c[i*ldc : i*ldc+4 : i*ldc+4]
		if acc {
			v0 += r[0]
			v1 += r[1]
			v2 += r[2]
			v3 += r[3]
		}
		if bias != nil {
			v0 += bias[i]
			v1 += bias[i]
			v2 += bias[i]
			v3 += bias[i]
		}
		r[0], r[1], r[2], r[3] = v0, v1, v2, v3
	}
	st(0, c00, c01, c02, c03)
	st(1, c10, c11, c12, c13)
	st(2, c20, c21, c22, c23)
	st(3, c30, c31, c32, c33)
}

// transpose8Generic is the reference loop of every t8:
//
//	dst[r·ldd+c] = src[off[c]+r] for r, c < 8
func transpose8Generic(dst []float32, ldd int, src []float32, off *[8]int) {
	for c, o := range off {
		for r, v := range src[o : o+8] {
			dst[r*ldd+c] = v
		}
	}
}

// rows4 is the reference loop of every rows function, for nr = 4.
func rows4(dst, d []float32, off []int, ld, k0, kc, x int) {
	for kk := 0; kk < kc; kk++ {
		s := (k0+kk)*ld + x
		if off != nil {
			s = off[k0+kk] + x
		}
		*(*[4]float32)(dst[kk*4:]) = *(*[4]float32)(d[s:])
	}
}

// transpose4Generic is the reference loop of every t4:
//
//	dst[4r+c] = src[off[c]+r] for r < 8, c < 4
func transpose4Generic(dst []float32, src []float32, off *[4]int) {
	for c, o := range off {
		for r, v := range src[o : o+8] {
			dst[4*r+c] = v
		}
	}
}
