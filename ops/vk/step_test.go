package vk

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// On the device, a NaN loss must stop its own step's update and every later one without the
// host reading it first: the host learns of it one step late, as the trainer does, and finds
// the parameters as they were before the bad step. Clearing the halt resumes updates.
func TestStepNonFiniteHaltsOnDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("five CHNet training steps on lavapipe")
	}
	b := open(t)
	m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
	if err != nil {
		t.Fatal(err)
	}
	const n, s = 1, 32
	img := make([]float32, n*3*s*s)
	for i := range img {
		img[i] = float32(math.Sin(float64(i)))
	}
	x, _ := ops.FromHost(b, img, n, 3, s, s)
	mv := make([]float32, n*s*s)
	good, _ := ops.FromHost(b, mv, n, 1, s, s)
	// A NaN in the mask reaches the loss directly (one in the image may not: GLSL's max in
	// ReLU returns the other operand for NaN).
	mv[40] = float32(math.NaN())
	bad, _ := ops.FromHost(b, mv, n, 1, s, s)
	opt, err := train.NewSGD(b, m, ops.SGDParams{LR: 0.05, Momentum: 0.9, Nesterov: true})
	if err != nil {
		t.Fatal(err)
	}
	params := func() map[string][]float32 {
		st, err := nn.StateOf(b, m)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{}
		for k, v := range st.Tensors {
			if !strings.Contains(k, "running_") {
				out[k] = v.Data
			}
		}
		return out
	}
	same := func(a, b map[string][]float32) bool {
		for k, v := range a {
			for i := range v {
				if b[k][i] != v[i] {
					return false
				}
			}
		}
		return true
	}
	step := func(mask *tensor.Tensor) *train.PendingLoss {
		p, err := train.StepAsync(b, m, opt, x, mask, ops.StructureLossOfficial)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := step(good).Wait(); err != nil {
		t.Fatal(err)
	}
	before := params()
	pBad := step(bad)
	pNext := step(good) // recorded before the host has seen the bad loss
	if _, err := pBad.Wait(); !errors.Is(err, train.ErrNonFinite) {
		t.Fatalf("bad step: %v, want ErrNonFinite", err)
	}
	if _, err := pNext.Wait(); err != nil {
		t.Fatalf("next step's loss: %v", err)
	}
	if !same(before, params()) {
		t.Fatal("parameters changed after a non-finite loss")
	}
	if err := opt.ClearHalt(); err != nil {
		t.Fatal(err)
	}
	if _, err := step(good).Wait(); err != nil {
		t.Fatal(err)
	}
	if same(before, params()) {
		t.Fatal("parameters did not change after ClearHalt")
	}
}

// Record once, replay: training steps replayed from a capture (step 1 eager, step 2 captured,
// step 3 replayed) on different batches, one step in flight, must give exactly the losses and
// parameters of steps recorded afresh each time.
func TestReplayedStepsMatchEager(t *testing.T) {
	if testing.Short() {
		t.Skip("six CHNet training steps on lavapipe")
	}
	b := open(t)
	const n, s, steps = 1, 32, 3
	run := func(eager bool) ([]float64, map[string][]float32, int) {
		m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
		if err != nil {
			t.Fatal(err)
		}
		opt, err := train.NewSGD(b, m, ops.SGDParams{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
		if err != nil {
			t.Fatal(err)
		}
		defer opt.ReleaseReplays()
		opt.Eager = eager
		rng := tensor.NewRNG(8, 0)
		before := b.dev.Stats()
		var losses []float64
		var pending *train.PendingLoss
		for i := 0; i < steps; i++ {
			img, mask := make([]float32, n*3*s*s), make([]float32, n*s*s)
			for j := range img {
				img[j] = float32(rng.Normal())
			}
			for j := range mask {
				mask[j] = float32(rng.Intn(2))
			}
			x, _ := ops.FromHost(b, img, n, 3, s, s)
			y, _ := ops.FromHost(b, mask, n, 1, s, s)
			p, err := train.StepAsync(b, m, opt, x, y, ops.StructureLossOfficial)
			b.Release(x.Storage())
			b.Release(y.Storage())
			if err != nil {
				t.Fatal(err)
			}
			if pending != nil { // one step in flight, as the trainer runs
				l, err := pending.Wait()
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, l)
			}
			pending = p
		}
		l, err := pending.Wait()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, l)
		st, err := nn.StateOf(b, m)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{}
		for k, v := range st.Tensors {
			out[k] = v.Data
		}
		return losses, out, b.dev.Stats().Sub(before).Replays
	}
	wantLoss, want, r0 := run(true)
	gotLoss, got, r1 := run(false)
	if r0 != 0 || r1 != steps-2 {
		t.Fatalf("%d and %d replays, want 0 and %d", r0, r1, steps-2)
	}
	for i := range wantLoss {
		if gotLoss[i] != wantLoss[i] {
			t.Errorf("step %d: loss %v replayed, %v recorded afresh", i+1, gotLoss[i], wantLoss[i])
		}
	}
	for k, w := range want {
		for i := range w {
			if got[k][i] != w[i] {
				t.Fatalf("%s[%d] = %v replayed, %v recorded afresh", k, i, got[k][i], w[i])
			}
		}
	}
	t.Logf("losses %v", gotLoss)
}

