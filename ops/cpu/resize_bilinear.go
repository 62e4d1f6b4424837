package cpu

import (
	"github.com/chnet/chnet/tensor"
)

// lerpTaps are, for each output index along one axis, the two source indices and their weights.
type lerpTaps struct {
	i0, i1 []int
	w0, w1 []float32
}

// bilinearTaps computes PyTorch's source indices for one axis (upsample_bilinear2d, with the
// scale and coordinate in float32 as PyTorch computes them for float tensors).
func bilinearTaps(in, out int, alignCorners bool) lerpTaps {
	t := lerpTaps{make([]int, out), make([]int, out), make([]float32, out), make([]float32, out)}
	var scale float32
	if alignCorners {
		if out > 1 {
			scale = float32(in-1) / float32(out-1)
		}
	} else {
		scale = float32(in) / float32(out)
	}
	for d := 0; d < out; d++ {
		var src float32
		if alignCorners {
			src = scale * float32(d)
		} else {
			src = max(scale*(float32(d)+0.5)-0.5, 0)
		}
		i0 := int(src)
		i1 := i0
		if i0 < in-1 {
			i1 = i0 + 1
		}
		l1 := src - float32(i0)
		t.i0[d], t.i1[d], t.w0[d], t.w1[d] = i0, i1, 1-l1, l1
	}
	return t
}

// ResizeBilinear implements ops.Backend.
func (b *Backend) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := dst.Dim(2), dst.Dim(3)
	ty, tx := bilinearTaps(h, oh, alignCorners), bilinearTaps(w, ow, alignCorners)
	return b.poolPlanes(x, dst, func(in, out []float32) {
		for oy := 0; oy < oh; oy++ {
			r0, r1 := in[ty.i0[oy]*w:], in[ty.i1[oy]*w:]
			wy0, wy1 := ty.w0[oy], ty.w1[oy]
			row := out[oy*ow : (oy+1)*ow]
			for ox := range row {
				x0, x1 := tx.i0[ox], tx.i1[ox]
				row[ox] = wy0*(tx.w0[ox]*r0[x0]+tx.w1[ox]*r0[x1]) + wy1*(tx.w0[ox]*r1[x0]+tx.w1[ox]*r1[x1])
			}
		}
	})
}

// ResizeBilinearGrad implements ops.Backend: the adjoint, scattering each output gradient to its
// four source pixels.
func (b *Backend) ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error {
	h, w := gx.Dim(2), gx.Dim(3)
	oh, ow := gy.Dim(2), gy.Dim(3)
	ty, tx := bilinearTaps(h, oh, alignCorners), bilinearTaps(w, ow, alignCorners)
	return b.poolPlanes(gx, gy, func(g, gys []float32) {
		clear(g)
		for oy := 0; oy < oh; oy++ {
			r0, r1 := g[ty.i0[oy]*w:], g[ty.i1[oy]*w:]
			wy0, wy1 := ty.w0[oy], ty.w1[oy]
			for ox, v := range gys[oy*ow : (oy+1)*ow] {
				x0, x1 := tx.i0[ox], tx.i1[ox]
				r0[x0] += wy0 * tx.w0[ox] * v
				r0[x1] += wy0 * tx.w1[ox] * v
				r1[x0] += wy1 * tx.w0[ox] * v
				r1[x1] += wy1 * tx.w1[ox] * v
			}
		}
	})
}
