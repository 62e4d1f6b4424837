package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Liveness: an eager tape cannot know, when an op returns its output, whether model code will
// pass that tensor to another op later, so without help every intermediate lives until Backward
// (if no rule saved it) or Release. A LivePlan supplies the missing knowledge: a dry run of the
// same forward code (LearnPlan) records, kernel by kernel, which tape allocations each kernel
// call touches. An allocation that no backward rule saves and that a later kernel reads is then
// released right after its last use in the real run (UsePlan). The real run checks every kernel
// call against the plan and stops releasing at the first difference, so a plan is only ever
// applied to the op sequence it was learned from.

// LivePlan is what LearnPlan learned about one forward pass: for each kernel call, the tape
// allocations it touches (by allocation order), and which allocations to release after it.
type LivePlan struct {
	uses    [][]int32 // per kernel call: allocation indices, -1 for storage from elsewhere
	sizes   []int     // per allocation: elements
	release [][]int32 // per kernel call: allocations whose last use it is
	// Kernels, Allocs and Releasable count the plan's kernel calls, allocations, and the
	// allocations it releases early.
	Kernels, Allocs, Releasable int
}

// planRun follows a plan (or, dry, records one) through a tape's kernel calls.
type planRun struct {
	plan      *LivePlan
	dry       bool
	index     map[tensor.Storage]int32 // allocation index of every storage allocated so far
	stores    []tensor.Storage         // and back
	kernel    int
	diverged  bool
	scratch   []int32
	divergeAt string
	// Dry: the last kernel call that read, and that wrote, each allocation (-1: none).
	lastRead, lastWrite []int
}

// dryStorage is the storage of a dry run: a length and nothing else.
type dryStorage struct{ n int }

func (s *dryStorage) Len() int { return s.n }

// LearnPlan runs forward on a dry copy of the tape: ops check shapes, allocate placeholder
// storage and record their backward rules, but no kernel runs and downloads read zeros. The
// returned plan is for UsePlan on a tape that then runs the same forward code. Host state the
// forward code changes (batch-norm counters) is the caller's to restore.
func (t *Tape) LearnPlan(forward func(dry *Tape)) (*LivePlan, error) {
	run := &planRun{plan: &LivePlan{}, dry: true, index: map[tensor.Storage]int32{}}
	d := NewTape(&tracer{inner: t.b, run: run})
	d.noGrad, d.noFold = t.noGrad, t.noFold
	d.slots = t.slots
	forward(d)
	if d.err != nil {
		return nil, fmt.Errorf("liveness plan: %w", d.err)
	}
	p := run.plan
	p.Kernels, p.Allocs = len(p.uses), len(p.sizes)
	// An allocation may be released after its last read if that read comes after its last write
	// (what is written last is an output, and stays) and no rule or Keep holds it.
	held := make([]bool, len(p.sizes))
	for _, n := range d.nodes {
		for _, x := range n.saved {
			if x != nil {
				if a, ok := run.index[x.Storage()]; ok {
					held[a] = true
				}
			}
		}
	}
	for s := range d.kept {
		if a, ok := run.index[s]; ok {
			held[a] = true
		}
	}
	p.release = make([][]int32, len(p.uses))
	for a := range p.sizes {
		if r := run.lastRead[a]; !held[a] && r >= 0 && r > run.lastWrite[a] {
			p.release[r] = append(p.release[r], int32(a))
			p.Releasable++
		}
	}
	return p, nil
}

// UsePlan makes the tape release intermediates at their last use as p recorded it, until
// Backward or Release. p must come from LearnPlan with the same forward code and inputs.
func (t *Tape) UsePlan(p *LivePlan) {
	if p == nil {
		return
	}
	if tr, ok := t.b.(*tracer); ok {
		t.b = tr.inner
	}
	t.b = &tracer{inner: t.b, run: &planRun{plan: p, index: map[tensor.Storage]int32{}}, tape: t}
}

// PlanDiverged reports whether the tape's kernel calls departed from its plan (from then on
// nothing was released early), with the first kernel call that did.
func (t *Tape) PlanDiverged() (bool, string) {
	if tr, ok := t.b.(*tracer); ok {
		return tr.run.diverged, tr.run.divergeAt
	}
	return false, ""
}

// endPlan stops following the plan (Backward's rules are not part of it).
func (t *Tape) endPlan() {
	if tr, ok := t.b.(*tracer); ok && !tr.run.dry {
		t.b = tr.inner
	}
}

// tracer is the backend a planned or dry tape runs on: every kernel call passes its tensors to
// use before (dry: instead of) running. It wraps every Backend method explicitly (it does not
// embed the interface), so a method added to Backend fails to compile here until it is traced:
// an untraced kernel would run on a dry run's placeholders, or escape the liveness check.
type tracer struct {
	inner Backend
	run   *planRun
	tape  *Tape // the real tape whose storages are released; nil when dry
}

