package cpu

import (
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// ResizeBilinear implements ops.Backend.
func (b *Backend) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error {
	return b.resizeBilinear(dst, x, alignCorners, false, false)
}

// resizeBilinear writes x resized to dst's size into dst, or with add adds it to dst's values
// (then with relu takes max(·, 0)): one pass over dst either way.
func (b *Backend) resizeBilinear(dst, x *tensor.Tensor, alignCorners, add, relu bool) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := dst.Dim(2), dst.Dim(3)
	ty, tx := ops.BilinearTaps(h, oh, alignCorners), ops.BilinearTaps(w, ow, alignCorners)
	i0, i1, w0, w1 := tx.I0[:ow], tx.I1[:ow], tx.W0[:ow], tx.W1[:ow]
	return b.poolPlanes(x, dst, func(in, out []float32) {
		// Separably: each output row blends its two input rows once (w values), then
		// interpolates along the row from that blend, 2 taps per output instead of 4.
		t := make([]float32, w)
		for oy := 0; oy < oh; oy++ {
			r0, r1 := in[ty.I0[oy]*w:][:w], in[ty.I1[oy]*w:][:w]
			wy0, wy1 := ty.W0[oy], ty.W1[oy]
			for i := range t {
				t[i] = wy0*r0[i] + wy1*r1[i]
			}
			row := out[oy*ow : (oy+1)*ow]
			for ox := range row {
				v := w0[ox]*t[i0[ox]] + w1[ox]*t[i1[ox]]
				if add {
					v += row[ox]
					if relu {
						v = max(v, 0)
					}
				}
				row[ox] = v
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

// ResizeBilinearAdd implements ops.Backend: the resize adds into dst as it goes, and takes the
// ReLU there, in one pass (the same float32 sums as separate ops).
func (b *Backend) ResizeBilinearAdd(dst, x *tensor.Tensor, alignCorners, relu bool) error {
	return b.resizeBilinear(dst, x, alignCorners, true, relu)
}
