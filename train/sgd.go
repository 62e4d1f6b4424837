// Package train trains and evaluates segmentation models: the optimiser and learning-rate
// schedule of the official recipe, checkpoints, and the training loop.
package train

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// SGD is torch.optim.SGD over a model's trainable parameters, with one momentum buffer each.
//
// The parameters live as views into one flat buffer, and so do their gradients and momentum
// buffers, so an update of every parameter is one kernel. The update is guarded on the device:
// a non-finite loss (or an earlier one) skips it and halts the optimiser, which lets the host
// read a step's loss while the next step already runs. State-dict names are unchanged.
type SGD struct {
	b      ops.Backend
	params []nn.NamedParam
	// flat parameters, gradients and momentum (nil without momentum), the halt flag [1] and
	// the learning rate [1] the kernel reads (so captured steps follow the schedule).
	flat, grads, momentum, halt, lr *tensor.Tensor
	lrSet                           float32 // the value in lr; NaN before the first write
	// scale is dynamic loss scaling's state (ops.LossScaleState) when EnableLossScaling was
	// called, with its update rule.
	scale     *tensor.Tensor
	scaleRule ops.LossScaleParams
	// slots[p] is p's gradient view; moms by name are the momentum views.
	slots map[*tensor.Tensor]*tensor.Tensor
	moms  map[string]*tensor.Tensor
	offs  []int // element offset of each parameter in the flat buffers, and the total last
	P     ops.SGDParams
	// Eager records every training step afresh instead of replaying captured ones (replay.go).
	Eager   bool
	replays map[replayKey]*stepReplay
}

// NewSGD moves m's trainable parameters into one flat buffer on b (replacing each by a view of
// it) and creates zeroed gradient and momentum buffers alike (PyTorch's first step, buf = g, is
// the same update). Parameters replaced later (nn.MoveTo) leave the optimiser; load values with
// nn.LoadState, which writes into the views.
func NewSGD(b ops.Backend, m nn.Module, p ops.SGDParams) (*SGD, error) {
	s := &SGD{b: b, lrSet: float32(math.NaN()), slots: map[*tensor.Tensor]*tensor.Tensor{}, moms: map[string]*tensor.Tensor{}, P: p, replays: map[replayKey]*stepReplay{}}
	var entries []nn.Entry
	var names []string
	total := 0
	nn.Walk(m, "", func(name string, e nn.Entry) {
		if e.Kind == nn.Param && (*e.Ptr).RequiresGrad() {
			entries = append(entries, e)
			names = append(names, name)
			s.offs = append(s.offs, total)
			total += (*e.Ptr).Numel()
		}
	})
	s.offs = append(s.offs, total)
	if total == 0 {
		return s, nil
	}
	var err error
	alloc := func(what string) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		if t, err = ops.Zeros(b, total); err != nil {
			err = fmt.Errorf("sgd: %s buffer of %d values: %w", what, total, err)
		}
		return t
	}
	s.flat, s.grads = alloc("parameter"), alloc("gradient")
	if p.Momentum != 0 {
		s.momentum = alloc("momentum")
	}
	if err != nil {
		s.release()
		return nil, err
	}
	if s.halt, err = ops.Zeros(b, 1); err != nil {
		s.release()
		return nil, fmt.Errorf("sgd: halt flag: %w", err)
	}
	if s.lr, err = ops.Zeros(b, 1); err != nil {
		s.release()
		return nil, fmt.Errorf("sgd: learning rate: %w", err)
	}
	for i, e := range entries {
		old := *e.Ptr
		pv, err := s.view(s.flat, i, old.Shape())
		if err == nil {
			err = b.Copy(pv, old)
		}
		if err != nil {
			s.release()
			return nil, fmt.Errorf("sgd: move %s into the flat buffer: %w", names[i], err)
		}
		pv.Name = old.Name
		pv.SetRequiresGrad(true)
		if old.Grad != nil {
			b.Release(old.Grad.Storage())
		}
		b.Release(old.Storage())
		*e.Ptr = pv
		s.params = append(s.params, nn.NamedParam{Name: names[i], Tensor: pv})
		s.slots[pv], _ = s.view(s.grads, i, old.Shape())
		if s.momentum != nil {
			s.moms[names[i]], _ = s.view(s.momentum, i, old.Shape())
		}
	}
	return s, nil
}

// view is parameter i's part of a flat buffer, shaped like it.
func (s *SGD) view(flat *tensor.Tensor, i int, shape tensor.Shape) (*tensor.Tensor, error) {
	v, err := flat.Narrow(0, s.offs[i], s.offs[i+1]-s.offs[i])
	if err != nil {
		return nil, err
	}
	return v.Reshape(shape...)
}

// Release frees the optimiser's flat buffers (and so the parameters, views of them) and its
// captured steps. Neither it nor its model may be used afterwards.
func (s *SGD) Release() {
	s.ReleaseReplays()
	s.release()
}

func (s *SGD) release() {
	for _, t := range []*tensor.Tensor{s.flat, s.grads, s.momentum, s.halt, s.lr, s.scale} {
		if t != nil {
			s.b.Release(t.Storage())
		}
	}
}