func (tr *tracer) Name() string { return tr.inner.Name() }

// use notes one kernel call that writes ts[:writes] and reads the rest; it reports whether
// the kernel must be skipped (dry run).
func (tr *tracer) use(what string, writes int, ts ...*tensor.Tensor) bool {
	r := tr.run
	us := r.scratch[:0]
	for i, x := range ts {
		if x == nil {
			continue
		}
		a, ok := r.index[x.Storage()]
		if !ok {
			a = -1
		}
		us = append(us, a)
		if r.dry && a >= 0 {
			if i < writes {
				r.lastWrite[a] = len(r.plan.uses)
			} else {
				r.lastRead[a] = len(r.plan.uses)
			}
		}
	}
	r.scratch = us
	if r.dry {
		r.plan.uses = append(r.plan.uses, append([]int32(nil), us...))
		return true
	}
	if !r.diverged {
		if r.kernel >= len(r.plan.uses) || !equalInt32(r.plan.uses[r.kernel], us) {
			r.diverged, r.divergeAt = true, fmt.Sprintf("kernel call %d (%s)", r.kernel, what)
		}
	}
	return false
}

// done releases what the plan says the kernel call just made was the last use of.
func (tr *tracer) done() {
	r := tr.run
	if r.dry {
		return
	}
	k := r.kernel
	r.kernel++
	if r.diverged {
		return
	}
	for _, a := range r.plan.release[k] {
		tr.tape.releaseStorage(r.stores[a])
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// kernel runs one kernel call, which writes ts[:writes] and reads the rest, through the plan.
func (tr *tracer) kernel(what string, run func() error, writes int, ts ...*tensor.Tensor) error {
	if tr.use(what, writes, ts...) {
		return nil
	}
	if err := run(); err != nil {
		return err
	}
	tr.done()
	return nil
}

// Alloc numbers the allocation; a dry run's holds nothing.
func (tr *tracer) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	r := tr.run
	var x *tensor.Tensor
	var err error
	if r.dry {
		if err = shape.Validate(); err == nil {
			x, err = tensor.New(&dryStorage{shape.Numel()}, shape)
		}
	} else {
		x, err = tr.inner.Alloc(shape)
	}
	if err != nil {
		return nil, err
	}
	a := int32(len(r.stores))
	r.stores = append(r.stores, x.Storage())
	if r.dry {
		r.plan.sizes = append(r.plan.sizes, shape.Numel())
		r.lastRead, r.lastWrite = append(r.lastRead, -1), append(r.lastWrite, -1)
	} else if !r.diverged && (int(a) >= len(r.plan.sizes) || r.plan.sizes[a] != shape.Numel()) {
		r.diverged, r.divergeAt = true, fmt.Sprintf("allocation %d (%v)", a, shape)
	}
	r.index[x.Storage()] = a
	return x, nil
}

func (tr *tracer) Release(s tensor.Storage) {
	if !tr.run.dry {
		tr.inner.Release(s)
	}
}

func (tr *tracer) Upload(dst *tensor.Tensor, src []float32) error {
	return tr.kernel("upload", func() error { return tr.inner.Upload(dst, src) }, 1, dst)
}

func (tr *tracer) Download(src *tensor.Tensor) ([]float32, error) {
	if tr.use("download", 0, src) {
		return make([]float32, src.Numel()), nil
	}
	v, err := tr.inner.Download(src)
	if err == nil {
		tr.done()
	}
	return v, err
}

func (tr *tracer) Sync() error {
	if tr.run.dry {
		return nil
	}
	return tr.inner.Sync()
}

func (tr *tracer) Fill(dst *tensor.Tensor, v float32) error {
	return tr.kernel("fill", func() error { return tr.inner.Fill(dst, v) }, 1, dst)
}

func (tr *tracer) Copy(dst, src *tensor.Tensor) error {
	return tr.kernel("copy", func() error { return tr.inner.Copy(dst, src) }, 1, dst, src)
}

func (tr *tracer) Unary(op UnaryOp, dst, x *tensor.Tensor) error {
	return tr.kernel(op.String(), func() error { return tr.inner.Unary(op, dst, x) }, 1, dst, x)
}

func (tr *tracer) UnaryGrad(op UnaryOp, dst, gy, x, y *tensor.Tensor) error {
	return tr.kernel(op.String()+" grad", func() error { return tr.inner.UnaryGrad(op, dst, gy, x, y) }, 1, dst, gy, x, y)
}

func (tr *tracer) Binary(op BinaryOp, dst, a, b *tensor.Tensor) error {
	return tr.kernel(op.String(), func() error { return tr.inner.Binary(op, dst, a, b) }, 1, dst, a, b)
}

func (tr *tracer) Axpby(dst, x *tensor.Tensor, alpha, beta float32) error {
	return tr.kernel("axpby", func() error { return tr.inner.Axpby(dst, x, alpha, beta) }, 1, dst, x)
}

func (tr *tracer) Sum(dst, x *tensor.Tensor, axes Axes) error {
	return tr.kernel("sum", func() error { return tr.inner.Sum(dst, x, axes) }, 1, dst, x)
}

func (tr *tracer) Expand(dst, src *tensor.Tensor, axes Axes, scale float32) error {
	return tr.kernel("expand", func() error { return tr.inner.Expand(dst, src, axes, scale) }, 1, dst, src)
}

func (tr *tracer) Conv2D(dst, x, w, bias *tensor.Tensor, p Conv2DParams) error {
	return tr.kernel("conv2d", func() error { return tr.inner.Conv2D(dst, x, w, bias, p) }, 1, dst, x, w, bias)
}

func (tr *tracer) Conv2DAct(dst, x, w, bias *tensor.Tensor, a ConvAct, p Conv2DParams) error {
	return tr.kernel("conv2d act", func() error { return tr.inner.Conv2DAct(dst, x, w, bias, a, p) }, 1, dst, x, w, bias, a.Residual)
}

func (tr *tracer) Conv2DGradInput(dst, gy, w *tensor.Tensor, p Conv2DParams) error {
	return tr.kernel("conv2d grad input", func() error { return tr.inner.Conv2DGradInput(dst, gy, w, p) }, 1, dst, gy, w)
}

func (tr *tracer) Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p Conv2DParams) error {
	return tr.kernel("conv2d grad input add", func() error { return tr.inner.Conv2DGradInputAdd(dst, gy, w, p) }, 1, dst, gy, w)
}

