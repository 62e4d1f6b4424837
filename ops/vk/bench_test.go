package vk

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// Benchmarks run at the training size (batch 16, 352×352) unless CHNET_BENCH_BATCH and
// CHNET_BENCH_SIZE say otherwise; on lavapipe use e.g. CHNET_BENCH_BATCH=1 CHNET_BENCH_SIZE=88.

func BenchmarkConv2D(b *testing.B) {
	n, s := optest.BenchEnv()
	optest.BenchConv2D(b, open(b), optest.CHNetConvLayers(n, s))
}

func BenchmarkGEMM(b *testing.B) {
	sizes := []int{256, 1024, 4096}
	if v, err := strconv.Atoi(os.Getenv("CHNET_BENCH_GEMM")); err == nil && v > 0 {
		sizes = []int{v}
	}
	optest.BenchGEMM(b, open(b), sizes)
}

// BenchmarkCHNetTrainStep times whole CHNet training steps (forward, structure loss, backward,
// SGD) on random images, reporting images/s: the number to hold against PyTorch's 107 ms per
// batch-16 step in fp32 on the H100 (gpu.md).
func BenchmarkCHNetTrainStep(b *testing.B) {
	be := open(b)
	n, s := optest.BenchEnv()
	m, err := chnet.New(nn.Init{B: be, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
	if err != nil {
		b.Fatal(err)
	}
	opt, err := train.NewSGD(be, m, ops.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	if err != nil {
		b.Fatal(err)
	}
	rng := tensor.NewRNG(2, 0)
	img := make([]float32, n*3*s*s)
	mask := make([]float32, n*s*s)
	for i := range img {
		img[i] = float32(rng.Normal())
	}
	for i := range mask {
		mask[i] = float32(rng.Intn(2))
	}
	x, err := ops.FromHost(be, img, n, 3, s, s)
	if err != nil {
		b.Fatal(err)
	}
	y, err := ops.FromHost(be, mask, n, 1, s, s)
	if err != nil {
		b.Fatal(err)
	}
	step := func() {
		if _, err := train.Step(be, m, opt, x, y, ops.StructureLossOfficial); err != nil {
			b.Fatal(err)
		}
	}
	step() // pipelines and arena blocks are created here
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	before := be.dev.Stats()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		step()
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	el := time.Since(start)
	st := be.dev.Stats()
	b.ReportMetric(float64(n*b.N)/el.Seconds(), "img/s")
	b.ReportMetric(float64(el.Milliseconds())/float64(b.N), "ms/step")
	b.ReportMetric(float64(st.Dispatches-before.Dispatches)/float64(b.N), "dispatches/step")
	b.ReportMetric(float64(st.Barriers-before.Barriers)/float64(b.N), "barriers/step")
}

// BenchmarkRecordElementwise is the host cost of one small elementwise op through ops/vk
// (operand checks, kernel lookup, hazard tracking, one cgo call), on independent outputs so no
// barrier is needed. The device runs the work concurrently; a sync every 1000 ops is untimed.
func BenchmarkRecordElementwise(b *testing.B) {
	be := open(b)
	x, _ := be.Alloc(tensor.Shape{1, 64})
	out, _ := be.Alloc(tensor.Shape{1024, 64})
	defer be.Release(x.Storage())
	defer be.Release(out.Storage())
	if err := be.Fill(x, 1); err != nil {
		b.Fatal(err)
	}
	views := make([]*tensor.Tensor, 1024)
	for i := range views {
		views[i], _ = out.Narrow(0, i, 1)
	}
	be.Sync()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1000 == 999 {
			b.StopTimer()
			be.Sync()
			b.StartTimer()
		}
		if err := be.Unary(ops.ReLU, views[i%1024], x); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	be.Sync()
}
