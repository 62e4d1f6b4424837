// Package bench measures models: parameter and operation counts (the paper's Table 5) by running
// a model's forward pass on a counting backend, and training/inference speed on a real backend.
package bench

import (
	"fmt"
	"strings"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// OpCount is what one kernel call costs under each counting convention.
type OpCount struct {
	Scope string // the tape scope, e.g. "encode2.layer1.0.convs.1"
	Op    string
	// MACs are the multiply-adds of convolutions and matrix products only (linear layers and
	// attention's products included), as PyTorch's FlopCounterMode counts them (its "FLOPs" are
	// twice these).
	MACs int64
	// ThopNew and ThopOld follow thop's per-module rules after and before its 2022-06 refactor
	// (reference.md §5): convolutions count output·(Cin/groups)·k² (old: +1 per output with bias);
	// batch and layer norm 4 per element (old: 2); average pooling 1 per output; nn.Linear its
	// multiply-adds (see MatMul); ReLU, GELU, max pooling and functional ops (interpolate, cat,
	// add, split, torch.matmul, softmax) count 0.
	ThopNew, ThopOld int64
}

// Counter is an ops.Backend that computes nothing: it allocates placeholder storage, lets the
// tape propagate and check shapes, and records each kernel's cost under the current scope.
type Counter struct {
	Tape *ops.Tape
	Ops  []OpCount
}

type placeholder struct{ n int }

func (p *placeholder) Len() int { return p.n }

func (c *Counter) record(op string, macs, thopNew, thopOld int64) error {
	scope := ""
	if c.Tape != nil {
		scope = c.Tape.ScopeName()
	}
	c.Ops = append(c.Ops, OpCount{Scope: scope, Op: op, MACs: macs, ThopNew: thopNew, ThopOld: thopOld})
	return nil
}

func n64(t *tensor.Tensor) int64 { return int64(t.Numel()) }

// Name implements ops.Backend.
func (c *Counter) Name() string { return "counter" }

// Alloc implements ops.Backend with storage that holds no data.
func (c *Counter) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	return tensor.New(&placeholder{shape.Numel()}, shape)
}

func (c *Counter) Release(tensor.Storage)                                  {}
func (c *Counter) Upload(*tensor.Tensor, []float32) error                  { return nil }
func (c *Counter) Sync() error                                             { return nil }
func (c *Counter) Fill(*tensor.Tensor, float32) error                      { return nil }
func (c *Counter) Copy(dst, src *tensor.Tensor) error                      { return nil }
func (c *Counter) Unary(ops.UnaryOp, *tensor.Tensor, *tensor.Tensor) error { return nil }
func (c *Counter) Binary(ops.BinaryOp, *tensor.Tensor, *tensor.Tensor, *tensor.Tensor) error {
	return nil
}
func (c *Counter) Axpby(*tensor.Tensor, *tensor.Tensor, float32, float32) error { return nil }
func (c *Counter) Sum(*tensor.Tensor, *tensor.Tensor, ops.Axes) error           { return nil }
func (c *Counter) Expand(*tensor.Tensor, *tensor.Tensor, ops.Axes, float32) error {
	return nil
}

// Download returns zeros: counting never depends on values.
func (c *Counter) Download(src *tensor.Tensor) ([]float32, error) {
	return make([]float32, src.Numel()), nil
}

// Conv2D implements ops.Backend.
func (c *Counter) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	macs := n64(dst) * int64(w.Dim(1)*w.Dim(2)*w.Dim(3))
	old := macs
	if bias != nil {
		old += n64(dst)
	}
	return c.record("conv2d", macs, macs, old)
}

// Conv2DAct implements ops.Backend: a convolution whose fused residual add and ReLU count
// nothing, as thop counts add and ReLU.
func (c *Counter) Conv2DAct(dst, x, w, bias *tensor.Tensor, _ ops.ConvAct, p ops.Conv2DParams) error {
	return c.Conv2D(dst, x, w, bias, p)
}

// BatchNormEval implements ops.Backend.
// A fused residual add and ReLU count nothing, as thop counts add and ReLU.
func (c *Counter) BatchNormEval(dst, x, _, _, _, _, _ *tensor.Tensor, _ bool, _ ops.BatchNormParams) error {
	return c.record("batch_norm2d", 0, 4*n64(x), 2*n64(x))
}

