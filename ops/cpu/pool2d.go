package cpu

import (
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// poolPlanes runs fn on every (input plane, output plane) pair of x and y in parallel.
func (b *Backend) poolPlanes(x, y *tensor.Tensor, fn func(in, out []float32)) error {
	vs, err := views(x, y)
	if err != nil {
		return err
	}
	n, c, h, w := x.Shape().NCHW()
	oh, ow := y.Dim(2), y.Dim(3)
	parallelFor(b.workers, n*c, 4, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i, ch := k/c, k%c
			fn(vs[0].item(i)[ch*h*w:(ch+1)*h*w], vs[1].item(i)[ch*oh*ow:(ch+1)*oh*ow])
		}
	})
	return nil
}

// window is the input range [y0,y1)×[x0,x1) of output (oy, ox), clamped to the input, and the
// average-pooling divisor.
func window(p ops.PoolParams, h, w, oy, ox int) (y0, y1, x0, x1, div int) {
	y0, x0 = oy*p.Stride-p.Pad, ox*p.Stride-p.Pad
	y1, x1 = min(y0+p.Kernel, h+p.Pad), min(x0+p.Kernel, w+p.Pad)
	size := (y1 - y0) * (x1 - x0) // PyTorch counts padding but not the ceil-mode overhang
	y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
	div = (y1 - y0) * (x1 - x0)
	if p.CountIncludePad {
		div = size
	}
	return
}

// MaxPool2D implements ops.Backend; padding is −inf, so it never wins.
func (b *Backend) MaxPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := dst.Dim(2), dst.Dim(3)
	return b.poolPlanes(x, dst, func(in, out []float32) {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				y0, y1, x0, x1, _ := window(p, h, w, oy, ox)
				m := float32(math.Inf(-1))
				for iy := y0; iy < y1; iy++ {
					for _, v := range in[iy*w+x0 : iy*w+x1] {
						if v > m || v != v {
							m = v
						}
					}
				}
				out[oy*ow+ox] = m
			}
		}
	})
}

// MaxPool2DGrad implements ops.Backend: each window's gradient goes to its first maximum in
// row-major order, as PyTorch's CPU kernel picks it.
func (b *Backend) MaxPool2DGrad(gx, gy, x *tensor.Tensor, p ops.PoolParams) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := gy.Dim(2), gy.Dim(3)
	vs, err := views(gx, gy, x)
	if err != nil {
		return err
	}
	n, c := x.Dim(0), x.Dim(1)
	parallelFor(b.workers, n*c, 4, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i, ch := k/c, k%c
			g := vs[0].item(i)[ch*h*w : (ch+1)*h*w]
			gys := vs[1].item(i)[ch*oh*ow : (ch+1)*oh*ow]
			in := vs[2].item(i)[ch*h*w : (ch+1)*h*w]
			clear(g)
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					y0, y1, x0, x1, _ := window(p, h, w, oy, ox)
					best, m := -1, float32(math.Inf(-1))
					for iy := y0; iy < y1; iy++ {
						for ix := x0; ix < x1; ix++ {
							if v := in[iy*w+ix]; v > m || v != v || best < 0 {
								best, m = iy*w+ix, v
								if v != v {
									iy, ix = y1, x1 // NaN wins and stops the scan, as in PyTorch
								}
							}
						}
					}
					g[best] += gys[oy*ow+ox]
				}
			}
		}
	})
	return nil
}

// AvgPool2D implements ops.Backend.
func (b *Backend) AvgPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := dst.Dim(2), dst.Dim(3)
	return b.poolPlanes(x, dst, func(in, out []float32) {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				y0, y1, x0, x1, div := window(p, h, w, oy, ox)
				var s float32
				for iy := y0; iy < y1; iy++ {
					for _, v := range in[iy*w+x0 : iy*w+x1] {
						s += v
					}
				}
				out[oy*ow+ox] = s / float32(div)
			}
		}
	})
}

// AvgPool2DGrad implements ops.Backend.
func (b *Backend) AvgPool2DGrad(gx, gy *tensor.Tensor, p ops.PoolParams) error {
	h, w := gx.Dim(2), gx.Dim(3)
	oh, ow := gy.Dim(2), gy.Dim(3)
	return b.poolPlanes(gx, gy, func(g, gys []float32) {
		clear(g)
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				y0, y1, x0, x1, div := window(p, h, w, oy, ox)
				v := gys[oy*ow+ox] / float32(div)
				for iy := y0; iy < y1; iy++ {
					row := g[iy*w+x0 : iy*w+x1]
					for j := range row {
						row[j] += v
					}
				}
			}
		}
	})
}
