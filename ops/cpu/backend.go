// Package cpu is the host backend: pure Go kernels, parallel over the machine's cores, with
// convolution lowered to a matrix multiply (gemm.go) that has an AVX-512 path under
// GOEXPERIMENT=simd and a portable one otherwise.
package cpu

import (
	"fmt"
	"os"
	"runtime"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

func init() {
	ops.Register("cpu", func(string) (ops.Backend, error) { return New(), nil })
}

// Backend runs kernels synchronously on the host.
type Backend struct {
	workers int
	pool    *bufferPool
}

// New returns a CPU backend using GOMAXPROCS worker goroutines.
func New() *Backend {
	return &Backend{workers: runtime.GOMAXPROCS(0), pool: newBufferPool(os.Getenv(poisonEnv) != "")}
}

// Name implements ops.Backend.
func (b *Backend) Name() string { return "cpu" }

// Alloc implements ops.Backend.
func (b *Backend) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	return tensor.New(&tensor.HostStorage{Data: b.pool.get(shape.Numel()), Pooled: true}, shape)
}

// Release takes the storage's memory back for reuse (memory the backend allocated; a caller's
// slice is only dropped); any later use of a stale tensor fails the storage-size check instead
// of reading another tensor's values.
func (b *Backend) Release(s tensor.Storage) {
	if h, ok := s.(*tensor.HostStorage); ok {
		if h.Pooled && h.Data != nil {
			b.pool.put(h.Data)
		}
		h.Data = nil
	}
}

// Upload implements ops.Backend.
func (b *Backend) Upload(dst *tensor.Tensor, src []float32) error {
	d, err := dense(dst)
	if err != nil {
		return err
	}
	if len(src) != len(d) {
		return fmt.Errorf("upload: %d values for a tensor of %d", len(src), len(d))
	}
	copy(d, src)
	return nil
}

// Download implements ops.Backend.
func (b *Backend) Download(src *tensor.Tensor) ([]float32, error) {
	v, err := viewOf(src)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 0, src.Numel())
	for n := 0; n < v.n; n++ {
		out = append(out, v.item(n)...)
	}
	return out, nil
}

// Sync implements ops.Backend; CPU kernels are synchronous.
func (b *Backend) Sync() error { return nil }

// view is a batch-strided tensor's memory: n items of inner contiguous elements, item i at
// data[off+i*stride:].
type view struct {
	data                  []float32
	off, stride, n, inner int
}

func (v view) item(i int) []float32 {
	s := v.off + i*v.stride
	return v.data[s : s+v.inner]
}

// viewOf checks that t is a host tensor in the batch-strided layout and still allocated.
func viewOf(t *tensor.Tensor) (view, error) {
	h, ok := t.Storage().(*tensor.HostStorage)
	if !ok {
		return view{}, fmt.Errorf("cpu backend: %v lives on another backend", t)
	}
	stride, ok := t.BatchStride()
	if !ok {
		return view{}, fmt.Errorf("cpu backend: %v is not batch-strided", t)
	}
	n := 1
	if t.Rank() > 0 {
		n = t.Dim(0)
	}
	inner := t.Numel() / n
	if t.Offset()+(n-1)*stride+inner > len(h.Data) {
		return view{}, fmt.Errorf("cpu backend: %v extends past its storage (released?)", t)
	}
	return view{data: h.Data, off: t.Offset(), stride: stride, n: n, inner: inner}, nil
}

// dense returns the elements of a contiguous host tensor.
func dense(t *tensor.Tensor) ([]float32, error) {
	v, err := viewOf(t)
	if err != nil {
		return nil, err
	}
	if v.n > 1 && v.stride != v.inner {
		return nil, fmt.Errorf("cpu backend: %v must be contiguous", t)
	}
	return v.data[v.off : v.off+v.n*v.inner], nil
}

// views resolves several tensors at once.
func views(ts ...*tensor.Tensor) ([]view, error) {
	out := make([]view, len(ts))
	for i, t := range ts {
		v, err := viewOf(t)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Fill implements ops.Backend.
func (b *Backend) Fill(dst *tensor.Tensor, val float32) error {
	v, err := viewOf(dst)
	if err != nil {
		return err
	}
	for n := 0; n < v.n; n++ {
		d := v.item(n)
		for i := range d {
			d[i] = val
		}
	}
	return nil
}

// Copy implements ops.Backend.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	if dst.Numel() != src.Numel() || dst.Rank() == 0 || src.Rank() == 0 || dst.Dim(0) != src.Dim(0) {
		return fmt.Errorf("copy: %v into %v", src.Shape(), dst.Shape())
	}
	vs, err := views(dst, src)
	if err != nil {
		return err
	}
	for n := 0; n < vs[0].n; n++ {
		copy(vs[0].item(n), vs[1].item(n))
	}
	return nil
}
