package vk

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
	"github.com/x448/float16"
)

// mixedConvCase is a convolution of an [n c h w] input with an [o c/groups kh kw] weight.
type mixedConvCase struct {
	n, c, h, w, o, kh, kw int
	p                     ops.Conv2DParams
	bias                  bool
	sliceDW               bool // the weight gradient goes into a slice of a wider weight
	splitK                bool // the weight gradient's K is split: check that, and both ways of summing
}

func (c mixedConvCase) String() string {
	p := c.p.Norm()
	return fmt.Sprintf("n%d_c%d_%dx%d_o%d_k%dx%d_s%d_p%d_d%d_g%d", c.n, c.c, c.h, c.w, c.o, c.kh, c.kw, p.Stride, p.Pad, p.Dilation, p.Groups)
}

func (c mixedConvCase) shapes() (x, w, y tensor.Shape) {
	p := c.p.Norm()
	return tensor.Shape{c.n, c.c, c.h, c.w}, tensor.Shape{c.o, c.c / p.Groups, c.kh, c.kw},
		tensor.Shape{c.n, c.o, p.OutSize(c.h, c.kh), p.OutSize(c.w, c.kw)}
}

// mixedConvCases are odd shapes: odd channel counts, groups, stride 2, padding, dilation, 1x1
// (direct and strided), 3x3 and 7x7, batches over 1, and GEMM sizes off lavapipe's 32×32×8 tile
// (M over one tile, long K, a split-K weight gradient, into a slice too).
var mixedConvCases = []mixedConvCase{
	{n: 2, c: 3, h: 9, w: 9, o: 5, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}, bias: true},
	{n: 1, c: 6, h: 11, w: 10, o: 4, kh: 3, kw: 3, p: ops.Conv2DParams{Stride: 2, Pad: 1, Groups: 2}},
	{n: 2, c: 5, h: 13, w: 12, o: 7, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 2, Dilation: 2}, bias: true},
	{n: 1, c: 3, h: 15, w: 17, o: 9, kh: 7, kw: 7, p: ops.Conv2DParams{Stride: 2, Pad: 3}},
	{n: 2, c: 33, h: 7, w: 5, o: 17, kh: 1, kw: 1, bias: true},
	{n: 1, c: 9, h: 9, w: 9, o: 6, kh: 1, kw: 1, p: ops.Conv2DParams{Groups: 3}},
	{n: 1, c: 8, h: 9, w: 11, o: 6, kh: 1, kw: 1, p: ops.Conv2DParams{Stride: 2}},
	{n: 3, c: 13, h: 21, w: 19, o: 37, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}, bias: true},
	{n: 2, c: 5, h: 30, w: 31, o: 7, kh: 3, kw: 3, p: ops.Conv2DParams{Pad: 1}, sliceDW: true, splitK: true},
}

// The tolerances. u = 2^-11 is fp16's unit roundoff, v = 2^-24 fp32's. An output is a sum of K
// products a·b (K = C/groups·KH·KW forward, O/groups·KH·KW for the input gradient, images·OH·OW
// for the weight gradient), plus a bias. Let S = Σ|a||b| (+|bias|) and S16 the same of the
// fp16-rounded inputs. Rounding both inputs moves a product by at most (2u+u²)|a||b|; a sum of
// K terms in fp32, in any order and with the bias, is off by at most γ = (K+1)v times the sum of
// the terms' magnitudes. So, per element,
//
//	|got − cpu(fp16-rounded inputs)| ≤ 2γ·S16                    (tight: both sum in fp32)
//	|got − cpu(fp32 inputs)|         ≤ (2u+u²)·S + γ·S + γ·(1+u)²·S
//
// with S and S16 themselves computed by the CPU convolution of |a| and |b| in fp32 (so
// multiplied by 1+γ to cover their own rounding). The tight bound is about 2^12/K times narrower
// than the loose one, so where K is small a kernel ignoring fp16 (the fp32 CPU result itself)
// fails it; for long sums (the split-K weight gradient, K in the thousands) the worst-case fp32
// bound outgrows the typical fp16 rounding effect (which grows as √K) and cannot tell. The test
// therefore requires, per kernel, at least one case where the fp32 result fails the tight check.
// fp16 outputs must equal the fp16 rounding of the fp32-output kernel's result bit for bit: the
// same sums, rounded once to nearest even.
const (
	halfU = 0x1p-11
	halfV = 0x1p-24
)

