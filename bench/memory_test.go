package bench

import (
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// liveCPU is the CPU backend with its tensors' live bytes and peak counted.
type liveCPU struct {
	*cpu.Backend
	live, peak int64
	size       map[tensor.Storage]int64
}

func (l *liveCPU) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	t, err := l.Backend.Alloc(shape)
	if err == nil {
		n := 4 * int64(shape.Numel())
		l.size[t.Storage()] = n
		l.live += n
		l.peak = max(l.peak, l.live)
	}
	return t, err
}

func (l *liveCPU) Release(s tensor.Storage) {
	if n, ok := l.size[s]; ok {
		delete(l.size, s)
		l.live -= n
	}
	l.Backend.Release(s)
}

// The footprint measured on the counting backend is the peak of the tensors a real backend
// holds during the same training step and prediction: the CLI's memory check relies on it.
func TestFootprintMatchesTheCPUBackend(t *testing.T) {
	spec := zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true}
	const batch, size = 2, 32
	for _, training := range []bool{true, false} {
		fp, err := NewFootprint(spec, training)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fp.Peak(batch, size)
		if err != nil {
			t.Fatal(err)
		}
		b := &liveCPU{Backend: cpu.New(), size: map[tensor.Storage]int64{}}
		m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, spec)
		if err != nil {
			t.Fatal(err)
		}
		x, err := ops.FromHost(b, make([]float32, batch*3*size*size), batch, 3, size, size)
		if err != nil {
			t.Fatal(err)
		}
		if training {
			opt, err := train.NewSGD(b, m, ops.SGDParams{Momentum: 0.9})
			if err != nil {
				t.Fatal(err)
			}
			y, err := ops.FromHost(b, make([]float32, batch*size*size), batch, 1, size, size)
			if err != nil {
				t.Fatal(err)
			}
			b.peak = b.live
			if _, err := train.Step(b, m, opt, x, y, ops.StructureLossOfficial); err != nil {
				t.Fatal(err)
			}
		} else {
			nn.SetTraining(m, false)
			b.peak = b.live
			if _, err := train.Predict(b, m, x); err != nil {
				t.Fatal(err)
			}
		}
		if b.peak != want {
			t.Errorf("training %v: footprint %d bytes, the CPU backend's tensors peaked at %d", training, want, b.peak)
		}
		t.Logf("training %v, batch %d at %d²: %.1f MiB of tensors at the peak", training, batch, size, float64(want)/(1<<20))
	}
	fp, err := NewFootprint(spec, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.Peak(64, 2048); err == nil {
		t.Error("a step with a tensor past the engine's 2^31-1 elements was measured")
	}
}
