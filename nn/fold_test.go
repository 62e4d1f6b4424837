package nn

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// Folded inference follows a loaded checkpoint: after LoadState replaces a batch norm's running
// statistics and a convolution's weight, ConvBN and BNConv fold again, and agree with the
// unfolded forward.
func TestFoldFollowsLoadState(t *testing.T) {
	b := cpu.New()
	in := Init{B: b, RNG: tensor.NewRNG(3, 0)}
	conv, err := NewConv2d(in, Conv2dConfig{In: 5, Out: 6, Kernel: 3, Conv2DParams: ops.Conv2DParams{Pad: 1, Stride: 2}, Bias: true})
	if err != nil {
		t.Fatal(err)
	}
	bn, err := NewBatchNorm2d(in, 6)
	if err != nil {
		t.Fatal(err)
	}
	head, err := NewConv2d(in, Conv2dConfig{In: 6, Out: 2, Kernel: 1, Bias: true})
	if err != nil {
		t.Fatal(err)
	}
	headBN, err := NewBatchNorm2d(in, 6)
	if err != nil {
		t.Fatal(err)
	}
	m := Seq{{"conv", conv}, {"bn", bn}, {"head_bn", headBN}, {"head", head}}
	SetTraining(m, false)
	xv := make([]float32, 2*5*9*7)
	rng := tensor.NewRNG(4, 0)
	for i := range xv {
		xv[i] = float32(rng.Normal())
	}
	x, err := ops.FromHost(b, xv, 2, 5, 9, 7)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ops.FromHost(b, xv[:2*6*5*4], 2, 6, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	forward := func(fold bool) []float32 {
		tp := ops.NewTape(b)
		tp.SetNoGrad(true)
		tp.SetFoldBatchNorm(fold)
		defer tp.Release()
		y := BNConv(tp, headBN, head, ConvBN(tp, conv, bn, x, res, true))
		if err := tp.Err(); err != nil {
			t.Fatal(err)
		}
		v, err := ops.ToHost(b, y)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const tol = 1e-5
	check := func(when string) []float32 {
		got, want := forward(true), forward(false)
		if e := optest.RelErr(got, want); e > tol {
			t.Errorf("%s: folded vs unfolded: relative error %.3g > %g", when, e, tol)
		}
		return got
	}
	before := check("initial state")

	st, err := StateOf(b, m)
	if err != nil {
		t.Fatal(err)
	}
	for name, scale := range map[string]float32{"bn.running_mean": 0.5, "bn.running_var": 3, "head_bn.running_var": 0.2, "conv.weight": -1} {
		h := st.Tensors[name]
		for i := range h.Data {
			h.Data[i] = h.Data[i]*scale + 0.25
		}
	}
	if _, err := LoadState(b, m, st, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	after := check("after LoadState")
	if optest.RelErr(after, before) < 100*tol {
		t.Errorf("the loaded state did not change the output: the test cannot tell a stale fold")
	}
}