// mixedBounds are the per-element tolerances for k-term sums.
func mixedBounds(k int, s, s16 float64) (loose, tight float64) {
	g := float64(k+1) * halfV
	loose = (1 + g) * s * (2*halfU + halfU*halfU + g + g*(1+halfU)*(1+halfU))
	tight = (1 + g) * s16 * 2 * g
	return
}

// TestConv2DMixed checks the three mixed convolutions (forward, input gradient, weight gradient;
// fp32 and fp16 outputs) against ops/cpu's fp32 convolutions on every case, within the bounds
// above.
func TestConv2DMixed(t *testing.T) {
	b := openMixed(t)
	rng := tensor.NewRNG(1414, 0)
	var told [3]bool // per direction: some case's tight check rejected the fp32 result
	for _, c := range mixedConvCases {
		t.Run(c.String(), func(t *testing.T) { testConv2DMixed(t, b, rng, c, &told) })
	}
	for dir, ok := range told {
		if !ok && !t.Failed() {
			t.Errorf("%v: no case's fp16-input check rejects the fp32 result: the test cannot tell fp16 from fp32", convDir(dir))
		}
	}
}

func testConv2DMixed(t *testing.T, b *Backend, rng *tensor.RNG, c mixedConvCase, told *[3]bool) {
	xs, ws, ys := c.shapes()
	p := c.p.Norm()
	x, w, gy := randomNotHalf(rng, xs.Numel()), randomNotHalf(rng, ws.Numel()), randomNotHalf(rng, ys.Numel())
	var bias []float32
	if c.bias {
		bias = randomNotHalf(rng, c.o)
	}
	x16, w16, gy16 := uploadHalf(t, b, xs, x), uploadHalf(t, b, ws, w), uploadHalf(t, b, ys, gy)
	defer x16.Free()
	defer w16.Free()
	defer gy16.Free()
	ref := func(dir convDir, a, bm []float32) []float32 { return cpuConv(t, dir, c, a, bm, bias) }
	refAbs := func(dir convDir, a, bm []float32) []float32 {
		return cpuConv(t, dir, c, absAll(a), absAll(bm), absAll(bias))
	}

	t.Run("forward", func(t *testing.T) {
		k := c.c / p.Groups * c.kh * c.kw
		ref32, ref16 := ref(convForward, x, w), ref(convForward, halfRound(x), halfRound(w))
		abs32, abs16 := refAbs(convForward, x, w), refAbs(convForward, halfRound(x), halfRound(w))
		got := mixedOut(t, b, ys, func(dst *tensor.Tensor, bt *tensor.Tensor) error { return b.Conv2DMixed(dst, x16, w16, bt, c.p) }, bias)
		if checkMixed(t, k, got, ref32, ref16, abs32, abs16) {
			told[convForward] = true
		}
		got16 := mixedOutHalf(t, b, ys, func(dst *Half, bt *tensor.Tensor) error { return b.Conv2DMixedToHalf(dst, x16, w16, bt, c.p) }, bias)
		checkRoundedOutput(t, got, got16)
		// The tensor-core kernel's tiling, gather and store, its fragments emulated (the form
		// lavapipe can run), within the same bounds.
		gotC := mixedOut(t, b, ys, func(dst *tensor.Tensor, bt *tensor.Tensor) error {
			return b.conv2DMixedWith(dst, x16, w16, bt, c.p, shaders.Conv2DMixedCoopmatEmulated)
		}, bias)
		checkMixed(t, k, gotC, ref32, ref16, abs32, abs16)
	})
	bias = nil // the gradients have none
	t.Run("grad_input", func(t *testing.T) {
		k := c.o / p.Groups * c.kh * c.kw
		got := mixedOut(t, b, xs, func(dst *tensor.Tensor, _ *tensor.Tensor) error { return b.Conv2DGradInputMixed(dst, gy16, w16, c.p) }, nil)
		if checkMixed(t, k, got, ref(convGradInput, gy, w), ref(convGradInput, halfRound(gy), halfRound(w)),
			refAbs(convGradInput, gy, w), refAbs(convGradInput, halfRound(gy), halfRound(w))) {
			told[convGradInput] = true
		}
		got16 := mixedOutHalf(t, b, xs, func(dst *Half, _ *tensor.Tensor) error { return b.Conv2DGradInputMixedToHalf(dst, gy16, w16, c.p) }, nil)
		checkRoundedOutput(t, got, got16)
	})
	t.Run("grad_weight", func(t *testing.T) {
		k := c.n * ys[2] * ys[3]
		got := mixedGradWeight(t, b, c, x16, gy16)
		if c.splitK {
			// The reduction kernel instead of the in-kernel fix-up: more than one dispatch
			// (K was split), and the same sums in the same order.
			defer func(v bool) { splitKFixup = v }(splitKFixup)
			splitKFixup = false
			before := b.dev.Stats().Dispatches
			reduced := mixedGradWeight(t, b, c, x16, gy16)
			if n := b.dev.Stats().Dispatches - before; n < 2 {
				t.Fatalf("the weight gradient took %d dispatches without the fix-up: K was not split", n)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(reduced[i]) {
					t.Fatalf("[%d]: %g summed in the kernel, %g by the reduction kernel", i, got[i], reduced[i])
				}
			}
		}
		if checkMixed(t, k, got, ref(convGradWeight, x, gy), ref(convGradWeight, halfRound(x), halfRound(gy)),
			refAbs(convGradWeight, x, gy), refAbs(convGradWeight, halfRound(x), halfRound(gy))) {
			told[convGradWeight] = true
		}
	})
}

