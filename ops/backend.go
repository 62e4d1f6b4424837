// Package ops is the engine's op set: each op's shape rule and checks, its gradient rule, and the
// Backend interface whose kernels compute it (ops/cpu on the host, ops/vk through Vulkan).
//
// Ops run eagerly on a Tape, which records what the backward pass needs. Kernels never allocate
// their outputs: the op validates shapes, allocates the result on the backend, and the kernel
// fills it. Every tensor a kernel receives is batch-strided (tensor.BatchStride), so channel
// slices of NCHW tensors are passed without copies.
package ops

import (
	"fmt"
	"sort"
	"sync"

	"github.com/chnet/chnet/tensor"
)

// UnaryOp names an elementwise function of one tensor.
type UnaryOp int

const (
	ReLU UnaryOp = iota
	Sigmoid
	Abs
	Neg
	// GELU is the exact Gaussian error linear unit x·Φ(x) = x/2·(1+erf(x/√2)), torch.nn.GELU's
	// default (approximate="none"); its gradient reads x.
	GELU
)

func (u UnaryOp) String() string {
	names := [...]string{"relu", "sigmoid", "abs", "neg", "gelu"}
	if u < 0 || int(u) >= len(names) {
		return fmt.Sprintf("unary(%d)", int(u))
	}
	return names[u]
}

// BinaryOp names an elementwise function of two same-shaped tensors.
type BinaryOp int

const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
)

func (b BinaryOp) String() string {
	return [...]string{"add", "sub", "mul", "div"}[b]
}

// Axes names the dimensions of an NCHW tensor that a reduction sums over (Sum) or that a
// broadcast expands along (Expand).
type Axes int

const (
	// AxesAll reduces everything to shape [1].
	AxesAll Axes = iota
	// AxesNHW reduces an [N C H W] tensor to [C] (bias and batch-norm gradients).
	AxesNHW
	// AxesHW reduces an [N C H W] tensor to [N C] (per-image sums of the structure loss).
	AxesHW
)

func (a Axes) String() string {
	return [...]string{"all", "NHW", "HW"}[a]
}

