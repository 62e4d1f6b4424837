package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// requireNCHW checks that x is a rank-4 tensor in a layout kernels accept.
func requireNCHW(op, what string, x *tensor.Tensor) error {
	if x.Rank() != 4 {
		return fmt.Errorf("%s: %s must be NCHW (rank 4), got shape %v", op, what, x.Shape())
	}
	return requireLayout(op, what, x)
}

// requireLayout checks that x is batch-strided (see tensor.BatchStride).
func requireLayout(op, what string, x *tensor.Tensor) error {
	if _, ok := x.BatchStride(); !ok {
		return fmt.Errorf("%s: %s of shape %v is a view whose inner dimensions are not contiguous", op, what, x.Shape())
	}
	return nil
}

// requireSameShape checks that b has a's shape.
func requireSameShape(op string, a, b *tensor.Tensor) error {
	if !a.Shape().Equal(b.Shape()) {
		return fmt.Errorf("%s: shapes differ: %v and %v", op, a.Shape(), b.Shape())
	}
	return nil
}

// requireVector checks that v is a rank-1 tensor of n elements.
func requireVector(op, what string, v *tensor.Tensor, n int) error {
	if v.Rank() != 1 || v.Dim(0) != n {
		return fmt.Errorf("%s: %s must have shape [%d], got %v", op, what, n, v.Shape())
	}
	return nil
}
