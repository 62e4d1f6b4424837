package tensor

import (
	"fmt"
)

// Storage is a block of float32 elements owned by a backend (host memory, a Vulkan buffer range).
// Tensors index into it with an offset and strides.
type Storage interface {
	// Len is the number of float32 elements the storage holds.
	Len() int
}

// HostStorage is storage in Go memory, used by the CPU backend. Pooled marks memory the CPU
// backend allocated itself, which it takes back for reuse on Release; storage wrapping a
// caller's slice never has it.
type HostStorage struct {
	Data   []float32
	Pooled bool
}

// Len implements Storage.
func (h *HostStorage) Len() int { return len(h.Data) }

// Tensor is a float32 array: a shape and strides over a Storage, plus autograd bookkeeping.
// The zero value is not usable; tensors come from a backend (ops.Backend.Alloc) or New.
type Tensor struct {
	shape   Shape
	strides []int
	offset  int
	storage Storage

	requiresGrad bool
	// Grad accumulates the gradient of a leaf tensor (a parameter) over backward passes.
	Grad *Tensor
	// Name labels a parameter or buffer in errors and state dicts ("layer1.0.conv1.weight").
	Name string
}

// New returns a contiguous tensor of the given shape over st, which must hold exactly
// shape.Numel() elements beyond offset 0.
func New(st Storage, shape Shape) (*Tensor, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	if st.Len() < shape.Numel() {
		return nil, fmt.Errorf("tensor: storage of %d elements is too small for shape %v", st.Len(), shape)
	}
	return &Tensor{shape: shape.Clone(), strides: ContiguousStrides(shape), storage: st}, nil
}

// FromSlice wraps host data in a contiguous tensor without copying.
func FromSlice(data []float32, shape ...int) (*Tensor, error) {
	s := Shape(shape)
	if s.Numel() != len(data) {
		return nil, fmt.Errorf("tensor: %d values do not fill shape %v (%d elements)", len(data), s, s.Numel())
	}
	return New(&HostStorage{Data: data}, s)
}

// Shape returns the tensor's extents; callers must not modify it.
func (t *Tensor) Shape() Shape { return t.shape }

// Strides returns the element stride of each dimension; callers must not modify it.
func (t *Tensor) Strides() []int { return t.strides }

// Offset is the index of element (0, …, 0) in the storage.
func (t *Tensor) Offset() int { return t.offset }

// Storage is the memory the tensor views.
func (t *Tensor) Storage() Storage { return t.storage }

// Numel is the number of elements the tensor spans.
func (t *Tensor) Numel() int { return t.shape.Numel() }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns the extent of dimension i.
func (t *Tensor) Dim(i int) int { return t.shape[i] }

// RequiresGrad reports whether backward passes accumulate into t.Grad (a leaf) or through t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// SetRequiresGrad marks a leaf tensor as trainable.
func (t *Tensor) SetRequiresGrad(v bool) *Tensor { t.requiresGrad = v; return t }

// IsContiguous reports whether the tensor's elements are dense and row-major.
func (t *Tensor) IsContiguous() bool {
	acc := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != acc {
			return false
		}
		acc *= t.shape[i]
	}
	return true
}

// BatchStride reports whether every dimension after the first is dense and row-major, the layout
// all kernels accept, and returns the stride between consecutive items of dimension 0.
// A channel slice of an NCHW tensor has this layout: item n starts at Offset()+n*stride and its
// C·H·W elements follow contiguously.
func (t *Tensor) BatchStride() (int, bool) {
	if len(t.shape) == 0 {
		return 0, true
	}
	acc := 1
	for i := len(t.shape) - 1; i >= 1; i-- {
		if t.shape[i] != 1 && t.strides[i] != acc {
			return 0, false
		}
		acc *= t.shape[i]
	}
	if t.shape[0] == 1 {
		return acc, true
	}
	return t.strides[0], true
}

// Narrow returns a view of length elements of dimension dim starting at start, sharing storage.
func (t *Tensor) Narrow(dim, start, length int) (*Tensor, error) {
	if dim < 0 || dim >= len(t.shape) {
		return nil, fmt.Errorf("narrow: dimension %d out of range for shape %v", dim, t.shape)
	}
	if start < 0 || length <= 0 || start+length > t.shape[dim] {
		return nil, fmt.Errorf("narrow: [%d, %d) out of range for dimension %d of shape %v", start, start+length, dim, t.shape)
	}
	v := t.view()
	v.shape[dim] = length
	v.offset += start * t.strides[dim]
	return v, nil
}

// Split cuts dimension dim into consecutive views of the given sizes, which must sum to its extent.
func (t *Tensor) Split(dim int, sizes ...int) ([]*Tensor, error) {
	if dim < 0 || dim >= len(t.shape) {
		return nil, fmt.Errorf("split: dimension %d out of range for shape %v", dim, t.shape)
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != t.shape[dim] {
		return nil, fmt.Errorf("split: sizes %v sum to %d, dimension %d of shape %v is %d", sizes, total, dim, t.shape, t.shape[dim])
	}
	out := make([]*Tensor, len(sizes))
	start := 0
	for i, s := range sizes {
		v, err := t.Narrow(dim, start, s)
		if err != nil {
			return nil, err
		}
		out[i] = v
		start += s
	}
	return out, nil
}

// Reshape returns a view with a new shape; the tensor must be contiguous.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	s := Shape(shape)
	if s.Numel() != t.Numel() {
		return nil, fmt.Errorf("reshape: %v has %d elements, %v has %d", t.shape, t.Numel(), s, s.Numel())
	}
	if !t.IsContiguous() {
		return nil, fmt.Errorf("reshape: tensor of shape %v is not contiguous", t.shape)
	}
	return &Tensor{shape: s.Clone(), strides: ContiguousStrides(s), offset: t.offset, storage: t.storage}, nil
}

// view copies the layout (not the data, not autograd state) of t.
func (t *Tensor) view() *Tensor {
	return &Tensor{shape: t.shape.Clone(), strides: append([]int(nil), t.strides...), offset: t.offset, storage: t.storage}
}

// SameStorage reports whether a and b view the same memory block.
func SameStorage(a, b *Tensor) bool { return a.storage == b.storage }

// HostData returns the elements of a contiguous host tensor without copying, or false if the
// tensor lives elsewhere or is a strided view.
func (t *Tensor) HostData() ([]float32, bool) {
	h, ok := t.storage.(*HostStorage)
	if !ok || !t.IsContiguous() {
		return nil, false
	}
	return h.Data[t.offset : t.offset+t.Numel()], true
}

// String describes the tensor briefly, for errors and logs.
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	if t.Name != "" {
		return fmt.Sprintf("%s%v", t.Name, t.shape)
	}
	return fmt.Sprintf("tensor%v", t.shape)
}
