//go:build goexperiment.simd && amd64

package cpu

import (
	"simd/archsimd"
	"unsafe"
)

// Tile shapes. Go's register allocator keeps vector values that live across a loop in X0–X14
// only (AVX-512's Z16–Z31 are used just for temporaries), and it schedules a block's loads and
// broadcasts ahead of the FMAs that use them. A kernel must therefore fit its accumulators, its
// B vectors and all of one k-step's broadcasts in 15 registers: 4×32 is 8 accumulators, 2 B
// vectors and 4 broadcasts. 6×32 (12 accumulators) spills and ran at half the speed (68 vs
// 134–157 GFLOP/s on an L1-resident kc=256 sliver, one Zen 5 core).
var (
	avx512Kernels = &kernelSet{name: "avx512", mr: 4, nr: 32, tile: tileAVX512, rows: rows32, t8: transpose8AVX, t4: transpose4AVX, fin: finAVX512}
	avx2Kernels   = &kernelSet{name: "avx2", mr: 4, nr: 16, tile: tileAVX2, rows: rows16, t8: transpose8AVX, t4: transpose4AVX, fin: finAVX2}
)

// bestKernels picks the widest kernels the CPU runs.
func bestKernels() *kernelSet {
	switch {
	case archsimd.X86.AVX512():
		return avx512Kernels
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		return avx2Kernels
	}
	return genericKernels
}

// usableKernels lists every kernel set this CPU runs, for tests.
func usableKernels() []*kernelSet {
	ks := []*kernelSet{genericKernels}
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		ks = append(ks, avx2Kernels)
	}
	if archsimd.X86.AVX512() {
		ks = append(ks, avx512Kernels)
	}
	return ks
}

// The kernels index packed slivers through unsafe.Pointer after checking the slices' lengths
// once (per-element bounds checks cost a third of the FMA rate), forming offsets only for
// elements inside the slices. Loads and broadcasts are written out as archsimd intrinsics at
// each use, and the k loop unrolled by hand: the compiler's scheduler orders a block's values by
// source position, so this keeps each k-step's loads next to its FMAs (through an inlined helper
// they all moved to the top of the loop and spilled), and an unrolled body needs one register
// move per accumulator per iteration rather than per k-step (the FMA writes its multiplicand's
// register). Unrolling by 4 took the L1-resident 4×32 kernel from 160 to 170-177 GFLOP/s.

// tileAVX512 is tileGeneric for mr=4, nr=32 on Float32x16.
func tileAVX512(kc int, a, b, c []float32, ldc int, acc bool, bias []float32) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x16
	if kc > 0 {
		_, _ = a[kc*4-1], b[kc*32-1]
		pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
		var z archsimd.Float32x4
		p := uintptr(0)
		for ; p+4 <= uintptr(kc); p += 4 {
			qa, qb := unsafe.Add(pa, p*16), unsafe.Add(pb, p*128)
			b0 := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 0)))
			b1 := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 64)))
			x := z.SetElem(0, *(*float32)(unsafe.Add(qa, 0))).Broadcast1To16()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 4))).Broadcast1To16()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 8))).Broadcast1To16()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 12))).Broadcast1To16()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 128)))
			b1 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 192)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 16))).Broadcast1To16()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 20))).Broadcast1To16()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 24))).Broadcast1To16()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 28))).Broadcast1To16()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 256)))
			b1 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 320)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 32))).Broadcast1To16()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 36))).Broadcast1To16()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 40))).Broadcast1To16()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 44))).Broadcast1To16()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 384)))
			b1 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 448)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 48))).Broadcast1To16()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 52))).Broadcast1To16()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 56))).Broadcast1To16()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 60))).Broadcast1To16()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
		}
		for ; p < uintptr(kc); p++ {
			qa, qb := unsafe.Add(pa, p*16), unsafe.Add(pb, p*128)
			b0 := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 0)))
			b1 := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(qb, 64)))
			x := z.SetElem(0, *(*float32)(unsafe.Add(qa, 0))).Broadcast1To16()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 4))).Broadcast1To16()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 8))).Broadcast1To16()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 12))).Broadcast1To16()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
		}
	}
	st := func(i int, v0, v1 archsimd.Float32x16) {
		r := c[i*ldc : i*ldc+32]
		if acc {
			v0 = v0.Add(archsimd.LoadFloat32x16Slice(r))
			v1 = v1.Add(archsimd.LoadFloat32x16Slice(r[16:]))
		}
		if bias != nil {
			bb := archsimd.BroadcastFloat32x16(bias[i])
			v0 = v0.Add(bb)
			v1 = v1.Add(bb)
		}
		v0.StoreSlice(r)
		v1.StoreSlice(r[16:])
	}
	st(0, c00, c01)
	st(1, c10, c11)
	st(2, c20, c21)
	st(3, c30, c31)
	archsimd.ClearAVXUpperBits()
}