// syncLR writes P.LR into the device's learning-rate tensor when it changed. It must run outside
// a capture (an upload ends one): stepCaptured calls it before capturing or replaying.
func (s *SGD) syncLR() error {
	if s.lr == nil || s.P.LR == s.lrSet {
		return nil
	}
	if err := s.b.Upload(s.lr, []float32{s.P.LR}); err != nil {
		return fmt.Errorf("sgd: learning rate: %w", err)
	}
	s.lrSet = s.P.LR
	return nil
}

// kernelParams is P as the kernel gets it: the learning rate (and loss scale) read from the device.
func (s *SGD) kernelParams() ops.SGDParams {
	p := s.P
	p.LR, p.LRFrom, p.ScaleFrom = 0, s.lr, s.scale
	return p
}

// GradSlots maps each parameter to its gradient's view of the flat gradient buffer, for
// ops.Tape.SetGradSlots.
func (s *SGD) GradSlots() map[*tensor.Tensor]*tensor.Tensor { return s.slots }

// Step updates every parameter that has a gradient, then drops the gradients. With loss given
// (the step's one-element loss on the device), the update is guarded: skipped on the device if
// the loss is not finite or the optimiser was halted by an earlier one, which halts it.
// Parameters with gradients are updated by one kernel per contiguous run (one in all, when every
// parameter has a gradient).
func (s *SGD) Step(loss *tensor.Tensor) error {
	if err := s.syncLR(); err != nil {
		return err
	}
	p := s.kernelParams()
	var halt *tensor.Tensor
	if loss != nil {
		halt = s.halt
	}
	// runs are [first, end) ranges of parameters that have gradients, each one kernel.
	var runs [][2]int
	run := -1 // first parameter of the current run of parameters with gradients
	flush := func(end int) {
		if run >= 0 {
			runs = append(runs, [2]int{run, end})
			run = -1
		}
	}
	for i, np := range s.params {
		g, slot := np.Tensor.Grad, s.slots[np.Tensor]
		if g == nil {
			flush(i)
			continue
		}
		if g != slot {
			// A gradient made outside a tape with these slots: bring it into the flat buffer.
			if err := s.b.Copy(slot, g); err != nil {
				return fmt.Errorf("%s: %w", np.Name, err)
			}
			s.b.Release(g.Storage())
		}
		if run < 0 {
			run = i
		}
	}
	flush(len(s.params))
	slice := func(flat *tensor.Tensor, r [2]int) *tensor.Tensor {
		v, _ := flat.Narrow(0, s.offs[r[0]], s.offs[r[1]]-s.offs[r[0]])
		return v
	}
	name := func(r [2]int) string { return s.params[r[0]].Name + ".." + s.params[r[1]-1].Name }
	if s.scale != nil {
		// Every gradient is checked before any parameter moves: an overflow anywhere skips all.
		for _, r := range runs {
			if err := ops.CheckFinite(s.b, s.scale, slice(s.grads, r)); err != nil {
				return fmt.Errorf("%s: %w", name(r), err)
			}
		}
	}
	for _, r := range runs {
		g := slice(s.grads, r)
		m := g // without momentum the kernel never reads the buffer
		if s.momentum != nil {
			m = slice(s.momentum, r)
		}
		if err := ops.GuardedSGDStep(s.b, slice(s.flat, r), g, m, loss, halt, p); err != nil {
			return fmt.Errorf("%s: %w", name(r), err)
		}
	}
	if s.scale != nil {
		if err := ops.UpdateLossScale(s.b, s.scale, s.scaleRule); err != nil {
			return err
		}
	}
	s.ZeroGrad()
	return nil
}

// EnableLossScaling turns on dynamic loss scaling (torch.cuda.amp.GradScaler's rule, on the
// device): the backward pass is seeded with the scale (PrepareTape), the update divides it out,
// and a step whose gradients are not all finite is skipped and lowers the scale, without the
// host reading anything. For mixed precision, whose fp16 gradients would otherwise underflow.
func (s *SGD) EnableLossScaling(init float32, rule ops.LossScaleParams) error {
	if !(init > 0) || math.IsInf(float64(init), 0) {
		return fmt.Errorf("sgd: initial loss scale %v must be positive and finite", init)
	}
	if s.scale == nil {
		t, err := ops.Zeros(s.b, ops.LossScaleStateLen)
		if err != nil {
			return fmt.Errorf("sgd: loss-scale state: %w", err)
		}
		s.scale = t
	}
	st := make([]float32, ops.LossScaleStateLen)
	st[ops.LossScaleValue] = init
	if err := s.b.Upload(s.scale, st); err != nil {
		return fmt.Errorf("sgd: loss-scale state: %w", err)
	}
	s.scaleRule = rule
	return nil
}

