package vk

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// The last workgroup of each batch-norm reduction (statistics, gradient sums) finds itself by a
// per-channel counter and resets it: after forward and backward passes the whole counter ring
// reads zero again, and calls that reuse the same counters give the same bits.
func TestBatchNormCountersReset(t *testing.T) {
	b := open(t)
	// 150×131 values per item and channel: several workgroups per channel.
	shape := tensor.Shape{2, 3, 150, 131}
	rng := tensor.NewRNG(3, 0)
	normal := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.Normal())
		}
		return v
	}
	in := func(v []float32, s ...int) *tensor.Tensor {
		x, err := ops.FromHost(b, v, s...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	n, c := shape.Numel(), shape[1]
	x, res, gy := in(normal(n), shape...), in(normal(n), shape...), in(normal(n), shape...)
	gamma, beta := in(normal(c), c), in(normal(c), c)
	run := func() [][]float32 {
		rm, rv := in(make([]float32, c), c), in(slices.Repeat([]float32{1}, c), c)
		outs := make([]*tensor.Tensor, 8)
		for i, s := range []tensor.Shape{shape, {c}, {c}, shape, {c}, {c}, shape} {
			var err error
			if outs[i], err = b.Alloc(s); err != nil {
				t.Fatal(err)
			}
		}
		outs[7] = rv
		y, mean, inv, gx, gg, gb, gr := outs[0], outs[1], outs[2], outs[3], outs[4], outs[5], outs[6]
		if err := b.BatchNormTrain(y, mean, inv, x, gamma, beta, rm, rv, res, true, ops.DefaultBatchNorm); err != nil {
			t.Fatal(err)
		}
		if err := b.BatchNormGrad(gx, gg, gb, gr, gy, nil, x, y, gamma, mean, inv, true); err != nil {
			t.Fatal(err)
		}
		vals := make([][]float32, len(outs))
		for i, o := range outs {
			v, err := b.Download(o)
			if err != nil {
				t.Fatal(err)
			}
			vals[i] = v
		}
		return vals
	}
	b.mu.Lock()
	start := b.counterNext
	b.mu.Unlock()
	first := run()
	raw := make([]byte, 4*bnCounterSlots)
	if err := b.dev.Download(b.counters, []vkrt.Region{{Off: 0, Size: 4 * bnCounterSlots}}, raw); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < bnCounterSlots; i++ {
		if v := binary.LittleEndian.Uint32(raw[4*i:]); v != 0 {
			t.Fatalf("counter %d reads %d after the calls finished, want 0", i, v)
		}
	}
	// The same counters again.
	b.mu.Lock()
	b.counterNext = start
	b.mu.Unlock()
	second := run()
	names := []string{"y", "mean", "inv_std", "gx", "ggamma", "gbeta", "gresidual", "running_var"}
	for i := range first {
		if !slices.Equal(first[i], second[i]) {
			t.Errorf("%s differs when the counters are reused", names[i])
		}
	}
}
