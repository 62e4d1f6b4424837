package cpu

import (
	"syscall"
	"testing"
	"time"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// convBench is one CHNet convolution at batch 16 (or 1) and 352×352 input: Res2Net-50 v1 26w×4s
// (stem, layers 1–3) and the unfactorized head's first classifier conv. bench/torchref/torchref.py
// times the same list in PyTorch; keep the two in step.
type convBench struct {
	name          string
	n, c, h, w, o int
	k             int
	p             ops.Conv2DParams
	bias          bool
}

var convBenches = []convBench{
	{name: "stem_7x7_s2_b16", n: 16, c: 3, h: 352, w: 352, o: 64, k: 7, p: ops.Conv2DParams{Stride: 2, Pad: 3}},
	{name: "layer1_3x3_b16", n: 16, c: 26, h: 88, w: 88, o: 26, k: 3, p: ops.Conv2DParams{Pad: 1}},
	{name: "layer1_1x1_64to104_b16", n: 16, c: 64, h: 88, w: 88, o: 104, k: 1},
	{name: "layer2_3x3_s2_b16", n: 16, c: 52, h: 88, w: 88, o: 52, k: 3, p: ops.Conv2DParams{Stride: 2, Pad: 1}},
	{name: "layer2_3x3_b16", n: 16, c: 52, h: 44, w: 44, o: 52, k: 3, p: ops.Conv2DParams{Pad: 1}},
	{name: "layer2_3x3_b1", n: 1, c: 52, h: 44, w: 44, o: 52, k: 3, p: ops.Conv2DParams{Pad: 1}},
	{name: "layer2_1x1_512to208_b16", n: 16, c: 512, h: 44, w: 44, o: 208, k: 1},
	{name: "layer3_3x3_b16", n: 16, c: 104, h: 22, w: 22, o: 104, k: 3, p: ops.Conv2DParams{Pad: 1}},
	{name: "layer3_1x1_416to1024_b16", n: 16, c: 416, h: 22, w: 22, o: 1024, k: 1},
	{name: "head_1x1_256to32_b16", n: 16, c: 256, h: 352, w: 352, o: 32, k: 1, bias: true},
}

// BenchmarkConv2D times one forward and both gradients per iteration. It reports the total as
// ms/op and GFLOP/s (each of the three is 2·N·O·OH·OW·C·k² operations) and each part's ms. The
// head case holds about 5 GB; run it with a small -benchtime such as 3x.
func BenchmarkConv2D(b *testing.B) {
	for _, cb := range convBenches {
		b.Run(cb.name, func(b *testing.B) { cb.run(b) })
	}
}

// benchTensor returns a contiguous tensor filled with a fixed pattern in [-1, 1): timing does not
// depend on the values, and a pattern fills gigabytes much faster than a generator.
func benchTensor(b *testing.B, shape ...int) *tensor.Tensor {
	d := make([]float32, tensor.Shape(shape).Numel())
	for i := range d[:min(len(d), 251)] {
		d[i] = float32(i)/125.5 - 1
	}
	// Doubling copies: the head's 2 GB input fills in well under a second.
	for n := 251; n < len(d); n *= 2 {
		copy(d[n:], d[:n])
	}
	t, err := tensor.FromSlice(d, shape...)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func (cb convBench) run(b *testing.B) {
	p := cb.p.Norm()
	oh, ow := p.OutSize(cb.h, cb.k), p.OutSize(cb.w, cb.k)
	x := benchTensor(b, cb.n, cb.c, cb.h, cb.w)
	w := benchTensor(b, cb.o, cb.c/p.Groups, cb.k, cb.k)
	var bias *tensor.Tensor
	if cb.bias {
		bias = benchTensor(b, cb.o)
	}
	y, gy := benchTensor(b, cb.n, cb.o, oh, ow), benchTensor(b, cb.n, cb.o, oh, ow)
	gx, gw := benchTensor(b, cb.n, cb.c, cb.h, cb.w), benchTensor(b, cb.o, cb.c/p.Groups, cb.k, cb.k)
	be := New()
	var phase [3]time.Duration
	step := func() {
		t0 := time.Now()
		if err := be.Conv2D(y, x, w, bias, p); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := be.Conv2DGradInput(gx, gy, w, p); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := be.Conv2DGradWeight(gw, x, gy, p); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		phase[0] += t1.Sub(t0)
		phase[1] += t2.Sub(t1)
		phase[2] += t3.Sub(t2)
	}
	step() // warm the scratch pools outside the timed loop
	phase = [3]time.Duration{}
	cpu0 := cpuTime()
	for b.Loop() {
		step()
	}
	cpu := cpuTime() - cpu0
	flops := 3 * 2 * float64(cb.n*cb.o*oh*ow*cb.c/p.Groups*cb.k*cb.k)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(flops/perOp/1e9, "GFLOP/s")
	b.ReportMetric(perOp*1e3, "ms/op")
	for i, unit := range []string{"fwd-ms", "gin-ms", "gw-ms"} {
		b.ReportMetric(phase[i].Seconds()*1e3/float64(b.N), unit)
	}
	// CPU time (all threads) per op: about workers × ms/op when every worker is busy, and a
	// measure of work that other processes on the machine do not inflate.
	b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
