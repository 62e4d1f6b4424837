package bench

import (
	"fmt"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// memCounter is a Counter that keeps the bytes of live tensors and their peak: every tensor a
// backend holds goes through Alloc and Release, in the same order whatever the values, so the
// peak of a step run here is the peak a real backend's tensors reach — measured without
// storing any data, at any batch and size.
type memCounter struct {
	Counter
	live, peak int64
	size       map[tensor.Storage]int64
}

func (m *memCounter) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	t, err := m.Counter.Alloc(shape)
	if err != nil {
		return nil, err
	}
	n := 4 * int64(shape.Numel())
	m.size[t.Storage()] = n
	m.live += n
	m.peak = max(m.peak, m.live)
	return t, nil
}

func (m *memCounter) Release(s tensor.Storage) {
	if n, ok := m.size[s]; ok {
		delete(m.size, s)
		m.live -= n
	}
}

// Footprint measures a model's peak tensor memory at any batch and size; the model is built
// once, on a backend that stores nothing.
type Footprint struct {
	b    *memCounter
	m    nn.Segmenter
	opt  *train.SGD
	spec zoo.Spec
}

// NewFootprint builds spec's network (and, for training, its SGD momentum buffers) for
// measuring.
func NewFootprint(spec zoo.Spec, training bool) (*Footprint, error) {
	b := &memCounter{size: map[tensor.Storage]int64{}}
	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, spec)
	if err != nil {
		return nil, err
	}
	f := &Footprint{b: b, m: m, spec: spec}
	if training {
		if f.opt, err = train.NewSGD(b, m, ops.SGDParams{Momentum: 0.9}); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Peak is the largest number of bytes of tensors live at once during one training step
// (weights, momentum, activations, gradients) or, for a footprint made without training, one
// prediction, on batch images of size².
func (f *Footprint) Peak(batch, size int) (int64, error) {
	if batch < 1 || size < 1 {
		return 0, fmt.Errorf("bench: footprint of batch %d at %d²", batch, size)
	}
	b := f.b
	x, err := b.Alloc(tensor.Shape{batch, 3, size, size})
	if err != nil {
		return 0, err
	}
	defer b.Release(x.Storage())
	b.peak = b.live
	if f.opt == nil {
		nn.SetTraining(f.m, false)
		if _, err := train.Predict(b, f.m, x); err != nil {
			return 0, err
		}
		return b.peak, nil
	}
	nn.SetTraining(f.m, true)
	y, err := b.Alloc(tensor.Shape{batch, 1, size, size})
	if err != nil {
		return 0, err
	}
	defer b.Release(y.Storage())
	b.peak = b.live
	if _, err := train.Step(b, f.m, f.opt, x, y, ops.StructureLossOfficial); err != nil {
		return 0, err
	}
	return b.peak, nil
}