func (tr *tracer) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p Conv2DParams) error {
	return tr.kernel("conv2d grad weight", func() error { return tr.inner.Conv2DGradWeight(dst, x, gy, p) }, 1, dst, x, gy)
}

func (tr *tracer) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p BatchNormParams) error {
	return tr.kernel("batch_norm2d", func() error {
		return tr.inner.BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual, relu, p)
	}, 3, dst, mean, invStd, x, gamma, beta, runMean, runVar, residual)
}

func (tr *tracer) Conv2DBatchStats(dst, mean, invStd, x, x2, w, runMean, runVar *tensor.Tensor, p Conv2DParams, bp BatchNormParams) error {
	return tr.kernel("conv2d batch stats", func() error {
		return tr.inner.Conv2DBatchStats(dst, mean, invStd, x, x2, w, runMean, runVar, p, bp)
	}, 3, dst, mean, invStd, x, x2, w, runMean, runVar)
}

func (tr *tracer) Conv2DGradWeightSum(dst, x, x2, gy *tensor.Tensor, p Conv2DParams) error {
	return tr.kernel("conv2d grad weight", func() error { return tr.inner.Conv2DGradWeightSum(dst, x, x2, gy, p) }, 1, dst, x, x2, gy)
}

func (tr *tracer) BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error {
	return tr.kernel("batch_norm2d apply", func() error {
		return tr.inner.BatchNormApply(dst, x, mean, invStd, gamma, beta, residual, relu)
	}, 1, dst, x, mean, invStd, gamma, beta, residual)
}

func (tr *tracer) BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p BatchNormParams) error {
	return tr.kernel("batch_norm2d", func() error {
		return tr.inner.BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual, relu, p)
	}, 1, dst, x, gamma, beta, runMean, runVar, residual)
}

func (tr *tracer) BatchNormGrad(gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	return tr.kernel("batch_norm2d grad", func() error {
		return tr.inner.BatchNormGrad(gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd, batchStats)
	}, 4, gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd)
}

func (tr *tracer) MaxPool2D(dst, x *tensor.Tensor, p PoolParams) error {
	return tr.kernel("max_pool2d", func() error { return tr.inner.MaxPool2D(dst, x, p) }, 1, dst, x)
}

func (tr *tracer) MaxPool2DGrad(gx, gy, x *tensor.Tensor, p PoolParams) error {
	return tr.kernel("max_pool2d grad", func() error { return tr.inner.MaxPool2DGrad(gx, gy, x, p) }, 1, gx, gy, x)
}

func (tr *tracer) AvgPool2D(dst, x *tensor.Tensor, p PoolParams) error {
	return tr.kernel("avg_pool2d", func() error { return tr.inner.AvgPool2D(dst, x, p) }, 1, dst, x)
}

func (tr *tracer) AvgPool2DGrad(gx, gy *tensor.Tensor, p PoolParams) error {
	return tr.kernel("avg_pool2d grad", func() error { return tr.inner.AvgPool2DGrad(gx, gy, p) }, 1, gx, gy)
}