// tileAVX2 is tileGeneric for mr=4, nr=16 on Float32x8.
func tileAVX2(kc int, a, b, c []float32, ldc int, acc bool, bias []float32) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	if kc > 0 {
		_, _ = a[kc*4-1], b[kc*16-1]
		pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
		var z archsimd.Float32x4
		p := uintptr(0)
		for ; p+4 <= uintptr(kc); p += 4 {
			qa, qb := unsafe.Add(pa, p*16), unsafe.Add(pb, p*64)
			b0 := archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 0)))
			b1 := archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 32)))
			x := z.SetElem(0, *(*float32)(unsafe.Add(qa, 0))).Broadcast1To8()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 4))).Broadcast1To8()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 8))).Broadcast1To8()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 12))).Broadcast1To8()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 64)))
			b1 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 96)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 16))).Broadcast1To8()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 20))).Broadcast1To8()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 24))).Broadcast1To8()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 28))).Broadcast1To8()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 128)))
			b1 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 160)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 32))).Broadcast1To8()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 36))).Broadcast1To8()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 40))).Broadcast1To8()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 44))).Broadcast1To8()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			b0 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 192)))
			b1 = archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 224)))
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 48))).Broadcast1To8()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 52))).Broadcast1To8()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 56))).Broadcast1To8()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 60))).Broadcast1To8()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
		}
		for ; p < uintptr(kc); p++ {
			qa, qb := unsafe.Add(pa, p*16), unsafe.Add(pb, p*64)
			b0 := archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 0)))
			b1 := archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(qb, 32)))
			x := z.SetElem(0, *(*float32)(unsafe.Add(qa, 0))).Broadcast1To8()
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 4))).Broadcast1To8()
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 8))).Broadcast1To8()
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = z.SetElem(0, *(*float32)(unsafe.Add(qa, 12))).Broadcast1To8()
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
		}
	}
	st := func(i int, v0, v1 archsimd.Float32x8) {
		r := c[i*ldc : i*ldc+16]
		if acc {
			v0 = v0.Add(archsimd.LoadFloat32x8Slice(r))
			v1 = v1.Add(archsimd.LoadFloat32x8Slice(r[8:]))
		}
		if bias != nil {
			bb := archsimd.BroadcastFloat32x8(bias[i])
			v0 = v0.Add(bb)
			v1 = v1.Add(bb)
		}
		v0.StoreSlice(r)
		v1.StoreSlice(r[8:])
	}
	st(0, c00, c01)
	st(1, c10, c11)
	st(2, c20, c21)
	st(3, c30, c31)
	archsimd.ClearAVXUpperBits()
}

