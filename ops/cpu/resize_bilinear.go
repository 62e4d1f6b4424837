package cpu

import (
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ResizeBilinear implements ops.Backend.
func (b *Backend) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := dst.Dim(2), dst.Dim(3)
	ty, tx := ops.BilinearTaps(h, oh, alignCorners), ops.BilinearTaps(w, ow, alignCorners)
	return b.poolPlanes(x, dst, func(in, out []float32) {
		for oy := 0; oy < oh; oy++ {
			r0, r1 := in[ty.I0[oy]*w:], in[ty.I1[oy]*w:]
			wy0, wy1 := ty.W0[oy], ty.W1[oy]
			row := out[oy*ow : (oy+1)*ow]
			for ox := range row {
				x0, x1 := tx.I0[ox], tx.I1[ox]
				row[ox] = wy0*(tx.W0[ox]*r0[x0]+tx.W1[ox]*r0[x1]) + wy1*(tx.W0[ox]*r1[x0]+tx.W1[ox]*r1[x1])
			}
		}
	})
}

// ResizeBilinearGrad implements ops.Backend: the adjoint, scattering each output gradient to its
// four source pixels.
func (b *Backend) ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error {
	h, w := gx.Dim(2), gx.Dim(3)
	oh, ow := gy.Dim(2), gy.Dim(3)
	ty, tx := ops.BilinearTaps(h, oh, alignCorners), ops.BilinearTaps(w, ow, alignCorners)
	return b.poolPlanes(gx, gy, func(g, gys []float32) {
		clear(g)
		for oy := 0; oy < oh; oy++ {
			r0, r1 := g[ty.I0[oy]*w:], g[ty.I1[oy]*w:]
			wy0, wy1 := ty.W0[oy], ty.W1[oy]
			for ox, v := range gys[oy*ow : (oy+1)*ow] {
				x0, x1 := tx.I0[ox], tx.I1[ox]
				r0[x0] += wy0 * tx.W0[ox] * v
				r0[x1] += wy0 * tx.W1[ox] * v
				r1[x0] += wy1 * tx.W0[ox] * v
				r1[x1] += wy1 * tx.W1[ox] * v
			}
		}
	})
}

// ResizeBilinearAdd implements ops.Backend: the resize into scratch, then the add and ReLU as
// separate ops would compute them.
func (b *Backend) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	tmp, err := b.Alloc(dst.Shape())
	if err != nil {
		return err
	}
	defer b.Release(tmp.Storage())
	if err := b.ResizeBilinear(tmp, x, alignCorners); err != nil {
		return err
	}
	if err := b.Binary(ops.Add, dst, dst, tmp); err != nil {
		return err
	}
	if relu {
		return b.Unary(ops.ReLU, dst, dst)
	}
	return nil
}
