package cpu

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Permute implements ops.TransformerKernels: dst (contiguous) is walked in row-major order, and
// its innermost dimension reads x at a fixed stride, so each output row is one strided gather.
func (b *Backend) Permute(dst, x *tensor.Tensor, perm []int) error {
	r := x.Rank()
	if len(perm) != r || dst.Rank() != r {
		return fmt.Errorf("permute: %v by %v into %v", x.Shape(), perm, dst.Shape())
	}
	for k, d := range perm {
		if d < 0 || d >= r || dst.Dim(k) != x.Dim(d) {
			return fmt.Errorf("permute: %v by %v does not give %v", x.Shape(), perm, dst.Shape())
		}
	}
	vx, err := viewOf(x)
	if err != nil {
		return err
	}
	out, err := dense(dst)
	if err != nil {
		return err
	}
	// Element strides of x: dense after the first dimension, the batch stride for the first.
	xs := make([]int, r)
	acc := 1
	for k := r - 1; k >= 1; k-- {
		xs[k] = acc
		acc *= x.Dim(k)
	}
	xs[0] = vx.stride
	// Strides of x seen from dst's dimensions.
	ps := make([]int, r)
	for k, d := range perm {
		ps[k] = xs[d]
	}
	inner := dst.Dim(r - 1)
	step := ps[r-1]
	rows := dst.Numel() / inner
	parallelFor(b.workers, rows, max(1, 4096/inner), func(lo, hi int) {
		idx := make([]int, r-1)
		// Decompose the first row's index into dst coordinates (all but the last dimension).
		rem := lo
		for k := r - 2; k >= 0; k-- {
			idx[k] = rem % dst.Dim(k)
			rem /= dst.Dim(k)
		}
		for row := lo; row < hi; row++ {
			src := vx.off
			for k := 0; k < r-1; k++ {
				src += idx[k] * ps[k]
			}
			o := out[row*inner : (row+1)*inner]
			for j := range o {
				o[j] = vx.data[src+j*step]
			}
			for k := r - 2; k >= 0; k-- {
				idx[k]++
				if idx[k] < dst.Dim(k) {
					break
				}
				idx[k] = 0
			}
		}
	})
	return nil
}
