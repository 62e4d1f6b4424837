package train

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Record once, replay. On a backend that can capture (ops.Capturer: Vulkan), the training step
// of each input shape runs eagerly once (creating pipelines and resize tables), is captured the
// second time (it runs while being recorded), and from then on is replayed: the host copies the
// batch into the capture's input tensors, submits the recorded commands and reads the loss,
// recording nothing else. Host-side state stays right because the forward code still runs on a
// dry tape each step (ops.Tape.LearnPlan): it advances the batch-norm counters, and its kernel
// sequence must equal the captured one, or the capture is dropped and the step runs eagerly.

// replayKey is what a capture depends on besides the forward code: shapes, loss form, the
// optimiser's constants in push constants (not the learning rate, which the kernel reads from
// the device, so one capture serves every epoch of a schedule) and which parameters train.
type replayKey struct {
	images, masks string
	form          ops.StructureLossForm
	p             ops.SGDParams
	trainable     string
}

// stepReplay is one input shape's state: seen once (eager), then captured.
type stepReplay struct {
	r       ops.Replay
	x, y    *tensor.Tensor // the capture's inputs (made before it): each step's batch is copied here
	loss    *tensor.Tensor // the capture's loss
	plan    *ops.LivePlan  // the captured forward's kernel sequence
	refused bool           // capture is not possible here; stay eager
}

func (s *SGD) replayKey(images, masks *tensor.Tensor, form ops.StructureLossForm) replayKey {
	tr := make([]byte, len(s.params))
	for i, np := range s.params {
		if np.Tensor.RequiresGrad() {
			tr[i] = 1
		}
	}
	return replayKey{fmt.Sprint(images.Shape()), fmt.Sprint(masks.Shape()), form, s.kernelParams(), string(tr)}
}

// release frees a capture and the tensors it kept.
func (r *stepReplay) release(b ops.Backend) {
	if r.r != nil {
		r.r.Release()
		for _, t := range []*tensor.Tensor{r.x, r.y, r.loss} {
			b.Release(t.Storage())
		}
	}
	*r = stepReplay{}
}

// ReleaseReplays frees every captured step (their workspaces stay reserved until then).
func (s *SGD) ReleaseReplays() {
	for k, r := range s.replays {
		r.release(s.b)
		delete(s.replays, k)
	}
}

// forwardLoss is the training step's forward pass.
func forwardLoss(m nn.Segmenter, images, masks *tensor.Tensor, form ops.StructureLossForm) func(*ops.Tape) *tensor.Tensor {
	return func(t *ops.Tape) *tensor.Tensor { return t.StructureLoss(m.Forward(t, images), masks, form) }
}

// stepCaptured runs a step on a capturing backend: eager the first time a key is seen, captured
// the second, replayed after.
func stepCaptured(c ops.Capturer, b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (*PendingLoss, error) {
	// Before any capture or replay: an upload inside a capture would end it.
	if err := opt.syncLR(); err != nil {
		return nil, err
	}
	key := opt.replayKey(images, masks, form)
	r := opt.replays[key]
	if r == nil {
		// A new key: captures for other optimiser constants or trainable sets (a stage's frozen
		// backbone) will not be replayed again.
		for k, o := range opt.replays {
			if k.p != key.p || k.trainable != key.trainable {
				o.release(b)
				delete(opt.replays, k)
			}
		}
		opt.replays[key] = &stepReplay{}
		return stepEager(b, m, opt, images, masks, form)
	}
	if r.refused {
		return stepEager(b, m, opt, images, masks, form)
	}
	if r.r == nil {
		return stepCapture(c, b, m, opt, r, images, masks, form)
	}
	// Replay: the dry run advances host state and must match the capture.
	t := ops.NewTape(b)
	defer t.Release()
	opt.PrepareTape(t)
	counters := saveCounters(m)
	plan, err := t.LearnPlan(func(d *ops.Tape) { forwardLoss(m, images, masks, form)(d) })
	if err != nil || !plan.Same(r.plan) {
		restoreCounters(m, counters)
		r.release(b)
		delete(opt.replays, key)
		return stepEager(b, m, opt, images, masks, form)
	}
	if err := b.Copy(r.x, images); err != nil {
		return nil, err
	}
	if err := b.Copy(r.y, masks); err != nil {
		return nil, err
	}
	ops.ParamsWritten() // the replayed SGD kernels update the parameters: inference folds again
	if err := r.r.Run(); err != nil {
		// A capture the backend can no longer replay (a later one failed): record afresh.
		r.release(b)
		delete(opt.replays, key)
		return stepEager(b, m, opt, images, masks, form)
	}
	read, err := ops.ReadLater(b, r.loss)
	if err != nil {
		return nil, err
	}
	return &PendingLoss{read: read}, nil
}

// stepCapture runs one step while capturing it. The batch is copied into the capture's own
// input tensors first, outside the capture: replays read those, which each step refills.
func stepCapture(c ops.Capturer, b ops.Backend, m nn.Segmenter, opt *SGD, r *stepReplay, images, masks *tensor.Tensor, form ops.StructureLossForm) (*PendingLoss, error) {
	var x, y *tensor.Tensor
	release := func(ts ...*tensor.Tensor) {
		for _, t := range ts {
			if t != nil {
				b.Release(t.Storage())
			}
		}
	}
	x, err := b.Alloc(images.Shape())
	if err == nil {
		err = b.Copy(x, images)
	}
	if err == nil {
		if y, err = b.Alloc(masks.Shape()); err == nil {
			err = b.Copy(y, masks)
		}
	}
	if err != nil {
		release(x, y)
		return nil, err
	}
	if err := c.BeginCapture(); err != nil {
		r.refused = true // this backend cannot capture here (no push descriptors, profiling)
		release(x, y)
		return stepEager(b, m, opt, images, masks, form)
	}
	loss, plan, err := recordStep(b, m, opt, x, y, form)
	rep, cerr := c.EndCapture()
	if err == nil && cerr == nil {
		r.r, r.x, r.y, r.loss, r.plan = rep, x, y, loss, plan
	} else {
		// The step ran all the same; a capture that failed is not tried again for this key.
		r.refused = cerr != nil
		if rep != nil {
			rep.Release()
		}
		defer release(x, y, loss)
	}
	if err != nil {
		return nil, err
	}
	read, err := ops.ReadLater(b, loss)
	if err != nil {
		return nil, err
	}
	return &PendingLoss{read: read}, nil
}

// recordStep is a step's device work — planned forward, backward, guarded update — leaving the
// loss on the device.
func recordStep(b ops.Backend, m nn.Segmenter, opt *SGD, images, masks *tensor.Tensor, form ops.StructureLossForm) (*tensor.Tensor, *ops.LivePlan, error) {
	t := ops.NewTape(b)
	defer t.Release()
	opt.PrepareTape(t)
	loss, plan := plannedForward(t, m, forwardLoss(m, images, masks, form))
	if err := t.Backward(loss); err != nil {
		opt.ZeroGrad()
		return nil, nil, err
	}
	if err := opt.Step(loss); err != nil {
		b.Release(loss.Storage())
		return nil, nil, fmt.Errorf("sgd: %w", err)
	}
	return loss, plan, nil
}

func saveCounters(m nn.Module) map[string]int64 {
	c := map[string]int64{}
	nn.WalkCounters(m, "", func(name string, n nn.Counter) { c[name] = *n.Ptr })
	return c
}

func restoreCounters(m nn.Module, c map[string]int64) {
	nn.WalkCounters(m, "", func(name string, n nn.Counter) { *n.Ptr = c[name] })
}