// transpose8AVX is transpose8Generic on Float32x8, in three rounds of eight shuffles: pairs of
// rows interleaved two elements at a time, then one at a time (each 128-bit lane now holds
// four elements of one column), then lanes exchanged.
func transpose8AVX(dst []float32, ldd int, src []float32, off *[8]int) {
	r0 := archsimd.LoadFloat32x8Slice(src[off[0]:])
	r1 := archsimd.LoadFloat32x8Slice(src[off[1]:])
	r2 := archsimd.LoadFloat32x8Slice(src[off[2]:])
	r3 := archsimd.LoadFloat32x8Slice(src[off[3]:])
	r4 := archsimd.LoadFloat32x8Slice(src[off[4]:])
	r5 := archsimd.LoadFloat32x8Slice(src[off[5]:])
	r6 := archsimd.LoadFloat32x8Slice(src[off[6]:])
	r7 := archsimd.LoadFloat32x8Slice(src[off[7]:])
	// t0 lanes: [r0[0] r0[1] r1[0] r1[1]], [r0[4] r0[5] r1[4] r1[5]]
	t0 := r0.SelectFromPairGrouped(0, 1, 4, 5, r1)
	t1 := r0.SelectFromPairGrouped(2, 3, 6, 7, r1)
	t2 := r2.SelectFromPairGrouped(0, 1, 4, 5, r3)
	t3 := r2.SelectFromPairGrouped(2, 3, 6, 7, r3)
	t4 := r4.SelectFromPairGrouped(0, 1, 4, 5, r5)
	t5 := r4.SelectFromPairGrouped(2, 3, 6, 7, r5)
	t6 := r6.SelectFromPairGrouped(0, 1, 4, 5, r7)
	t7 := r6.SelectFromPairGrouped(2, 3, 6, 7, r7)
	// u0 lanes: column 0 of rows 0-3, column 4 of rows 0-3
	u0 := t0.SelectFromPairGrouped(0, 2, 4, 6, t2)
	u1 := t0.SelectFromPairGrouped(1, 3, 5, 7, t2)
	u2 := t1.SelectFromPairGrouped(0, 2, 4, 6, t3)
	u3 := t1.SelectFromPairGrouped(1, 3, 5, 7, t3)
	u4 := t4.SelectFromPairGrouped(0, 2, 4, 6, t6)
	u5 := t4.SelectFromPairGrouped(1, 3, 5, 7, t6)
	u6 := t5.SelectFromPairGrouped(0, 2, 4, 6, t7)
	u7 := t5.SelectFromPairGrouped(1, 3, 5, 7, t7)
	_ = dst[7*ldd+7]
	u0.Select128FromPair(0, 2, u4).StoreSlice(dst[0*ldd:])
	u1.Select128FromPair(0, 2, u5).StoreSlice(dst[1*ldd:])
	u2.Select128FromPair(0, 2, u6).StoreSlice(dst[2*ldd:])
	u3.Select128FromPair(0, 2, u7).StoreSlice(dst[3*ldd:])
	u0.Select128FromPair(1, 3, u4).StoreSlice(dst[4*ldd:])
	u1.Select128FromPair(1, 3, u5).StoreSlice(dst[5*ldd:])
	u2.Select128FromPair(1, 3, u6).StoreSlice(dst[6*ldd:])
	u3.Select128FromPair(1, 3, u7).StoreSlice(dst[7*ldd:])
	archsimd.ClearAVXUpperBits()
}

// rows32 is rows4 for nr = 32 on Float32x16: a runtime.memmove call per 128-byte row cost more
// than the copy.
func rows32(dst, d []float32, off []int, ld, k0, kc, x int) {
	for kk := 0; kk < kc; kk++ {
		s := (k0+kk)*ld + x
		if off != nil {
			s = off[k0+kk] + x
		}
		src, out := d[s:s+32], dst[kk*32:kk*32+32]
		archsimd.LoadFloat32x16Slice(src).StoreSlice(out)
		archsimd.LoadFloat32x16Slice(src[16:]).StoreSlice(out[16:])
	}
	archsimd.ClearAVXUpperBits()
}