// Inference between replayed training steps (the trainer's validation) folds its batch norms
// from the parameters and statistics the replayed step just wrote, not from a stale fold: the
// folded logits equal the unfolded eval forward's after every step.
func TestFoldedInferenceFollowsReplayedSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("CHNet training steps and inferences on lavapipe")
	}
	b := open(t)
	const n, s, steps = 1, 32, 4
	m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
	if err != nil {
		t.Fatal(err)
	}
	defer nn.Release(b, m)
	opt, err := train.NewSGD(b, m, ops.SGDParams{LR: 0.2, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.ReleaseReplays()
	rng := tensor.NewRNG(8, 0)
	img, mask := make([]float32, n*3*s*s), make([]float32, n*s*s)
	for j := range img {
		img[j] = float32(rng.Normal())
	}
	for j := range mask {
		mask[j] = float32(rng.Intn(2))
	}
	x, _ := ops.FromHost(b, img, n, 3, s, s)
	y, _ := ops.FromHost(b, mask, n, 1, s, s)
	defer b.Release(x.Storage())
	defer b.Release(y.Storage())
	before := b.dev.Stats()
	var prev []float32
	for i := 0; i < steps; i++ {
		nn.SetTraining(m, true)
		p, err := train.StepAsync(b, m, opt, x, y, ops.StructureLossOfficial)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		nn.SetTraining(m, false)
		logits := func(fold bool) []float32 {
			tp := ops.NewTape(b)
			defer tp.Release()
			tp.SetNoGrad(true)
			tp.SetFoldBatchNorm(fold)
			v, err := ops.ToHost(b, m.Forward(tp, x))
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		folded, plain := logits(true), logits(false)
		// The trainer's path: Predict runs the forward under a liveness plan.
		pred, err := train.Predict(b, m, x)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range folded {
			if d := math.Abs(float64(pred[j]) - 1/(1+math.Exp(-float64(v)))); d > 1e-5 {
				t.Fatalf("step %d: Predict %v at %d, sigmoid of the folded logit %v", i+1, pred[j], j, v)
			}
		}
		if e := optest.RelErr(folded, plain); e > 1e-5 {
			t.Errorf("step %d: folded logits vs unfolded: relative error %.3g (a stale fold?)", i+1, e)
		}
		if prev != nil {
			if d := optest.RelErr(folded, prev); d < 1e-3 {
				t.Errorf("step %d: the logits moved by %.3g only: the test cannot tell a stale fold", i+1, d)
			} else {
				t.Logf("step %d: folded vs unfolded %.2g; the step moved the logits by %.2g", i+1, optest.RelErr(folded, plain), d)
			}
		}
		prev = folded
	}
	if r := b.dev.Stats().Sub(before).Replays; r == 0 {
		t.Errorf("no step was replayed")
	}
}