// LossScale reads the loss scale and the number of steps skipped so far (a host wait); scaled
// is false when loss scaling is off.
func (s *SGD) LossScale() (scale float32, skipped int, scaled bool, err error) {
	if s.scale == nil {
		return 1, 0, false, nil
	}
	v, err := s.b.Download(s.scale)
	if err != nil {
		return 0, 0, true, fmt.Errorf("sgd: loss-scale state: %w", err)
	}
	return v[ops.LossScaleValue], int(v[ops.LossScaleSkipped]), true, nil
}

// PrepareTape points t's leaf gradients at the flat gradient buffer and, with loss scaling,
// seeds its backward pass with the scale.
func (s *SGD) PrepareTape(t *ops.Tape) {
	t.SetGradSlots(s.slots)
	if s.scale != nil {
		t.SetLossScale(s.scale)
	}
}

// ZeroGrad drops the parameters' gradients (views of the flat buffer, which is kept).
func (s *SGD) ZeroGrad() {
	for _, np := range s.params {
		if g := np.Tensor.Grad; g != nil && g != s.slots[np.Tensor] {
			s.b.Release(g.Storage())
		}
		np.Tensor.Grad = nil
	}
}

// ClearHalt resumes guarded updates after a non-finite loss halted them.
func (s *SGD) ClearHalt() error {
	if s.halt == nil {
		return nil
	}
	return s.b.Fill(s.halt, 0)
}

// LossScaleStateName is the entry of State that holds the loss-scale state; no parameter has a
// name with a space.
const LossScaleStateName = "loss scale"

// State returns the momentum buffers on the host, by parameter name, and with loss scaling its
// state under LossScaleStateName.
func (s *SGD) State() (map[string]nn.HostTensor, error) {
	out := map[string]nn.HostTensor{}
	for name, buf := range s.moms {
		v, err := s.b.Download(buf)
		if err != nil {
			return nil, fmt.Errorf("sgd state %s: %w", name, err)
		}
		out[name] = nn.HostTensor{Shape: append([]int(nil), buf.Shape()...), Data: v}
	}
	if s.scale != nil {
		v, err := s.b.Download(s.scale)
		if err != nil {
			return nil, fmt.Errorf("sgd state: loss scale: %w", err)
		}
		out[LossScaleStateName] = nn.HostTensor{Shape: []int{ops.LossScaleStateLen}, Data: v}
	}
	return out, nil
}

// LoadState restores momentum buffers saved by State; every buffer must be present. It also
// clears a halt.
func (s *SGD) LoadState(st map[string]nn.HostTensor) error {
	for name, buf := range s.moms {
		h, ok := st[name]
		if !ok {
			return fmt.Errorf("sgd state: no momentum buffer for %s", name)
		}
		if !tensor.Shape(h.Shape).Equal(buf.Shape()) {
			return fmt.Errorf("sgd state %s: shape %v, parameter has %v", name, h.Shape, buf.Shape())
		}
		if err := s.b.Upload(buf, h.Data); err != nil {
			return fmt.Errorf("sgd state %s: %w", name, err)
		}
	}
	// A checkpoint from an unscaled run leaves a scaled optimiser at its initial scale.
	if h, ok := st[LossScaleStateName]; ok && s.scale != nil {
		if len(h.Data) != ops.LossScaleStateLen {
			return fmt.Errorf("sgd state %s: %d values, want %d", LossScaleStateName, len(h.Data), ops.LossScaleStateLen)
		}
		if err := s.b.Upload(s.scale, h.Data); err != nil {
			return fmt.Errorf("sgd state %s: %w", LossScaleStateName, err)
		}
	}
	return s.ClearHalt()
}

// TriangularLR is the official per-epoch schedule (F3Net's "warm-up and linear decay"):
// lr_e = peak·(1 − |2(e+1)/(E+1) − 1|) for epoch e in [0, E).
func TriangularLR(peak float64, epoch, epochs int) float64 {
	x := 2*float64(epoch+1)/float64(epochs+1) - 1
	if x < 0 {
		x = -x
	}
	return peak * (1 - x)
}

// DescribeSchedule says what TriangularLR does over a run in one line: the first epoch's rate, the
// highest and the epochs that have it, and the last epoch's rate.
func DescribeSchedule(peak float64, epochs int) string {
	top, at := 0.0, []int{}
	for e := range epochs {
		switch lr := TriangularLR(peak, e, epochs); {
		case lr > top*(1+1e-12):
			top, at = lr, []int{e + 1}
		case lr >= top*(1-1e-12):
			at = append(at, e+1)
		}
	}
	if len(at) == epochs {
		return fmt.Sprintf("lr %.4g in every epoch (the triangle's top, %g, is reached only with an odd number of epochs)", top, peak)
	}
	where := fmt.Sprintf("epoch %d", at[0])
	if len(at) > 1 {
		where = fmt.Sprintf("epochs %d-%d", at[0], at[len(at)-1])
	}
	return fmt.Sprintf("lr %.4g in epoch 1, rising linearly to %.4g in %s, falling to %.4g in epoch %d (the triangle's top, %g, is reached only with an odd number of epochs)",
		TriangularLR(peak, 0, epochs), top, where, TriangularLR(peak, epochs-1, epochs), epochs, peak)
}
