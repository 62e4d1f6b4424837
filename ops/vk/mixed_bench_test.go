package vk

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// BenchmarkMatMulPrecision times one N×N×N matrix product per iteration, reporting TFLOP/s
// (2N³ per product): fp32 (the matmul kernel, fp32 in and out), mixed (fp16 in, fp32 sums and
// out, with the kernel MatMulMixed picks: tensor cores where offered) and, on such a device, the
// scalar mixed kernel too. Conversions to fp16 happen once, outside the timing. Sizes:
// CHNET_BENCH_GEMM (one size), else 256, 1024 and 4096 (use a small one on lavapipe).
// cmd/vkprobe/gpu-check.sh runs it at 4096 on a GPU:
//
//	vk.test -test.run '^$' -test.bench MatMulPrecision -test.benchtime 30x
func BenchmarkMatMulPrecision(b *testing.B) {
	be := open(b)
	sizes := []int{256, 1024, 4096}
	if v, err := strconv.Atoi(os.Getenv("CHNET_BENCH_GEMM")); err == nil && v > 0 {
		sizes = []int{v}
	}
	for _, n := range sizes {
		rng := tensor.NewRNG(8, 0)
		x := make([]float32, n*n)
		for i := range x {
			x[i] = float32(rng.Uniform(-1, 1))
		}
		a, err := ops.FromHost(be, x, 1, n, n)
		if err != nil {
			b.Fatal(err)
		}
		w, err := ops.FromHost(be, x, 1, n, n)
		if err != nil {
			b.Fatal(err)
		}
		d, err := be.Alloc(tensor.Shape{1, n, n})
		if err != nil {
			b.Fatal(err)
		}
		flops := 2 * float64(n) * float64(n) * float64(n)
		b.Run(fmt.Sprintf("fp32/%d", n), func(b *testing.B) {
			timeKernel(b, be, flops, func() error { return be.MatMul(d, a, w, ops.MatMulParams{}) })
		})
		if be.MixedKernel() != "" {
			a16, err := be.AllocHalf(n, n)
			if err != nil {
				b.Fatal(err)
			}
			w16, err := be.AllocHalf(n, n)
			if err != nil {
				b.Fatal(err)
			}
			d2, err := d.Reshape(n, n)
			if err != nil {
				b.Fatal(err)
			}
			if err := be.ToHalf(a16, a); err != nil {
				b.Fatal(err)
			}
			if err := be.ToHalf(w16, w); err != nil {
				b.Fatal(err)
			}
			mixed := func() error { return be.MatMulMixed(d2, a16, w16, ops.MatMulParams{}) }
			b.Run(fmt.Sprintf("mixed/%d", n), func(b *testing.B) {
				b.Logf("kernel %s on %s", be.MixedKernel(), be.Device().Info.Name)
				timeKernel(b, be, flops, mixed)
			})
			if be.MixedKernel() != shaders.MatmulMixed {
				b.Run(fmt.Sprintf("mixed-scalar/%d", n), func(b *testing.B) {
					b.Setenv("CHNET_VK_COOPMAT", "0")
					timeKernel(b, be, flops, mixed)
				})
			}
			a16.Free()
			w16.Free()
		} else {
			b.Logf("no fp16 on %s: mixed not measured", be.Device().Info.Name)
		}
		be.Release(a.Storage())
		be.Release(w.Storage())
		be.Release(d.Storage())
	}
}

// timeKernel reports TFLOP/s of fn (one kernel launch), timed by optest.TimeKernel.
func timeKernel(b *testing.B, be *Backend, flops float64, fn func() error) {
	b.Helper()
	b.ReportMetric(flops/optest.TimeKernel(b, be, fn)/1e12, "TFLOP/s")
}
