package train

import (
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
