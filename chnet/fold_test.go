package chnet

import (
	"testing"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// tolFold bounds folded inference (each batch norm folded into its convolution, nn.ConvBN)
// against the unfolded eval forward: both are float32 throughout and differ in rounding only
// (w·scale summed, against the sum scaled), relative to the largest logit. Measured ~1e-6.
const tolFold = 1e-5

// evalLogits runs the model in eval mode on a no-grad tape, with batch norms folded or not.
func evalLogits(t *testing.T, b ops.Backend, m *Model, x *tensor.Tensor, fold bool) []float32 {
	t.Helper()
	nn.SetTraining(m, false)
	tp := ops.NewTape(b)
	tp.SetNoGrad(true)
	tp.SetFoldBatchNorm(fold)
	defer tp.Release()
	y := m.Forward(tp, x)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	return download(t, b, y)
}

// FoldedInference checks on b that the released CHNet's folded inference equals its unfolded
// eval forward, and that after a training step (new weights, new running statistics) inference
// folds again from the new values rather than using the cached fold.
func FoldedInference(t *testing.T, b ops.Backend) {
	for _, factorized := range []bool{false, true} {
		cfg := Released()
		cfg.Factorized = factorized
		m, err := New(nn.Init{B: b, RNG: tensor.NewRNG(5, 0)}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer nn.Release(b, m)
		rng := tensor.NewRNG(6, 0)
		xv := make([]float32, 2*3*64*64)
		for i := range xv {
			xv[i] = float32(rng.Normal())
		}
		x, err := ops.FromHost(b, xv, 2, 3, 64, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release(x.Storage())

		// Running statistics away from the initial 0 and 1, so that folding has work to do.
		nn.SetTraining(m, true)
		step(t, b, m, x)
		before := evalLogits(t, b, m, x, true)
		if e := optest.RelErr(before, evalLogits(t, b, m, x, false)); e > tolFold {
			t.Errorf("factorized %v: folded vs unfolded eval logits: relative error %.3g > %g", factorized, e, tolFold)
		} else {
			t.Logf("factorized %v: folded vs unfolded eval logits: relative error %.2g", factorized, e)
		}

		// A training step changes weights and running statistics; the cached folds must follow.
		nn.SetTraining(m, true)
		step(t, b, m, x)
		after := evalLogits(t, b, m, x, true)
		unfolded := evalLogits(t, b, m, x, false)
		if e := optest.RelErr(after, unfolded); e > tolFold {
			t.Errorf("factorized %v: after a training step, folded vs unfolded eval logits: relative error %.3g > %g (a stale fold?)", factorized, e, tolFold)
		}
		if e := optest.RelErr(after, before); e < 100*tolFold {
			t.Errorf("factorized %v: the training step moved the eval logits by only %.3g: the test cannot tell a stale fold", factorized, e)
		}
	}
}

// step runs one training step: forward with batch statistics, the mean logit as the loss,
// backward, plain SGD on every parameter.
func step(t *testing.T, b ops.Backend, m *Model, x *tensor.Tensor) {
	t.Helper()
	tp := ops.NewTape(b)
	defer tp.Release()
	loss := tp.Mean(m.Forward(tp, x), ops.AxesAll)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	for _, np := range nn.Params(m) {
		buf, err := ops.Zeros(b, np.Tensor.Shape()...)
		if err != nil {
			t.Fatal(err)
		}
		if err := ops.SGDStep(b, np.Tensor, np.Tensor.Grad, buf, ops.SGDParams{LR: 0.5}); err != nil {
			t.Fatal(err)
		}
		b.Release(buf.Storage())
	}
	nn.ZeroGrad(b, m)
}

func TestFoldedInferenceCPU(t *testing.T) { FoldedInference(t, cpu.New()) }