// Backend computes kernels on one device. Kernels write every element of their first argument
// (the destination) and may assume it does not overlap an input, unless a method says otherwise.
// A backend may run kernels asynchronously; Download and Sync wait for them.
type Backend interface {
	Name() string

	// Alloc returns a contiguous tensor with uninitialised contents.
	Alloc(shape tensor.Shape) (*tensor.Tensor, error)
	// Release returns storage to the backend; every tensor viewing it becomes invalid. Alloc must
	// return a new Storage value each time, even when it reuses memory.
	Release(s tensor.Storage)
	// Upload copies host values into a contiguous tensor of the backend.
	Upload(dst *tensor.Tensor, src []float32) error
	// Download copies a tensor's elements to the host in row-major order.
	Download(src *tensor.Tensor) ([]float32, error)
	// Sync waits until all submitted work has finished and reports any deferred error.
	Sync() error

	Fill(dst *tensor.Tensor, v float32) error
	Copy(dst, src *tensor.Tensor) error
	// Unary computes dst = op(x); dst may be x.
	Unary(op UnaryOp, dst, x *tensor.Tensor) error
	// UnaryGrad computes dst = gy·op'(x), given x and y = op(x); dst may alias gy. Only the
	// operand the derivative reads is passed (y for ReLU and sigmoid, x for abs and GELU); the
	// other is nil.
	UnaryGrad(op UnaryOp, dst, gy, x, y *tensor.Tensor) error
	// Binary computes dst = a op b; dst may be a or b.
	Binary(op BinaryOp, dst, a, b *tensor.Tensor) error
	// Axpby computes dst = alpha·x + beta·dst; dst may be x. With beta 0 the old contents of dst
	// are not read (uninitialised memory may hold NaN).
	Axpby(dst, x *tensor.Tensor, alpha, beta float32) error
	// Sum reduces x over axes into dst.
	Sum(dst, x *tensor.Tensor, axes Axes) error
	// Expand broadcasts src (shaped as Sum's result) along axes into dst, times scale.
	Expand(dst, src *tensor.Tensor, axes Axes, scale float32) error

	Conv2D(dst, x, w, bias *tensor.Tensor, p Conv2DParams) error
	// Conv2DAct is Conv2D with an epilogue in the same kernel: dst = conv(x, w) + bias, plus
	// a.Residual (dst's shape) when set, then max(·, 0) with a.ReLU. Inference runs every
	// conv → batch norm (→ add) (→ ReLU) of a network this way, the batch norm folded into w and
	// bias (nn.ConvBN). dst may not alias the residual.
	Conv2DAct(dst, x, w, bias *tensor.Tensor, a ConvAct, p Conv2DParams) error
	Conv2DGradInput(dst, gy, w *tensor.Tensor, p Conv2DParams) error
	// Conv2DGradInputAdd adds the input gradient to dst (dst + Conv2DGradInput's result, the
	// same float32 sum as a separate Add), so the gradient of a tensor with several uses
	// accumulates without a pass of its own.
	Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p Conv2DParams) error
	Conv2DGradWeight(dst, x, gy *tensor.Tensor, p Conv2DParams) error
	// Conv2DGradWeightSum is Conv2DGradWeight of the input x + x2 (Conv2DBatchStats' sum).
	Conv2DGradWeightSum(dst, x, x2, gy *tensor.Tensor, p Conv2DParams) error

	// BatchNormTrain normalises with batch statistics, saves the batch mean and 1/sqrt(var+eps)
	// per channel, and updates the running statistics in place (running_var with the unbiased
	// batch variance, as PyTorch does). The same kernel finishes the output: it adds residual
	// (x's shape; nil: none) and then, with relu, takes max(·, 0), so dst = act(bn(x) + residual)
	// is one pass. dst may not alias residual.
	BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p BatchNormParams) error
	// Conv2DBatchStats is Conv2D without a bias followed by BatchNormTrain's statistics of its
	// output: dst = conv(x, w); mean and invStd per output channel of dst, and the running
	// statistics updated, as BatchNormTrain computes them (a GPU backend gathers them in the
	// convolution's epilogue, saving a pass over dst). BatchNormApply then normalises. x2, when
	// non-nil (x's shape), is added to x first: dst = conv(x + x2, w), the float32 sum an Add
	// would make, without writing it (Res2Net's sp + spx[i] before each 3x3 convolution).
	Conv2DBatchStats(dst, mean, invStd, x, x2, w, runMean, runVar *tensor.Tensor, p Conv2DParams, bp BatchNormParams) error
	// BatchNormApply is BatchNormTrain's output from statistics already computed:
	// dst = act((x − mean)·invStd·gamma + beta + residual). dst may not alias residual.
	BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error
	// BatchNormEval normalises with the running statistics, finishing like BatchNormTrain.
	BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p BatchNormParams) error
	// BatchNormGrad computes the input, scale and shift gradients. With batchStats false, mean and
	// invStd were constants (eval mode) and the input gradient is gy·gamma·invStd. y, when
	// non-nil, is the output of a forward pass with relu: gy is first masked where y ≤ 0 (the
	// ReLU's gradient). gResidual, when non-nil, receives that masked gy (the gradient of the
	// forward pass's residual). gy2, when non-nil, is a second incoming gradient of the output,
	// added to gy first (gy + gy2 in float32, the sum a separate Add would make): the gradients
	// of an output used twice, summed without a pass of their own.
	BatchNormGrad(gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd *tensor.Tensor, batchStats bool) error

	MaxPool2D(dst, x *tensor.Tensor, p PoolParams) error
	// MaxPool2DGrad routes gy to the first maximum of each window, recomputed from x.
	MaxPool2DGrad(gx, gy, x *tensor.Tensor, p PoolParams) error
	AvgPool2D(dst, x *tensor.Tensor, p PoolParams) error
	AvgPool2DGrad(gx, gy *tensor.Tensor, p PoolParams) error

	ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error
	ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error
	// ResizeBilinearAdd adds x resized to dst's size to dst (dst + ResizeBilinear's result, the
	// same float32 sum as a separate Add), then with relu takes max(·, 0): a sum of upsampled
	// maps, and its activation, accumulate in one pass each instead of three.
	ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error

	// BCEWithLogits computes the elementwise loss max(x,0) − x·t + log(1+exp(−|x|)).
	BCEWithLogits(dst, x, target *tensor.Tensor) error
	// BCEWithLogitsGrad computes gx = gy·(sigmoid(x) − t).
	BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error
	// StructureLoss writes the batch structure loss of logits x [N 1 H W] against mask into
	// dst [1]; StructureLossGrad writes its gradient scaled by gLoss [1] into gx.
	StructureLoss(dst, x, mask *tensor.Tensor, form StructureLossForm) error
	StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form StructureLossForm) error

	// SGDStep updates param and its momentum buffer in place from grad (torch.optim.SGD). With
	// loss and halt given (one element each) the update is guarded: it is skipped when halt[0] is
	// non-zero or loss[0] is not finite, and then halt[0] is set to 1, so a non-finite loss stops
	// this and every later guarded update until the host clears halt, without the host having to
	// read the loss first. Both nil: unguarded.
	SGDStep(param, grad, momentum, loss, halt *tensor.Tensor, p SGDParams) error
	// CheckFinite sets state's found flag (LossScaleState) when any element of x is NaN or
	// infinite, and leaves it as it was otherwise. UpdateLossScale advances the state after a
	// step (LossScaleParams).
	CheckFinite(state, x *tensor.Tensor) error
	UpdateLossScale(state *tensor.Tensor, p LossScaleParams) error
}