// BatchNormTrain implements ops.Backend.
func (c *Counter) BatchNormTrain(dst, _, _, x, _, _, _, _, _ *tensor.Tensor, _ bool, _ ops.BatchNormParams) error {
	return c.record("batch_norm2d", 0, 4*n64(x), 2*n64(x))
}

// Conv2DBatchStats implements ops.Backend: the convolution, and the statistics as
// BatchNormTrain counts them (its whole cost: thop counts batch norm by its output).
func (c *Counter) Conv2DBatchStats(dst, mean, invStd, x, _, w, runMean, runVar *tensor.Tensor, p ops.Conv2DParams, bp ops.BatchNormParams) error {
	if err := c.Conv2D(dst, x, w, nil, p); err != nil {
		return err
	}
	return c.record("batch_norm2d", 0, 4*n64(dst), 2*n64(dst))
}

// BatchNormApply implements ops.Backend: counted with the statistics, in Conv2DBatchStats.
func (c *Counter) BatchNormApply(dst, x, _, _, _, _, _ *tensor.Tensor, _ bool) error {
	return nil
}

// AvgPool2D implements ops.Backend.
func (c *Counter) AvgPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	return c.record("avg_pool2d", 0, n64(dst), n64(dst))
}

// MaxPool2D implements ops.Backend.
func (c *Counter) MaxPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	return c.record("max_pool2d", 0, 0, 0)
}

// ResizeBilinear implements ops.Backend: CHNet resizes with F.interpolate, which thop ignores.
func (c *Counter) ResizeBilinear(dst, x *tensor.Tensor, _ bool) error {
	return c.record("resize_bilinear", 0, 0, 0)
}

// ResizeBilinearAdd implements ops.Backend: a resize (which thop ignores) and an add (which it
// does not see: a functional add).
func (c *Counter) ResizeBilinearAdd(dst, x *tensor.Tensor, _, _ bool) error {
	return c.record("resize_bilinear", 0, 0, 0)
}

// The backward and loss kernels are never called by a forward-only profile; they count nothing.
func (c *Counter) UnaryGrad(ops.UnaryOp, *tensor.Tensor, *tensor.Tensor, *tensor.Tensor, *tensor.Tensor) error {
	return nil
}
func (c *Counter) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error { return nil }
func (c *Counter) Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	return nil
}
func (c *Counter) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error { return nil }
func (c *Counter) Conv2DGradWeightSum(dst, x, x2, gy *tensor.Tensor, p ops.Conv2DParams) error {
	return nil
}
func (c *Counter) BatchNormGrad(_, _, _, _, _, _, _, _, _, _, _ *tensor.Tensor, _ bool) error {
	return nil
}
func (c *Counter) MaxPool2DGrad(gx, gy, x *tensor.Tensor, p ops.PoolParams) error      { return nil }
func (c *Counter) AvgPool2DGrad(gx, gy *tensor.Tensor, p ops.PoolParams) error         { return nil }
func (c *Counter) ResizeBilinearGrad(gx, gy *tensor.Tensor, _ bool) error              { return nil }
func (c *Counter) BCEWithLogits(dst, x, target *tensor.Tensor) error                   { return nil }
func (c *Counter) BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error            { return nil }
func (c *Counter) StructureLoss(_, _, _ *tensor.Tensor, _ ops.StructureLossForm) error { return nil }
func (c *Counter) StructureLossGrad(_, _, _, _ *tensor.Tensor, _ ops.StructureLossForm) error {
	return nil
}
func (c *Counter) SGDStep(_, _, _, _, _ *tensor.Tensor, _ ops.SGDParams) error { return nil }
func (c *Counter) CheckFinite(_, _ *tensor.Tensor) error                       { return nil }
func (c *Counter) UpdateLossScale(_ *tensor.Tensor, _ ops.LossScaleParams) error {
	return nil
}