// rows16 is rows4 for nr = 16 on Float32x8.
func rows16(dst, d []float32, off []int, ld, k0, kc, x int) {
	for kk := 0; kk < kc; kk++ {
		s := (k0+kk)*ld + x
		if off != nil {
			s = off[k0+kk] + x
		}
		src, out := d[s:s+16], dst[kk*16:kk*16+16]
		archsimd.LoadFloat32x8Slice(src).StoreSlice(out)
		archsimd.LoadFloat32x8Slice(src[8:]).StoreSlice(out[8:])
	}
	archsimd.ClearAVXUpperBits()
}

// transpose4AVX is transpose4Generic on Float32x8: the first two rounds of transpose8AVX, after
// which lane 0 of u_r holds output row r and lane 1 row r+4.
func transpose4AVX(dst []float32, src []float32, off *[4]int) {
	r0 := archsimd.LoadFloat32x8Slice(src[off[0]:])
	r1 := archsimd.LoadFloat32x8Slice(src[off[1]:])
	r2 := archsimd.LoadFloat32x8Slice(src[off[2]:])
	r3 := archsimd.LoadFloat32x8Slice(src[off[3]:])
	t0 := r0.SelectFromPairGrouped(0, 1, 4, 5, r1)
	t1 := r0.SelectFromPairGrouped(2, 3, 6, 7, r1)
	t2 := r2.SelectFromPairGrouped(0, 1, 4, 5, r3)
	t3 := r2.SelectFromPairGrouped(2, 3, 6, 7, r3)
	u0 := t0.SelectFromPairGrouped(0, 2, 4, 6, t2)
	u1 := t0.SelectFromPairGrouped(1, 3, 5, 7, t2)
	u2 := t1.SelectFromPairGrouped(0, 2, 4, 6, t3)
	u3 := t1.SelectFromPairGrouped(1, 3, 5, 7, t3)
	d := dst[:32]
	u0.Select128FromPair(0, 2, u1).StoreSlice(d[0:])
	u2.Select128FromPair(0, 2, u3).StoreSlice(d[8:])
	u0.Select128FromPair(1, 3, u1).StoreSlice(d[16:])
	u2.Select128FromPair(1, 3, u3).StoreSlice(d[24:])
	archsimd.ClearAVXUpperBits()
}

// finAVX512 is gemmEpilogue.apply on a 4×32 tile: residual and ReLU, 16 lanes at a time.
func finAVX512(c, res []float32, ldc int, relu bool) {
	var zero archsimd.Float32x16
	for i := 0; i < 4; i++ {
		r := c[i*ldc : i*ldc+32]
		v0, v1 := archsimd.LoadFloat32x16Slice(r), archsimd.LoadFloat32x16Slice(r[16:])
		if res != nil {
			q := res[i*ldc : i*ldc+32]
			v0 = v0.Add(archsimd.LoadFloat32x16Slice(q))
			v1 = v1.Add(archsimd.LoadFloat32x16Slice(q[16:]))
		}
		if relu {
			v0, v1 = v0.Max(zero), v1.Max(zero)
		}
		v0.StoreSlice(r)
		v1.StoreSlice(r[16:])
	}
	archsimd.ClearAVXUpperBits()
}

// finAVX2 is gemmEpilogue.apply on a 4×16 tile, 8 lanes at a time.
func finAVX2(c, res []float32, ldc int, relu bool) {
	var zero archsimd.Float32x8
	for i := 0; i < 4; i++ {
		r := c[i*ldc : i*ldc+16]
		v0, v1 := archsimd.LoadFloat32x8Slice(r), archsimd.LoadFloat32x8Slice(r[8:])
		if res != nil {
			q := res[i*ldc : i*ldc+16]
			v0 = v0.Add(archsimd.LoadFloat32x8Slice(q))
			v1 = v1.Add(archsimd.LoadFloat32x8Slice(q[8:]))
		}
		if relu {
			v0, v1 = v0.Max(zero), v1.Max(zero)
		}
		v0.StoreSlice(r)
		v1.StoreSlice(r[8:])
	}
	archsimd.ClearAVXUpperBits()
}
