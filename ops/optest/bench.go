package optest

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ConvLayer is one convolution shape of CHNet's training step.
type ConvLayer struct {
	Name string
	X, W []int // input [N C H W] and weight [O C/groups KH KW]
	P    ops.Conv2DParams
}

// MACs is the layer's multiply-adds (PyTorch's FLOPs are twice these).
func (l ConvLayer) MACs() int64 {
	p := l.P.Norm()
	oh, ow := p.OutSize(l.X[2], l.W[2]), p.OutSize(l.X[3], l.W[3])
	return int64(l.X[0]) * int64(l.W[0]) * int64(oh*ow) * int64(l.W[1]*l.W[2]*l.W[3])
}

// CHNetConvLayers lists the distinct convolutions of a CHNet training step (Res2Net-50 26w4s
// through layer3 plus the released head) at batch n and s×s input: the stem, the first and
// later blocks of each stage (a 1x1 in, the 26/52/104-wide 3x3 splits, a 1x1 out, the
// downsampling shortcut), and the head's per-feature 1x1s.
func CHNetConvLayers(n, s int) []ConvLayer {
	q := func(d int) int { return s / d }
	l := func(name string, c, h, o, k, stride int) ConvLayer {
		return ConvLayer{fmt.Sprintf("%s_b%d", name, n), []int{n, c, h, h}, []int{o, c, k, k}, ops.Conv2DParams{Stride: stride, Pad: k / 2}}
	}
	return []ConvLayer{
		l("stem_7x7_s2", 3, s, 64, 7, 2),
		l("layer1_1x1_in", 256, q(4), 104, 1, 1),
		l("layer1_3x3", 26, q(4), 26, 3, 1),
		l("layer1_1x1_out", 104, q(4), 256, 1, 1),
		l("layer2_1x1_in", 256, q(4), 208, 1, 1),
		l("layer2_3x3_s2", 52, q(4), 52, 3, 2),
		l("layer2_3x3", 52, q(8), 52, 3, 1),
		l("layer2_1x1_out", 208, q(8), 512, 1, 1),
		l("layer2_downsample", 256, q(8), 512, 1, 1),
		l("layer3_1x1_in", 512, q(8), 416, 1, 1),
		l("layer3_3x3", 104, q(16), 104, 3, 1),
		l("layer3_1x1_out", 416, q(16), 1024, 1, 1),
		l("head_tf1_1x1", 64, q(2), 64, 1, 1),
		l("head_cls0_1x1", 64, q(2), 32, 1, 1),
	}
}

// BenchEnv reads the benchmark size from CHNET_BENCH_BATCH and CHNET_BENCH_SIZE (default 16
// and 352, the training recipe; lavapipe wants 1 and 88).
func BenchEnv() (batch, size int) {
	batch, size = 16, 352
	if v, err := strconv.Atoi(os.Getenv("CHNET_BENCH_BATCH")); err == nil && v > 0 {
		batch = v
	}
	if v, err := strconv.Atoi(os.Getenv("CHNET_BENCH_SIZE")); err == nil && v >= 32 {
		size = v
	}
	return batch, size
}

// benchKernel times fn (one kernel launch) with TimeKernel and reports GFLOP/s for flops per
// call.
func benchKernel(b *testing.B, be ops.Backend, flops float64, fn func() error) {
	b.Helper()
	b.ReportMetric(flops/TimeKernel(b, be, fn)/1e9, "GFLOP/s")
}

// TimeKernel runs fn once untimed (pipeline creation), then b.N times, and returns the seconds
// per call over the whole timed span, the wait for the device included.
func TimeKernel(b *testing.B, be ops.Backend, fn func() error) float64 {
	b.Helper()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	return b.Elapsed().Seconds() / float64(b.N)
}

func benchTensor(b *testing.B, be ops.Backend, rng *tensor.RNG, shape []int) *tensor.Tensor {
	b.Helper()
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = float32(rng.Uniform(-1, 1))
	}
	x, err := ops.FromHost(be, v, shape...)
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// BenchConv2D times each CHNet convolution forward and both gradients on be
// (BenchmarkConv2D/layer2_3x3_b16/forward ...), reporting GFLOP/s.
func BenchConv2D(b *testing.B, be ops.Backend, layers []ConvLayer) {
	for _, l := range layers {
		b.Run(l.Name, func(b *testing.B) {
			rng := tensor.NewRNG(5, 0)
			p := l.P.Norm()
			x, w := benchTensor(b, be, rng, l.X), benchTensor(b, be, rng, l.W)
			y := benchTensor(b, be, rng, []int{l.X[0], l.W[0], p.OutSize(l.X[2], l.W[2]), p.OutSize(l.X[3], l.W[3])})
			gx, _ := be.Alloc(x.Shape())
			gw, _ := be.Alloc(w.Shape())
			defer func() {
				for _, t := range []*tensor.Tensor{x, w, y, gx, gw} {
					if t != nil {
						be.Release(t.Storage())
					}
				}
			}()
			if gx == nil || gw == nil {
				b.Fatal("allocation failed")
			}
			flops := 2 * float64(l.MACs())
			b.Run("forward", func(b *testing.B) {
				benchKernel(b, be, flops, func() error { return be.Conv2D(y, x, w, nil, p) })
			})
			b.Run("grad_input", func(b *testing.B) {
				benchKernel(b, be, flops, func() error { return be.Conv2DGradInput(gx, y, w, p) })
			})
			b.Run("grad_weight", func(b *testing.B) {
				benchKernel(b, be, flops, func() error { return be.Conv2DGradWeight(gw, x, y, p) })
			})
		})
	}
}

// BenchGEMM times square fp32 matrix products C = A·B of each size, as 1x1 convolutions
// (one image of n×1 pixels, n channels in and out), reporting GFLOP/s: the number to hold
// against a plain tiled SGEMM shader (16.5 TFLOP/s at 4096 on the H100, gpu.md).
func BenchGEMM(b *testing.B, be ops.Backend, sizes []int) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			rng := tensor.NewRNG(6, 0)
			x, w := benchTensor(b, be, rng, []int{1, n, n, 1}), benchTensor(b, be, rng, []int{n, n, 1, 1})
			y, err := be.Alloc(tensor.Shape{1, n, n, 1})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				be.Release(x.Storage())
				be.Release(w.Storage())
				be.Release(y.Storage())
			}()
			p := ops.Conv2DParams{}.Norm()
			benchKernel(b, be, 2*float64(n)*float64(n)*float64(n), func() error { return be.Conv2D(y, x, w, nil, p) })
		})
	}
}
