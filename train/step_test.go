package train

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// A few steps on one fixed synthetic batch must lower the loss: the smallest end-to-end check
// that forward, backward and SGD fit together.
func TestStepLowersLossOnFixedBatch(t *testing.T) {
	b := cpu.New()
	m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
	if err != nil {
		t.Fatal(err)
	}
	x, y := optest.DiscBatch(t, b)
	opt, err := NewSGD(b, m, ops.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	for i := 0; i < 8; i++ {
		l, err := Step(b, m, opt, x, y, ops.StructureLossOfficial)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = l
		}
		last = l
	}
	if !(last < 0.8*first) {
		t.Fatalf("loss went from %.4f to %.4f in 8 steps; expected a clear decrease", first, last)
	}
	t.Logf("loss %.4f -> %.4f", first, last)
}

// A non-finite loss must stop the step before the update: parameters stay as they were.
func TestStepRefusesNonFiniteLoss(t *testing.T) {
	b := cpu.New()
	m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
	if err != nil {
		t.Fatal(err)
	}
	const n, s = 1, 32
	img := make([]float32, n*3*s*s)
	img[5] = float32(math.NaN())
	x, _ := ops.FromHost(b, img, n, 3, s, s)
	y, _ := ops.FromHost(b, make([]float32, n*s*s), n, 1, s, s)
	opt, err := NewSGD(b, m, ops.SGDParams{LR: 0.05, Momentum: 0.9, Nesterov: true})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := nn.StateOf(b, m)
	if _, err := Step(b, m, opt, x, y, ops.StructureLossOfficial); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN input: got %v, want ErrNonFinite", err)
	}
	after, _ := nn.StateOf(b, m)
	for k, v := range before.Tensors {
		if strings.Contains(k, "running_") {
			continue // the forward pass itself updates running statistics, as in PyTorch
		}
		for i, w := range v.Data {
			if after.Tensors[k].Data[i] != w {
				t.Fatalf("%s changed after a refused step", k)
			}
		}
	}
	for _, p := range nn.Params(m) {
		if p.Tensor.Grad != nil {
			t.Fatalf("%s keeps a gradient after a refused step", p.Name)
		}
	}
}

// The flat, guarded optimiser must update exactly as torch.optim.SGD applied parameter by
// parameter (ops.SGDStep with a momentum buffer each): bit for bit over a few steps.
func TestFlatSGDMatchesPerParameter(t *testing.T) {
	b := cpu.New()
	p := ops.SGDParams{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
	x, y := optest.DiscBatch(t, b)
	build := func() *chnet.Model {
		m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, chnet.Released())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	flat, ref := build(), build()
	opt, err := NewSGD(b, flat, p)
	if err != nil {
		t.Fatal(err)
	}
	moms := map[string]*tensor.Tensor{}
	for _, np := range nn.Params(ref) {
		moms[np.Name], _ = ops.Zeros(b, np.Tensor.Shape()...)
	}
	for step := 0; step < 3; step++ {
		if _, err := Step(b, flat, opt, x, y, ops.StructureLossOfficial); err != nil {
			t.Fatal(err)
		}
		tp := ops.NewTape(b)
		if err := tp.Backward(tp.StructureLoss(ref.Forward(tp, x), y, ops.StructureLossOfficial)); err != nil {
			t.Fatal(err)
		}
		for _, np := range nn.Params(ref) {
			if err := ops.SGDStep(b, np.Tensor, np.Tensor.Grad, moms[np.Name], p); err != nil {
				t.Fatal(err)
			}
			np.Tensor.Grad = nil
		}
		tp.Release()
	}
	got, _ := nn.StateOf(b, flat)
	want, _ := nn.StateOf(b, ref)
	for name, w := range want.Tensors {
		for i, v := range w.Data {
			if g := got.Tensors[name].Data[i]; g != v {
				t.Fatalf("%s[%d]: flat SGD %v, per-parameter %v", name, i, g, v)
			}
		}
	}
	mom, _ := opt.State()
	for name, m := range moms {
		v, _ := b.Download(m)
		for i := range v {
			if mom[name].Data[i] != v[i] {
				t.Fatalf("momentum %s[%d]: flat %v, per-parameter %v", name, i, mom[name].Data[i], v[i])
			}
		}
	}
}

// poisoned puts a NaN into the images of one batch (0-based, counted over the run).
type poisoned struct {
	TrainData
	at, n int
}

type poisonedIter struct {
	BatchIter
	p *poisoned
}

func (p *poisoned) Epoch(ctx context.Context, e, from int) (BatchIter, error) {
	it, err := p.TrainData.Epoch(ctx, e, from)
	return &poisonedIter{it, p}, err
}

func (it *poisonedIter) Next() (Batch, bool, error) {
	b, ok, err := it.BatchIter.Next()
	if ok {
		if it.p.n == it.p.at {
			b.Images = append([]float32(nil), b.Images...)
			b.Images[7] = float32(math.NaN())
		}
		it.p.n++
	}
	return b, ok, err
}

// With one step in flight, a NaN loss is read only after the next step was recorded; the run
// must still stop naming the bad step, with the parameters as the step before left them.
func TestTrainerStopsAtNonFiniteStep(t *testing.T) {
	data := newMemData(6, 32, 2)
	ctx, cancel := context.WithCancel(context.Background())
	ref := newTrainer(t, t.TempDir(), &cancelAfter{TrainData: data, n: 0, cancel: cancel}, 2)
	if err := ref.Run(ctx); !errors.Is(err, ErrInterrupted) || ref.State.Step != 1 {
		t.Fatalf("reference run: %v after %d steps, want an interrupt after 1", err, ref.State.Step)
	}
	want := weights(t, ref)

	bad := newTrainer(t, t.TempDir(), &poisoned{TrainData: data, at: 1}, 2)
	err := bad.Run(context.Background())
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "epoch 1 step 2") {
		t.Fatalf("poisoned run returned %v, want ErrNonFinite at epoch 1 step 2", err)
	}
	got := weights(t, bad)
	for k, w := range want {
		if strings.Contains(k, "running_") {
			continue // forward passes update running statistics, as in PyTorch
		}
		for i := range w {
			if got[k][i] != w[i] {
				t.Fatalf("%s[%d] = %v after the refused step, %v before it", k, i, got[k][i], w[i])
			}
		}
	}
}
