package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// FromHost allocates a tensor on b holding a copy of data.
func FromHost(b Backend, data []float32, shape ...int) (*tensor.Tensor, error) {
	s := tensor.Shape(shape)
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Numel() != len(data) {
		return nil, fmt.Errorf("%d values do not fill shape %v", len(data), s)
	}
	x, err := b.Alloc(s)
	if err != nil {
		return nil, fmt.Errorf("allocate %v on %s: %w", s, b.Name(), err)
	}
	if err := b.Upload(x, data); err != nil {
		b.Release(x.Storage())
		return nil, fmt.Errorf("upload %v to %s: %w", s, b.Name(), err)
	}
	return x, nil
}

// Zeros allocates a zero-filled tensor on b.
func Zeros(b Backend, shape ...int) (*tensor.Tensor, error) {
	s := tensor.Shape(shape)
	if err := s.Validate(); err != nil {
		return nil, err
	}
	x, err := b.Alloc(s)
	if err != nil {
		return nil, fmt.Errorf("allocate %v on %s: %w", s, b.Name(), err)
	}
	if err := b.Fill(x, 0); err != nil {
		b.Release(x.Storage())
		return nil, err
	}
	return x, nil
}

// ToHost copies a tensor's elements to the host.
func ToHost(b Backend, x *tensor.Tensor) ([]float32, error) {
	if x == nil {
		return nil, fmt.Errorf("read tensor: nil tensor")
	}
	v, err := b.Download(x)
	if err != nil {
		return nil, fmt.Errorf("read %v from %s: %w", x, b.Name(), err)
	}
	return v, nil
}

// AsyncReader is implemented by backends that can copy a tensor to the host without waiting:
// ReadAsync records the copy, submits the work recorded so far, and returns a function that
// waits for the copy alone and returns the values. Work recorded later keeps running.
type AsyncReader interface {
	ReadAsync(x *tensor.Tensor) (func() ([]float32, error), error)
}

// ReadLater starts copying x to the host and returns a function that waits for the values.
// The tensor may be released once ReadLater returns. On backends that are not AsyncReaders the
// copy happens at once.
func ReadLater(b Backend, x *tensor.Tensor) (func() ([]float32, error), error) {
	if x == nil {
		return nil, fmt.Errorf("read tensor: nil tensor")
	}
	if ar, ok := b.(AsyncReader); ok {
		wait, err := ar.ReadAsync(x)
		if err != nil {
			return nil, fmt.Errorf("read %v from %s: %w", x, b.Name(), err)
		}
		return func() ([]float32, error) {
			v, err := wait()
			if err != nil {
				return nil, fmt.Errorf("read %v from %s: %w", x, b.Name(), err)
			}
			return v, nil
		}, nil
	}
	v, err := ToHost(b, x)
	if err != nil {
		return nil, err
	}
	return func() ([]float32, error) { return v, nil }, nil
}