// checkMixed applies the bounds to every element and says whether the tight one rejects the
// fp32 result somewhere.
func checkMixed(t *testing.T, k int, got, ref32, ref16, abs32, abs16 []float32) (cpuFailsTight bool) {
	t.Helper()
	if len(got) != len(ref32) {
		t.Fatalf("%d results, want %d", len(got), len(ref32))
	}
	var maxErr, maxErr16 float64
	for i, g := range got {
		loose, tight := mixedBounds(k, float64(abs32[i]), float64(abs16[i]))
		if e := math.Abs(float64(g) - float64(ref32[i])); e > loose {
			t.Fatalf("[%d] = %g, fp32 CPU %g: error %.3g > fp16 bound %.3g (K %d)", i, g, ref32[i], e, loose, k)
		} else {
			maxErr = max(maxErr, e)
		}
		if e := math.Abs(float64(g) - float64(ref16[i])); e > tight {
			t.Fatalf("[%d] = %g is not the convolution of the fp16-rounded inputs %g (error %.3g > %.3g, K %d)", i, g, ref16[i], e, tight, k)
		} else {
			maxErr16 = max(maxErr16, e)
		}
		if math.Abs(float64(ref32[i])-float64(ref16[i])) > tight {
			cpuFailsTight = true
		}
	}
	if maxErr == 0 {
		t.Fatal("the result equals the fp32 CPU's exactly: the inputs were not rounded to fp16")
	}
	t.Logf("K %d: max error vs fp32 CPU %.3g, vs CPU on fp16-rounded inputs %.3g; fp32 result rejected: %v", k, maxErr, maxErr16, cpuFailsTight)
	return cpuFailsTight
}

// checkRoundedOutput: an fp16 result is the fp32 result rounded to nearest even, exactly.
func checkRoundedOutput(t *testing.T, got32 []float32, got16 []uint16) {
	t.Helper()
	for i, v := range got32 {
		if want := float16.Fromfloat32(v).Bits(); got16[i] != want {
			t.Fatalf("fp16 output [%d] = %#04x, want %#04x (fp16 of the fp32 output %g)", i, got16[i], want, v)
		}
	}
}

type convDir int