// TransformerKernels are the kernels of the attention baselines (TransUNet, UTNet): batched
// matrix products, softmax and layer normalisation over the last dimension, and permutation of
// dimensions. They stand apart from Backend so a backend can be written (or ported) without them;
// the tape ops find them by type assertion and fail with an error naming the op and the backend
// when they are missing. Every tensor is batch-strided, as for Backend's kernels.
type TransformerKernels interface {
	// MatMul computes dst[i] = op(a[i])·op(b[i]) for each batch item i, where op transposes the
	// last two dimensions when p says so. a and b are rank 3 [B R C], or rank 2 [R C] for a
	// matrix shared by every item; dst is [B M N].
	MatMul(dst, a, b *tensor.Tensor, p MatMulParams) error
	// Softmax normalises each row (the last dimension) of x: dst = exp(x−max)/Σexp(x−max).
	Softmax(dst, x *tensor.Tensor) error
	// SoftmaxGrad computes gx = y·(gy − Σ_row gy·y) from the softmax output y; gx may alias gy.
	SoftmaxGrad(gx, gy, y *tensor.Tensor) error
	// LayerNorm normalises each row of x (the last dimension, D values) with its mean and biased
	// variance, then scales by gamma and shifts by beta (both [D]); it saves the row means and
	// 1/sqrt(var+eps), each of shape [rows], for the gradient.
	LayerNorm(dst, mean, invStd, x, gamma, beta *tensor.Tensor, p LayerNormParams) error
	// LayerNormGrad computes the input, scale and shift gradients from the saved statistics.
	LayerNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor) error
	// Permute writes x with its dimensions reordered into the contiguous dst:
	// dst[i_perm[0], …, i_perm[r-1]] = x[i_0, …, i_{r-1}], so dst.Dim(k) = x.Dim(perm[k]).
	Permute(dst, x *tensor.Tensor, perm []int) error
}

// Factory opens a backend; name selects a device where the backend has several.
type Factory func(device string) (Backend, error)

var (
	registryMu sync.Mutex
	registry   = map[string]Factory{}
)

// Register makes a backend available by name ("cpu", "vulkan"); backends call it from init.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[name] = f
}

// Open returns the named backend, passing device to its factory.
func Open(name, device string) (Backend, error) {
	registryMu.Lock()
	f, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend %q is not available (have %v)", name, Registered())
	}
	return f(device)
}

// Registered lists the registered backend names in order.
func Registered() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Capturer is implemented by backends that can record the kernel calls made between
// BeginCapture and EndCapture once and replay them (ops/vk): the calls run as usual while
// recorded, and the Replay runs them again on whatever the same tensors then hold, without the
// host recording anything. Tensors allocated during the capture and not released by its end
// (inputs copied in, results) stay valid and are rewritten by every replay; those released
// become the replay's workspace; tensors from before must outlive the Replay. A copy to or from
// the host during the capture ends it: EndCapture then returns an error, and the work has run
// all the same.
type Capturer interface {
	BeginCapture() error
	EndCapture() (Replay, error)
}

// Replay is a captured sequence of kernel calls.
type Replay interface {
	// Run submits the calls again, ordered after everything before and before everything after.
	Run() error
	// Release frees the replay's workspace and the tensors it kept.
	Release() error
}
