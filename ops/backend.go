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
)

func (u UnaryOp) String() string {
	return [...]string{"relu", "sigmoid", "abs", "neg"}[u]
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
	// UnaryGrad computes dst = gy·op'(x), given x and y = op(x); dst may alias gy.
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
	Conv2DGradInput(dst, gy, w *tensor.Tensor, p Conv2DParams) error
	Conv2DGradWeight(dst, x, gy *tensor.Tensor, p Conv2DParams) error

	// BatchNormTrain normalises with batch statistics, saves the batch mean and 1/sqrt(var+eps)
	// per channel, and updates the running statistics in place (running_var with the unbiased
	// batch variance, as PyTorch does).
	BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar *tensor.Tensor, p BatchNormParams) error
	BatchNormEval(dst, x, gamma, beta, runMean, runVar *tensor.Tensor, p BatchNormParams) error
	// BatchNormGrad computes the input, scale and shift gradients. With batchStats false, mean and
	// invStd were constants (eval mode) and the input gradient is gy·gamma·invStd.
	BatchNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor, batchStats bool) error

	MaxPool2D(dst, x *tensor.Tensor, p PoolParams) error
	// MaxPool2DGrad routes gy to the first maximum of each window, recomputed from x.
	MaxPool2DGrad(gx, gy, x *tensor.Tensor, p PoolParams) error
	AvgPool2D(dst, x *tensor.Tensor, p PoolParams) error
	AvgPool2DGrad(gx, gy *tensor.Tensor, p PoolParams) error

	ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error
	ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error

	// BCEWithLogits computes the elementwise loss max(x,0) − x·t + log(1+exp(−|x|)).
	BCEWithLogits(dst, x, target *tensor.Tensor) error
	// BCEWithLogitsGrad computes gx = gy·(sigmoid(x) − t).
	BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error
	// StructureLoss writes the batch structure loss of logits x [N 1 H W] against mask into
	// dst [1]; StructureLossGrad writes its gradient scaled by gLoss [1] into gx.
	StructureLoss(dst, x, mask *tensor.Tensor, form StructureLossForm) error
	StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form StructureLossForm) error

	// SGDStep updates param and its momentum buffer in place from grad (torch.optim.SGD).
	SGDStep(param, grad, momentum *tensor.Tensor, p SGDParams) error
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
