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

// Step runs one training step on a batch already on the backend and waits for its loss:
// StepAsync, then Wait. A non-finite loss leaves the parameters untouched and returns
// ErrNonFinite; the optimiser then stays halted (SGD.ClearHalt resumes it).
func Step(b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (float64, error) {
	p, err := StepAsync(b, m, opt, images, masks, form)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// PendingLoss is a step's loss on its way to the host.
type PendingLoss struct {
	read func() ([]float32, error)
}

// Wait waits for the loss (on an asynchronous backend, for the step that produced it, not for
// steps recorded since). A non-finite loss is returned with ErrNonFinite: the device skipped
// that step's update and every later one.
func (p *PendingLoss) Wait() (float64, error) {
	v, err := p.read()
	if err != nil {
		return 0, err
	}
	l := float64(v[0])
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, fmt.Errorf("%w (%v)", ErrNonFinite, l)
	}
	return l, nil
}

// StepAsync records one training step — forward, structure loss, backward, the guarded SGD
// update — and returns without waiting for the device. The loss never goes through the host
// before the update: the update kernel itself skips (and halts the optimiser) when the loss is
// not finite, so the host can read step k's loss while step k+1 runs. On a backend that
// captures (Vulkan) the step of each input shape is recorded once and then replayed (replay.go)
// unless opt.Eager is set.
func StepAsync(b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (*PendingLoss, error) {
	if c, ok := b.(ops.Capturer); ok && !opt.Eager {
		return stepCaptured(c, b, m, opt, images, masks, form)
	}
	return stepEager(b, m, opt, images, masks, form)
}

// stepEager records a step afresh.
func stepEager(b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (*PendingLoss, error) {
	loss, _, err := recordStep(b, m, opt, images, masks, form)
	if err != nil {
		return nil, err
	}
	defer b.Release(loss.Storage()) // kept by Backward, so the tape's Release left it
	read, err := ops.ReadLater(b, loss)
	if err != nil {
		return nil, err
	}
	return &PendingLoss{read: read}, nil
}

// plannedForward runs forward on t releasing every intermediate at its last use: a dry run
// first learns the liveness plan (ops.Tape.LearnPlan), and the host state it changed (batch-norm
// counters) is restored before the real run. If the dry run fails, the real one reports why.
func plannedForward(t *ops.Tape, m nn.Module, forward func(*ops.Tape) *tensor.Tensor) (*tensor.Tensor, *ops.LivePlan) {
	counters := saveCounters(m)
	plan, err := t.LearnPlan(func(d *ops.Tape) { forward(d) })
	restoreCounters(m, counters)
	if err == nil {
		t.UsePlan(plan)
	}
	return forward(t), plan
}

// Predict returns sigmoid probabilities [N 1 H W] on the host for a batch on the backend,
// without gradient recording. Callers put the model in eval mode first (nn.SetTraining).
func Predict(b ops.Backend, m nn.Segmenter, images *tensor.Tensor) ([]float32, error) {
	t := ops.NewTape(b)
	t.SetNoGrad(true)
	defer t.Release()
	p, _ := plannedForward(t, m, func(t *ops.Tape) *tensor.Tensor { return t.Sigmoid(m.Forward(t, images)) })
	if err := t.Err(); err != nil {
		return nil, err
	}
	return ops.ToHost(b, p)
}
