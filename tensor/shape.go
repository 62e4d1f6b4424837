// Package tensor holds float32 tensors: a shape and strides over a backend's storage.
//
// Layout is NCHW throughout. A tensor may be a view (narrowed along a dimension) that shares
// storage with another; kernels accept "batch-strided" views, whose dimensions after the first are
// contiguous, so channel slices of an NCHW tensor need no copy.
package tensor

import (
	"fmt"
	"strings"
)

// Shape is a tensor's extent along each dimension, outermost first.
type Shape []int

// Numel is the number of elements; 1 for a scalar (empty shape).
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and o have the same rank and extents.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s that does not alias it.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats s as PyTorch prints a size: [2 3 64 64].
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Validate rejects negative and zero extents, which no kernel here accepts, and element counts that
// overflow an int32 index (the Vulkan shaders index with 32-bit integers).
func (s Shape) Validate() error {
	n := int64(1)
	for i, d := range s {
		if d <= 0 {
			return fmt.Errorf("shape %v: dimension %d is %d, must be positive", s, i, d)
		}
		n *= int64(d)
		if n > 1<<31-1 {
			return fmt.Errorf("shape %v: %d+ elements exceed the 2^31-1 limit", s, n)
		}
	}
	return nil
}

// ContiguousStrides returns row-major strides for s.
func ContiguousStrides(s Shape) []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

// NCHW unpacks a rank-4 shape.
func (s Shape) NCHW() (n, c, h, w int) {
	return s[0], s[1], s[2], s[3]
}