func (tr *tracer) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error {
	return tr.kernel("resize_bilinear", func() error { return tr.inner.ResizeBilinear(dst, x, alignCorners) }, 1, dst, x)
}

func (tr *tracer) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	return tr.kernel("resize_bilinear add", func() error { return tr.inner.ResizeBilinearAdd(dst, x, alignCorners, relu) }, 1, dst, x)
}

func (tr *tracer) ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error {
	return tr.kernel("resize_bilinear grad", func() error { return tr.inner.ResizeBilinearGrad(gx, gy, alignCorners) }, 1, gx, gy)
}

func (tr *tracer) BCEWithLogits(dst, x, target *tensor.Tensor) error {
	return tr.kernel("bce", func() error { return tr.inner.BCEWithLogits(dst, x, target) }, 1, dst, x, target)
}

func (tr *tracer) BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error {
	return tr.kernel("bce grad", func() error { return tr.inner.BCEWithLogitsGrad(gx, gy, x, target) }, 1, gx, gy, x, target)
}

func (tr *tracer) StructureLoss(dst, x, mask *tensor.Tensor, form StructureLossForm) error {
	return tr.kernel("structure_loss", func() error { return tr.inner.StructureLoss(dst, x, mask, form) }, 1, dst, x, mask)
}

func (tr *tracer) StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form StructureLossForm) error {
	return tr.kernel("structure_loss grad", func() error { return tr.inner.StructureLossGrad(gx, gLoss, x, mask, form) }, 1, gx, gLoss, x, mask)
}

func (tr *tracer) SGDStep(param, grad, momentum, loss, halt *tensor.Tensor, p SGDParams) error {
	return tr.kernel("sgd", func() error { return tr.inner.SGDStep(param, grad, momentum, loss, halt, p) }, 3, param, grad, momentum, loss, halt, p.LRFrom, p.ScaleFrom)
}

func (tr *tracer) CheckFinite(state, x *tensor.Tensor) error {
	return tr.kernel("check_finite", func() error { return tr.inner.CheckFinite(state, x) }, 1, state, x)
}

func (tr *tracer) UpdateLossScale(state *tensor.Tensor, p LossScaleParams) error {
	return tr.kernel("loss_scale", func() error { return tr.inner.UpdateLossScale(state, p) }, 1, state)
}

// transformer returns the wrapped backend's TransformerKernels, traced.
func (tr *tracer) transformer() (TransformerKernels, bool) {
	k, ok := tr.inner.(TransformerKernels)
	if !ok {
		return nil, false
	}
	return tracedTransformer{tr, k}, true
}

// tracedTransformer runs TransformerKernels through a tracer.
type tracedTransformer struct {
	tr *tracer
	k  TransformerKernels
}

func (t tracedTransformer) MatMul(dst, a, b *tensor.Tensor, p MatMulParams) error {
	return t.tr.kernel("matmul", func() error { return t.k.MatMul(dst, a, b, p) }, 1, dst, a, b)
}

func (t tracedTransformer) Softmax(dst, x *tensor.Tensor) error {
	return t.tr.kernel("softmax", func() error { return t.k.Softmax(dst, x) }, 1, dst, x)
}

func (t tracedTransformer) SoftmaxGrad(gx, gy, y *tensor.Tensor) error {
	return t.tr.kernel("softmax grad", func() error { return t.k.SoftmaxGrad(gx, gy, y) }, 1, gx, gy, y)
}

func (t tracedTransformer) LayerNorm(dst, mean, invStd, x, gamma, beta *tensor.Tensor, p LayerNormParams) error {
	return t.tr.kernel("layer_norm", func() error { return t.k.LayerNorm(dst, mean, invStd, x, gamma, beta, p) }, 3, dst, mean, invStd, x, gamma, beta)
}

func (t tracedTransformer) LayerNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor) error {
	return t.tr.kernel("layer_norm grad", func() error {
		return t.k.LayerNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd)
	}, 3, gx, gGamma, gBeta, gy, x, gamma, mean, invStd)
}

func (t tracedTransformer) Permute(dst, x *tensor.Tensor, perm []int) error {
	return t.tr.kernel("permute", func() error { return t.k.Permute(dst, x, perm) }, 1, dst, x)
}

var _ Backend = (*tracer)(nil)

// Same reports whether p and q were learned from the same sequence of kernel calls and
// allocations (so a recording of one is a recording of the other, up to the values read).
func (p *LivePlan) Same(q *LivePlan) bool {
	if p == nil || q == nil || len(p.uses) != len(q.uses) || len(p.sizes) != len(q.sizes) {
		return false
	}
	for i := range p.sizes {
		if p.sizes[i] != q.sizes[i] {
			return false
		}
	}
	for i := range p.uses {
		if !equalInt32(p.uses[i], q.uses[i]) {
			return false
		}
	}
	return true
}
