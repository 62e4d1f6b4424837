package ops_test

import (
	"strings"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// block is a small residual block: conv, batch norm, ReLU, conv, add the input, ReLU, sigmoid.
// It returns the output and every intermediate.
type block struct {
	w1, w2, gamma, beta, rm, rv *tensor.Tensor
}

func newBlock(t *testing.T, b ops.Backend) *block {
	rng := tensor.NewRNG(4, 0)
	param := func(scale float64, shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(rng.Normal() * scale)
		}
		x, err := ops.FromHost(b, v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x.SetRequiresGrad(true)
	}
	k := &block{w1: param(0.3, 4, 4, 3, 3), w2: param(0.3, 4, 4, 3, 3), gamma: param(0.1, 4), beta: param(0.1, 4)}
	k.rm, _ = ops.Zeros(b, 4)
	k.rv, _ = ops.FromHost(b, []float32{1, 1, 1, 1}, 4)
	return k
}

func (k *block) forward(tp *ops.Tape, x *tensor.Tensor, mids *[]*tensor.Tensor) *tensor.Tensor {
	c1 := tp.Conv2D(x, k.w1, nil, ops.Conv2DParams{Pad: 1})
	bn := tp.BatchNorm2D(c1, k.gamma, k.beta, k.rm, k.rv, true, ops.DefaultBatchNorm)
	r1 := tp.ReLU(bn)
	c2 := tp.Conv2D(r1, k.w2, nil, ops.Conv2DParams{Pad: 1})
	sum := tp.Add(c2, x)
	r2 := tp.ReLU(sum)
	*mids = []*tensor.Tensor{c1, bn, r1, c2, sum, r2}
	return tp.Sigmoid(r2)
}

// A liveness plan learned on a dry run releases, in the real run, exactly the intermediates
// no backward rule needs, right after their last use; results and gradients are unchanged.
func TestLivenessPlan(t *testing.T) {
	b := cpu.New()
	k := newBlock(t, b)
	xv := make([]float32, 2*4*6*6)
	for i := range xv {
		xv[i] = float32(i%7) - 3
	}
	x, _ := ops.FromHost(b, xv, 2, 4, 6, 6)
	released := func(ts []*tensor.Tensor) []bool {
		out := make([]bool, len(ts))
		for i, m := range ts {
			out[i] = m.Storage().Len() == 0
		}
		return out
	}
	type result struct {
		y, gw1, gw2 []float32
		released    []bool
	}
	run := func(noGrad, planned bool) result {
		k.w1.Grad, k.w2.Grad = nil, nil
		tp := ops.NewTape(b)
		defer tp.Release()
		tp.SetNoGrad(noGrad)
		var mids []*tensor.Tensor
		if planned {
			p, err := tp.LearnPlan(func(d *ops.Tape) { k.forward(d, x, &mids) })
			if err != nil {
				t.Fatal(err)
			}
			tp.UsePlan(p)
		}
		y := k.forward(tp, x, &mids)
		var r result
		r.released = released(mids)
		if d, at := tp.PlanDiverged(); d {
			t.Fatalf("the real run departed from its plan at %s", at)
		}
		var err error
		if r.y, err = b.Download(y); err != nil {
			t.Fatal(err)
		}
		if !noGrad {
			loss := tp.Sum(y, ops.AxesAll)
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}
			r.gw1, _ = b.Download(k.w1.Grad)
			r.gw2, _ = b.Download(k.w2.Grad)
		}
		return r
	}
	same := func(name string, a, b []float32) {
		t.Helper()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %v with a plan, %v without", name, i, a[i], b[i])
			}
		}
	}
	for _, noGrad := range []bool{false, true} {
		want, got := run(noGrad, false), run(noGrad, true)
		same("output", got.y, want.y)
		same("grad w1", got.gw1, want.gw1)
		same("grad w2", got.gw2, want.gw2)
		for i, r := range want.released {
			if r {
				t.Errorf("noGrad %v: intermediate %d released without a plan", noGrad, i)
			}
		}
		// c1, bn, r1, c2, sum, r2. With gradients, conv saves its input (x, r1), batch norm its
		// input (c1), ReLU its output (r1, r2), sigmoid its output: only bn, c2 and sum can go.
		// Without, everything read later goes.
		wantReleased := []bool{false, true, false, true, true, false}
		if noGrad {
			wantReleased = []bool{true, true, true, true, true, true}
		}
		for i := range wantReleased {
			if got.released[i] != wantReleased[i] {
				t.Errorf("noGrad %v: intermediates released %v, want %v", noGrad, got.released, wantReleased)
				break
			}
		}
	}
}

// A plan applied to different code stops releasing where the kernel calls differ; a tensor it
// already released (by the old plan's last use) is then an error when read, never stale data.
func TestLivenessPlanDivergence(t *testing.T) {
	b := cpu.New()
	k := newBlock(t, b)
	x, _ := ops.Zeros(b, 1, 4, 5, 5)
	tp := ops.NewTape(b)
	defer tp.Release()
	tp.SetNoGrad(true)
	var mids []*tensor.Tensor
	p, err := tp.LearnPlan(func(d *ops.Tape) { k.forward(d, x, &mids) })
	if err != nil {
		t.Fatal(err)
	}
	if p.Releasable == 0 || p.Kernels == 0 {
		t.Fatalf("plan: %+v", p)
	}
	tp.UsePlan(p)
	k.forward(tp, x, &mids)
	tp.Add(mids[0], mids[0]) // c1 was released after its last use in the plan
	if d, _ := tp.PlanDiverged(); !d {
		t.Error("an extra op did not count as a departure from the plan")
	}
	if err := tp.Err(); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("reading a released intermediate: %v, want an error", err)
	}
}
