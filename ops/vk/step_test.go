package vk

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
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
