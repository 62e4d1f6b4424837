package vk

import (
	"fmt"
	"math"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
	"github.com/x448/float16"
)

// openMixed is open(t) for the fp16 tests: a device without fp16 is a skip, said loudly.
func openMixed(t *testing.T) *Backend {
	t.Helper()
	b := open(t)
	if b.MixedKernel() == "" {
		t.Skipf("NO FP16 on %s — the mixed-precision kernels are not tested here", b.Device().Info.Name)
	}
	t.Logf("%s: mixed GEMM kernel %s", b.Device().Info.Name, b.MixedKernel())
	return b
}

// TestHalfToFloatExhaustive widens every fp16 bit pattern and compares the fp32 bits with
// x448/float16 (exact; NaNs quiet, payload kept).
func TestHalfToFloatExhaustive(t *testing.T) {
	b := openMixed(t)
	h, err := b.AllocHalf(256, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Free()
	bits := make([]uint16, 1<<16)
	for i := range bits {
		bits[i] = uint16(i)
	}
	if err := b.UploadHalf(h, bits); err != nil {
		t.Fatal(err)
	}
	f, err := b.Alloc(tensor.Shape{256, 256})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(f.Storage())
	if err := b.FromHalf(f, h); err != nil {
		t.Fatal(err)
	}
	got, err := b.Download(f)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, v := range got {
		want := float16.Frombits(uint16(i)).Float32()
		if math.Float32bits(v) != math.Float32bits(want) {
			if bad++; bad <= 5 {
				t.Errorf("fp16 %#04x: got fp32 %#08x, want %#08x", i, math.Float32bits(v), math.Float32bits(want))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 65536 patterns wrong", bad)
	}
}

// TestHalfFromFloat rounds fp32 values to fp16 and compares the bits with x448/float16's
// Fromfloat32 (round to nearest even): every fp16 value (round trip exact), the midpoints between
// neighbours (ties, which must go to the even one), the overflow and underflow edges, and random
// bit patterns over the whole fp32 range.
func TestHalfFromFloat(t *testing.T) {
	b := openMixed(t)
	var in []float32
	var ties []int // indexes of exact midpoints
	for i := 0; i < 1<<16; i++ {
		f := float16.Frombits(uint16(i))
		if f.IsNaN() {
			continue
		}
		in = append(in, f.Float32())
		if i&0x7fff < 0x7bff { // below the largest finite value: the midpoint to the next
			lo, hi := float64(f.Float32()), float64(float16.Frombits(uint16(i+1)).Float32())
			ties = append(ties, len(in))
			in = append(in, float32((lo+hi)/2)) // exact in fp32: fp16 has 13 fewer mantissa bits
		}
	}
	in = append(in, 65519.99, 65520, -65520, 65536, 1e30, float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x7f800001), // a signalling NaN
		0x1p-25, 0x1.000002p-25, 0x1p-26, 0x1.8p-24, 0x1p-149, -0x1p-149, float32(math.Copysign(0, -1)))
	rng := tensor.NewRNG(14, 0)
	for i := 0; i < 1<<16; i++ {
		in = append(in, math.Float32frombits(rng.Uint32()))
	}
	rows := (len(in) + 255) / 256
	for len(in) < rows*256 {
		in = append(in, 0)
	}
	src, err := ops.FromHost(b, in, rows, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(src.Storage())
	h, err := b.AllocHalf(rows, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Free()
	if err := b.ToHalf(h, src); err != nil {
		t.Fatal(err)
	}
	got, err := b.DownloadHalf(h)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, v := range in {
		if want := float16.Fromfloat32(v).Bits(); got[i] != want {
			if bad++; bad <= 5 {
				t.Errorf("fp32 %g (%#08x): got fp16 %#04x, want %#04x", v, math.Float32bits(v), got[i], want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d values wrong", bad, len(in))
	}
	// Independent of x448: a tie between finite values always rounds to an even mantissa.
	for _, i := range ties {
		if got[i]&1 != 0 && got[i]&0x7fff < 0x7c00 {
			t.Fatalf("tie %g rounded to odd %#04x", in[i], got[i])
		}
	}
}

// mixedCase is a product op(a)·op(b) of an M×K and a K×N matrix.
type mixedCase struct {
	m, n, k        int
	transA, transB bool
}

// TestMatMulMixed checks the mixed GEMM against the fp32 CPU matmul on inputs that are not
// fp16-representable, within the error fp16 inputs allow. With u = 2^-11 (fp16's unit roundoff)
// and v = 2^-24 (fp32's), each product of rounded inputs is off by at most (2u+u²)|a||b|, and
// each fp32 sum of K terms by K·v·Σ|a||b| (the kernel's and the CPU's), so per element
//
//	|c − c_cpu| ≤ (2u + u² + 2Kv) · Σ_k |a_ik||b_kj|   (≤ (2u+u²+2Kv)·K·max|a|·max|b|).
//
// That bound alone would pass a kernel that ignored fp16 and multiplied exactly in fp32, so the
// test also requires the result to be the product of the fp16-rounded inputs, within fp32
// accumulation: |c − Σ a16·b16| ≤ 2Kv·Σ|a16||b16|, a bound 2^12/K times tighter, which the
// fp32 CPU result must fail (checked: the test can fail).
func TestMatMulMixed(t *testing.T) {
	b := openMixed(t)
	cases := []mixedCase{
		{1, 1, 1, false, false},
		{7, 9, 13, false, false},
		{65, 33, 127, false, false},
		{130, 70, 257, false, false},
		{130, 257, 70, false, true}, // N over two of the tensor-core kernel's 128-wide blocks
		{7, 9, 13, true, false},
		{65, 33, 127, false, true},
		{130, 70, 257, true, true},
	}
	// The device's kernel, and the tensor-core kernel's tiling with scalar fragments (the only
	// form of it lavapipe can run).
	kernels := []string{b.MixedKernel(), shaders.MatmulMixedCoopmatEmulated}
	for _, kernel := range kernels {
		t.Run(kernel, func(t *testing.T) { testMatMulMixed(t, b, kernel, cases) })
	}
}

func testMatMulMixed(t *testing.T, b *Backend, kernel string, cases []mixedCase) {
	rng := tensor.NewRNG(41, 0)
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%d_ta%v_tb%v", c.m, c.n, c.k, c.transA, c.transB), func(t *testing.T) {
			ar, ac := c.m, c.k
			if c.transA {
				ar, ac = ac, ar
			}
			br, bc := c.k, c.n
			if c.transB {
				br, bc = bc, br
			}
			a, bm := randomNotHalf(rng, ar*ac), randomNotHalf(rng, br*bc)
			got := runMixed(t, b, kernel, c, a, bm)
			want := cpuMatMul(t, c, a, bm)
			at := func(x []float32, rows, cols, i, j int, trans bool) float64 {
				if trans {
					return float64(x[j*rows+i])
				}
				return float64(x[i*cols+j])
			}
			const u, v = 0x1p-11, 0x1p-24
			k := float64(c.k)
			var maxErr, maxHalfErr float64
			cpuFailsHalf := false
			for i := 0; i < c.m; i++ {
				for j := 0; j < c.n; j++ {
					var abs, ref16, abs16 float64
					for l := 0; l < c.k; l++ {
						x, y := at(a, c.m, c.k, i, l, c.transA), at(bm, c.k, c.n, l, j, c.transB)
						x16, y16 := float64(float16.Fromfloat32(float32(x)).Float32()), float64(float16.Fromfloat32(float32(y)).Float32())
						abs += math.Abs(x * y)
						ref16 += x16 * y16
						abs16 += math.Abs(x16 * y16)
					}
					g, w := float64(got[i*c.n+j]), float64(want[i*c.n+j])
					tol := (2*u + u*u + 2*k*v) * abs
					tol16 := 2*k*v*abs16 + 1e-30
					if e := math.Abs(g - w); e > tol {
						t.Fatalf("c[%d,%d] = %g, fp32 CPU %g: error %.3g > fp16 bound %.3g", i, j, g, w, e, tol)
					} else {
						maxErr = max(maxErr, e)
					}
					if e := math.Abs(g - ref16); e > tol16 {
						t.Fatalf("c[%d,%d] = %g is not the product of the fp16-rounded inputs %g (error %.3g > %.3g)", i, j, g, ref16, e, tol16)
					} else {
						maxHalfErr = max(maxHalfErr, e)
					}
					if math.Abs(w-ref16) > tol16 {
						cpuFailsHalf = true
					}
				}
			}
			if maxErr == 0 {
				t.Fatal("the result equals the fp32 CPU's exactly: the inputs were not rounded to fp16")
			}
			if !cpuFailsHalf {
				t.Fatal("the fp32 CPU result passes the fp16-product check: that check cannot tell fp16 from fp32")
			}
			t.Logf("max error vs fp32 CPU %.3g, vs fp16-input product %.3g", maxErr, maxHalfErr)
		})
	}
}

// randomNotHalf returns n normal values none of which fp16 represents exactly.
func randomNotHalf(rng *tensor.RNG, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		for {
			x[i] = float32(rng.Normal())
			if float16.Fromfloat32(x[i]).Float32() != x[i] {
				break
			}
		}
	}
	return x
}

// runMixed rounds a and bm to fp16 on the device and multiplies them there.
func runMixed(t *testing.T, b *Backend, kernel string, c mixedCase, a, bm []float32) []float32 {
	t.Helper()
	ar, ac := c.m, c.k
	if c.transA {
		ar, ac = ac, ar
	}
	br, bc := c.k, c.n
	if c.transB {
		br, bc = bc, br
	}
	a32, err := ops.FromHost(b, a, ar, ac)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(a32.Storage())
	b32, err := ops.FromHost(b, bm, br, bc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(b32.Storage())
	a16, err := b.AllocHalf(ar, ac)
	if err != nil {
		t.Fatal(err)
	}
	defer a16.Free()
	b16, err := b.AllocHalf(br, bc)
	if err != nil {
		t.Fatal(err)
	}
	defer b16.Free()
	if err := b.ToHalf(a16, a32); err != nil {
		t.Fatal(err)
	}
	if err := b.ToHalf(b16, b32); err != nil {
		t.Fatal(err)
	}
	d, err := b.Alloc(tensor.Shape{c.m, c.n})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(d.Storage())
	if err := b.matMulMixed(d, a16, b16, ops.MatMulParams{TransA: c.transA, TransB: c.transB}, kernel); err != nil {
		t.Fatal(err)
	}
	out, err := b.Download(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cpuMatMul is ops/cpu's fp32 MatMul of the unrounded inputs.
func cpuMatMul(t *testing.T, c mixedCase, a, bm []float32) []float32 {
	t.Helper()
	cb := cpu.New()
	ar, ac := c.m, c.k
	if c.transA {
		ar, ac = ac, ar
	}
	br, bc := c.k, c.n
	if c.transB {
		br, bc = bc, br
	}
	at, err := ops.FromHost(cb, a, 1, ar, ac)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := ops.FromHost(cb, bm, 1, br, bc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cb.Alloc(tensor.Shape{1, c.m, c.n})
	if err != nil {
		t.Fatal(err)
	}
	if err := cb.MatMul(d, at, bt, ops.MatMulParams{TransA: c.transA, TransB: c.transB}); err != nil {
		t.Fatal(err)
	}
	out, err := cb.Download(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMixedErrors: bad shapes and freed operands are errors, never panics or dispatches.
func TestMixedErrors(t *testing.T) {
	b := openMixed(t)
	a, err := b.AllocHalf(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free()
	d, _ := b.Alloc(tensor.Shape{3, 5})
	defer b.Release(d.Storage())
	if err := b.MatMulMixed(d, a, a, ops.MatMulParams{}); err == nil {
		t.Error("3×4 · 3×4 into 3×5 accepted")
	}
	x, _ := b.Alloc(tensor.Shape{3, 5})
	defer b.Release(x.Storage())
	if err := b.ToHalf(a, x); err == nil {
		t.Error("15 elements into a 3×4 fp16 matrix accepted")
	}
	if _, err := b.AllocHalf(0, 4); err == nil {
		t.Error("a 0×4 fp16 matrix allocated")
	}
	f, _ := b.AllocHalf(4, 5)
	f.Free()
	if err := b.MatMulMixed(d, a, f, ops.MatMulParams{}); err == nil {
		t.Error("a freed operand accepted")
	}
}

// TestValidationMixed runs the conversions, the mixed GEMM and the mixed convolutions under the
// validation layer with synchronization validation: no errors allowed.
func TestValidationMixed(t *testing.T) {
	b, err := Open(vkrt.Options{Validation: true})
	if err != nil {
		skipOrFail(t, err)
	}
	defer b.Close()
	if b.MixedKernel() == "" {
		t.Skipf("NO FP16 on %s", b.Device().Info.Name)
	}
	b.Device().ValidationMessages()
	rng := tensor.NewRNG(3, 0)
	c := mixedCase{m: 33, n: 17, k: 40, transB: true}
	for _, kernel := range []string{b.MixedKernel(), shaders.MatmulMixedCoopmatEmulated} {
		got := runMixed(t, b, kernel, c, randomNotHalf(rng, 33*40), randomNotHalf(rng, 17*40))
		if len(got) != 33*17 {
			t.Fatalf("%d results", len(got))
		}
	}
	// The mixed convolutions, each direction and output type, 3x3 and 1x1, the weight gradient
	// split along K, the emulated tensor-core forward (conv2d_mixed.go).
	for _, cc := range []mixedConvCase{
		{n: 2, c: 5, h: 30, w: 31, o: 7, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}, bias: true},
		{n: 2, c: 9, h: 5, w: 7, o: 6, kh: 1, kw: 1},
	} {
		xs, ws, ys := cc.shapes()
		x16 := uploadHalf(t, b, xs, randomNotHalf(rng, xs.Numel()))
		w16 := uploadHalf(t, b, ws, randomNotHalf(rng, ws.Numel()))
		gy16 := uploadHalf(t, b, ys, randomNotHalf(rng, ys.Numel()))
		var bias []float32
		if cc.bias {
			bias = randomNotHalf(rng, cc.o)
		}
		mixedOut(t, b, ys, func(dst, bt *tensor.Tensor) error { return b.Conv2DMixed(dst, x16, w16, bt, cc.p) }, bias)
		mixedOut(t, b, ys, func(dst, bt *tensor.Tensor) error {
			return b.conv2DMixedWith(dst, x16, w16, bt, cc.p, shaders.Conv2DMixedCoopmatEmulated)
		}, bias)
		mixedOutHalf(t, b, ys, func(dst *Half, bt *tensor.Tensor) error { return b.Conv2DMixedToHalf(dst, x16, w16, bt, cc.p) }, bias)
		mixedOut(t, b, xs, func(dst, _ *tensor.Tensor) error { return b.Conv2DGradInputMixed(dst, gy16, w16, cc.p) }, nil)
		mixedOutHalf(t, b, xs, func(dst *Half, _ *tensor.Tensor) error { return b.Conv2DGradInputMixedToHalf(dst, gy16, w16, cc.p) }, nil)
		mixedOut(t, b, ws, func(dst, _ *tensor.Tensor) error { return b.Conv2DGradWeightMixed(dst, x16, gy16, cc.p) }, nil)
		x16.Free()
		w16.Free()
		gy16.Free()
	}
	errs, warnings, text := b.Device().ValidationMessages()
	if errs > 0 {
		t.Fatalf("validation reported %d errors (and %d warnings):\n%s", errs, warnings, text)
	}
	if warnings > 0 {
		t.Logf("%d validation warnings:\n%s", warnings, text)
	}
}