// MatMul implements ops.TransformerKernels: B·M·N·K multiply-adds. thop sees a product only as
// an nn.Linear module (in_features per output element, the same B·M·N·K); a weight shared by
// every batch item (a rank-2 operand, ops.Linear's layout) is that case. Products of two batched
// activations (attention's q·kᵀ and p·v) are torch.matmul calls, which thop's module hooks never
// see, so they count for PyTorch's FlopCounter ("MACs") but not for thop.
func (c *Counter) MatMul(dst, a, b *tensor.Tensor, p ops.MatMulParams) error {
	k := a.Dim(a.Rank() - 1)
	if p.TransA {
		k = a.Dim(a.Rank() - 2)
	}
	macs := n64(dst) * int64(k)
	var thop int64
	if a.Rank() == 2 || b.Rank() == 2 {
		thop = macs
	}
	return c.record("matmul", macs, thop, thop)
}

// Softmax implements ops.TransformerKernels. The baselines call softmax functionally (UTNet's
// F.softmax) or through nn.Softmax (TransUNet's Attention.softmax, which thop would count as
// rows·(3·D−1)); both are counted 0 here, about 0.03 G for TransUNet at 256x256 (see its doc).
func (c *Counter) Softmax(dst, x *tensor.Tensor) error { return c.record("softmax", 0, 0, 0) }

// LayerNorm implements ops.TransformerKernels: always an nn.LayerNorm module in the reference
// code, counted like batch norm (thop 0.1.1: 2 per element, doubled when elementwise-affine; the
// pre-2022 rules: 2 per element).
func (c *Counter) LayerNorm(dst, _, _, x, _, _ *tensor.Tensor, _ ops.LayerNormParams) error {
	return c.record("layer_norm", 0, 4*n64(x), 2*n64(x))
}

// Permute implements ops.TransformerKernels; data movement counts nothing.
func (c *Counter) Permute(dst, x *tensor.Tensor, perm []int) error {
	return c.record("permute", 0, 0, 0)
}

func (c *Counter) SoftmaxGrad(gx, gy, y *tensor.Tensor) error                { return nil }
func (c *Counter) LayerNormGrad(_, _, _, _, _, _, _, _ *tensor.Tensor) error { return nil }

// Totals sums the recorded counts, optionally only for scopes with a prefix.
func (c *Counter) Totals(prefix string) OpCount {
	var s OpCount
	s.Scope = prefix
	for _, o := range c.Ops {
		if strings.HasPrefix(o.Scope, prefix) {
			s.MACs += o.MACs
			s.ThopNew += o.ThopNew
			s.ThopOld += o.ThopOld
		}
	}
	return s
}

// ByScope sums the counts per scope truncated to depth components ("encode2.layer1" at 2).
func (c *Counter) ByScope(depth int) []OpCount {
	sums := map[string]*OpCount{}
	var order []string
	for _, o := range c.Ops {
		parts := strings.Split(o.Scope, ".")
		if len(parts) > depth {
			parts = parts[:depth]
		}
		key := strings.Join(parts, ".")
		s, ok := sums[key]
		if !ok {
			s = &OpCount{Scope: key}
			sums[key] = s
			order = append(order, key)
		}
		s.MACs += o.MACs
		s.ThopNew += o.ThopNew
		s.ThopOld += o.ThopOld
	}
	out := make([]OpCount, len(order))
	for i, k := range order {
		out[i] = *sums[k]
	}
	return out
}

// Profile runs forward on a fresh counting backend with an input of the given shape and returns
// the counter. forward builds its model on the counter's backend (via the init argument).
func Profile(shape []int, forward func(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor) (*Counter, error) {
	c := &Counter{}
	t := ops.NewTape(c)
	t.SetNoGrad(true)
	t.SetFoldBatchNorm(false) // thop counts each batch norm
	c.Tape = t
	x, err := c.Alloc(shape)
	if err != nil {
		return nil, err
	}
	c.Ops = nil
	if y := forward(t, x); y == nil || t.Err() != nil {
		return nil, fmt.Errorf("profile: %w", t.Err())
	}
	return c, nil
}

// The counter must accept every kernel a model can call.
var (
	_ ops.Backend            = (*Counter)(nil)
	_ ops.TransformerKernels = (*Counter)(nil)
)
