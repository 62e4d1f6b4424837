package train

import (
	"errors"
	"fmt"
	"math"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ErrNonFinite reports a NaN or infinite loss; the step that produced it was not applied.
var ErrNonFinite = errors.New("loss is not finite")

// Step runs one training step on a batch already on the backend: forward, structure loss,
// backward, SGD update. The loss is read after the backward pass and checked before the update,
// so a non-finite loss leaves the parameters untouched and returns ErrNonFinite. (Reading it
// there, not between forward and backward, lets an asynchronous backend run the whole forward
// and backward pass without waiting for the host.)
func Step(b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (float64, error) {
	t := ops.NewTape(b)
	defer t.Release()
	logits := m.Forward(t, images)
	loss := t.StructureLoss(logits, masks, form)
	if err := t.Backward(loss); err != nil {
		return 0, err
	}
	v, err := ops.ToHost(b, loss)
	b.Release(loss.Storage()) // kept by Backward, so Release leaves it
	if err != nil {
		return 0, err
	}
	l := float64(v[0])
	if math.IsNaN(l) || math.IsInf(l, 0) {
		nn.ZeroGrad(b, m)
		return l, fmt.Errorf("%w (%v)", ErrNonFinite, l)
	}
	if err := opt.Step(); err != nil {
		return l, fmt.Errorf("sgd: %w", err)
	}
	return l, nil
}

// Predict returns sigmoid probabilities [N 1 H W] on the host for a batch on the backend,
// without gradient recording. Callers put the model in eval mode first (nn.SetTraining).
func Predict(b ops.Backend, m nn.Segmenter, images *tensor.Tensor) ([]float32, error) {
	t := ops.NewTape(b)
	t.SetNoGrad(true)
	defer t.Release()
	p := t.Sigmoid(m.Forward(t, images))
	if err := t.Err(); err != nil {
		return nil, err
	}
	return ops.ToHost(b, p)
}