const (
	convForward    convDir = iota // y = conv(a = x, b = w) + bias
	convGradInput                 // dx from a = dy, b = w
	convGradWeight                // dw from a = x, b = dy
)

func (d convDir) String() string { return [...]string{"forward", "grad input", "grad weight"}[d] }

// cpuConv runs ops/cpu's fp32 convolution in direction dir.
func cpuConv(t *testing.T, dir convDir, c mixedConvCase, a, bm, bias []float32) []float32 {
	t.Helper()
	cb := cpu.New()
	xs, ws, ys := c.shapes()
	in := func(v []float32, s tensor.Shape) *tensor.Tensor {
		tt, err := ops.FromHost(cb, v, s...)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	var dst *tensor.Tensor
	var err error
	switch dir {
	case convForward:
		var bt *tensor.Tensor
		if bias != nil {
			bt = in(bias, tensor.Shape{c.o})
		}
		if dst, err = cb.Alloc(ys); err == nil {
			err = cb.Conv2D(dst, in(a, xs), in(bm, ws), bt, c.p.Norm())
		}
	case convGradInput:
		if dst, err = cb.Alloc(xs); err == nil {
			err = cb.Conv2DGradInput(dst, in(a, ys), in(bm, ws), c.p.Norm())
		}
	case convGradWeight:
		if dst, err = cb.Alloc(ws); err == nil {
			err = cb.Conv2DGradWeight(dst, in(a, xs), in(bm, ys), c.p.Norm())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := cb.Download(dst)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uploadHalf puts v, rounded to nearest even on the host (x448/float16, which ToHalf matches
// bit for bit: TestHalfFromFloat), into a new fp16 array.
func uploadHalf(t *testing.T, b *Backend, shape tensor.Shape, v []float32) *Half {
	t.Helper()
	h, err := b.AllocHalf(shape...)
	if err != nil {
		t.Fatal(err)
	}
	bits := make([]uint16, len(v))
	for i, f := range v {
		bits[i] = float16.Fromfloat32(f).Bits()
	}
	if err := b.UploadHalf(h, bits); err != nil {
		t.Fatal(err)
	}
	return h
}

func halfRound(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float16.Fromfloat32(f).Float32()
	}
	return out
}

func absAll(v []float32) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(math.Abs(float64(f)))
	}
	return out
}

// mixedOut runs f into a new fp32 tensor of shape s (with bias uploaded when given).
func mixedOut(t *testing.T, b *Backend, s tensor.Shape, f func(dst, bias *tensor.Tensor) error, bias []float32) []float32 {
	t.Helper()
	dst, err := b.Alloc(s)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(dst.Storage())
	bt := deviceBias(t, b, bias)
	if bt != nil {
		defer b.Release(bt.Storage())
	}
	if err := f(dst, bt); err != nil {
		t.Fatal(err)
	}
	out, err := b.Download(dst)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mixedOutHalf runs f into a new fp16 array of shape s and returns its bits.
func mixedOutHalf(t *testing.T, b *Backend, s tensor.Shape, f func(dst *Half, bias *tensor.Tensor) error, bias []float32) []uint16 {
	t.Helper()
	dst, err := b.AllocHalf(s...)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Free()
	bt := deviceBias(t, b, bias)
	if bt != nil {
		defer b.Release(bt.Storage())
	}
	if err := f(dst, bt); err != nil {
		t.Fatal(err)
	}
	out, err := b.DownloadHalf(dst)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deviceBias(t *testing.T, b *Backend, bias []float32) *tensor.Tensor {
	t.Helper()
	if bias == nil {
		return nil
	}
	bt, err := ops.FromHost(b, bias, len(bias))
	if err != nil {
		t.Fatal(err)
	}
	return bt
}

// mixedGradWeight computes the weight gradient into a dense tensor, or (sliceDW) into input
// channels [2, 2+C/groups) of a wider weight, and returns those values, dense.
func mixedGradWeight(t *testing.T, b *Backend, c mixedConvCase, x16, gy16 *Half) []float32 {
	t.Helper()
	_, ws, _ := c.shapes()
	if !c.sliceDW {
		return mixedOut(t, b, ws, func(dst, _ *tensor.Tensor) error { return b.Conv2DGradWeightMixed(dst, x16, gy16, c.p) }, nil)
	}
	wide := ws.Clone()
	wide[1] += 5
	parent, err := b.Alloc(wide)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(parent.Storage())
	if err := b.Fill(parent, 7); err != nil {
		t.Fatal(err)
	}
	dw, err := parent.Narrow(1, 2, ws[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Conv2DGradWeightMixed(dw, x16, gy16, c.p); err != nil {
		t.Fatal(err)
	}
	all, err := b.Download(parent)
	if err != nil {
		t.Fatal(err)
	}
	inner := wide[1] * ws[2] * ws[3]
	per := ws[1] * ws[2] * ws[3]
	var out []float32
	for o := 0; o < ws[0]; o++ {
		row := all[o*inner : (o+1)*inner]
		for i, v := range row {
			if (i < 2*ws[2]*ws[3] || i >= 2*ws[2]*ws[3]+per) && v != 7 {
				t.Fatalf("the weight gradient wrote outside its slice: row %d element %d = %g", o, i, v)
			}
		}
		out = append(out, row[2*ws[2]*ws[3]:2*ws[2]*ws[3]+per]...)
	}
	return out
}

// TestConv2DMixedErrors: a freed, missing or misshapen operand is an error naming it, never a
// panic or a dispatch.
func TestConv2DMixedErrors(t *testing.T) {
	b := openMixed(t)
	alloc := func(dims ...int) *Half {
		h, err := b.AllocHalf(dims...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Free)
		return h
	}
	x, w, gy := alloc(2, 4, 8, 8), alloc(6, 4, 3, 3), alloc(2, 6, 6, 6)
	y, err := b.Alloc(tensor.Shape{2, 6, 6, 6})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(y.Storage())
	freed := alloc(2, 4, 8, 8)
	freed.Free()
	dw, _ := b.Alloc(tensor.Shape{6, 4, 3, 3})
	defer b.Release(dw.Storage())
	gx, _ := b.Alloc(tensor.Shape{2, 4, 8, 8})
	defer b.Release(gx.Storage())
	bias, _ := b.Alloc(tensor.Shape{5})
	defer b.Release(bias.Storage())
	dw2, err := dw.Reshape(6, 36)
	if err != nil {
		t.Fatal(err)
	}
	p := ops.Conv2DParams{}
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"freed input", "input: fp16 array is nil or freed", b.Conv2DMixed(y, freed, w, nil, p)},
		{"nil weight", "weight: fp16 array is nil or freed", b.Conv2DMixed(y, x, nil, nil, p)},
		{"2-D weight", "weight: fp16 array [6 36] must have 4 dimensions", b.Conv2DMixed(y, x, alloc(6, 36), nil, p)},
		{"wrong output", "does not match", b.Conv2DMixed(y, x, w, nil, ops.Conv2DParams{Pad: 1})},
		{"wrong channels", "do not match groups", b.Conv2DMixed(y, x, alloc(6, 3, 3, 3), nil, p)},
		{"bias size", "bias [5] for 6 output channels", b.Conv2DMixed(y, x, w, bias, p)},
		{"nil output", "output: nil tensor", b.Conv2DMixed(nil, x, w, nil, p)},
		{"fp16 output shape", "does not match", b.Conv2DMixedToHalf(alloc(2, 6, 7, 6), x, w, nil, p)},
		{"grad input: freed gradient", "output gradient: fp16 array is nil or freed", b.Conv2DGradInputMixed(gx, freed, w, p)},
		{"grad input: wrong result", "do not match groups", b.Conv2DGradInputMixed(y, gy, w, p)},
		{"grad weight: nil input", "input: fp16 array is nil or freed", b.Conv2DGradWeightMixed(dw, nil, gy, p)},
		{"grad weight: 2-D result", "weight gradient [6 36] must have 4 dimensions", b.Conv2DGradWeightMixed(dw2, x, gy, p)},
	} {
		if c.err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, c.err, c.want)
		}
	}
}
