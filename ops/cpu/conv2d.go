package cpu

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// convGeom is a convolution's sizes, shared by the forward and both gradients.
type convGeom struct {
	n, c, h, w    int // input
	o, oh, ow     int // output
	kh, kw        int
	g, cg, og     int // groups, input and output channels per group
	p             ops.Conv2DParams
	direct        bool // 1x1, stride 1, no padding: the input already is the column matrix
	ckk, ohw, chw int
}

func newConvGeom(x, w *tensor.Tensor, y tensor.Shape, p ops.Conv2DParams) convGeom {
	var g convGeom
	g.n, g.c, g.h, g.w = x.Shape().NCHW()
	g.o, _, g.kh, g.kw = w.Shape().NCHW()
	g.oh, g.ow = y[2], y[3]
	g.p = p
	g.g, g.cg, g.og = p.Groups, g.c/p.Groups, g.o/p.Groups
	g.direct = g.kh == 1 && g.kw == 1 && p.Stride == 1 && p.Pad == 0
	g.ckk, g.ohw, g.chw = g.cg*g.kh*g.kw, g.oh*g.ow, g.cg*g.h*g.w
	return g
}

// im2col writes the column matrix [cg·kh·kw × oh·ow] of one group of one image.
func (g convGeom) im2col(col, x []float32) {
	s, pad, d := g.p.Stride, g.p.Pad, g.p.Dilation
	for ci := 0; ci < g.cg; ci++ {
		plane := x[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((ci*g.kh+ky)*g.kw+kx)*g.ohw:][:g.ohw]
				for oy := 0; oy < g.oh; oy++ {
					iy := oy*s - pad + ky*d
					out := row[oy*g.ow : (oy+1)*g.ow]
					if iy < 0 || iy >= g.h {
						clear(out)
						continue
					}
					src := plane[iy*g.w : (iy+1)*g.w]
					ix := kx*d - pad
					for ox := range out {
						if ix >= 0 && ix < g.w {
							out[ox] = src[ix]
						} else {
							out[ox] = 0
						}
						ix += s
					}
				}
			}
		}
	}
}

// col2im adds a column matrix back into one group of one image's input gradient (which the
// caller zeroed): the adjoint of im2col.
func (g convGeom) col2im(x, col []float32) {
	s, pad, d := g.p.Stride, g.p.Pad, g.p.Dilation
	for ci := 0; ci < g.cg; ci++ {
		plane := x[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((ci*g.kh+ky)*g.kw+kx)*g.ohw:][:g.ohw]
				for oy := 0; oy < g.oh; oy++ {
					iy := oy*s - pad + ky*d
					if iy < 0 || iy >= g.h {
						continue
					}
					dst := plane[iy*g.w : (iy+1)*g.w]
					src := row[oy*g.ow : (oy+1)*g.ow]
					ix := kx*d - pad
					for ox := range src {
						if ix >= 0 && ix < g.w {
							dst[ix] += src[ox]
						}
						ix += s
					}
				}
			}
		}
	}
}

// Conv2D implements ops.Backend: per image and group, Y = W · im2col(X).
func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	vs, err := views(dst, x)
	if err != nil {
		return err
	}
	wd, err := dense(w)
	if err != nil {
		return err
	}
	var bd []float32
	if bias != nil {
		if bd, err = dense(bias); err != nil {
			return err
		}
	}
	g := newConvGeom(x, w, dst.Shape(), p)
	if vs[0].inner != g.o*g.ohw {
		return fmt.Errorf("conv2d: destination %v does not match", dst.Shape())
	}
	var col []float32
	if !g.direct {
		col = make([]float32, g.ckk*g.ohw)
	}
	for n := 0; n < g.n; n++ {
		xn, yn := vs[1].item(n), vs[0].item(n)
		for gi := 0; gi < g.g; gi++ {
			xg := xn[gi*g.chw : (gi+1)*g.chw]
			src := xg
			if !g.direct {
				g.im2col(col, xg)
				src = col
			}
			b.gemm(false, false, g.og, g.ohw, g.ckk, 1, wd[gi*g.og*g.ckk:], g.ckk, src, g.ohw, 0, yn[gi*g.og*g.ohw:], g.ohw)
		}
		if bd != nil {
			for oc := 0; oc < g.o; oc++ {
				plane := yn[oc*g.ohw : (oc+1)*g.ohw]
				for i := range plane {
					plane[i] += bd[oc]
				}
			}
		}
	}
	return nil
}

// Conv2DGradInput implements ops.Backend: per image and group, dX = col2im(Wᵀ · dY).
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	vs, err := views(dst, gy)
	if err != nil {
		return err
	}
	wd, err := dense(w)
	if err != nil {
		return err
	}
	g := newConvGeom(dst, w, gy.Shape(), p)
	var col []float32
	if !g.direct {
		col = make([]float32, g.ckk*g.ohw)
	}
	for n := 0; n < g.n; n++ {
		xn, yn := vs[0].item(n), vs[1].item(n)
		for gi := 0; gi < g.g; gi++ {
			xg := xn[gi*g.chw : (gi+1)*g.chw]
			if g.direct {
				b.gemm(true, false, g.ckk, g.ohw, g.og, 1, wd[gi*g.og*g.ckk:], g.ckk, yn[gi*g.og*g.ohw:], g.ohw, 0, xg, g.ohw)
				continue
			}
			b.gemm(true, false, g.ckk, g.ohw, g.og, 1, wd[gi*g.og*g.ckk:], g.ckk, yn[gi*g.og*g.ohw:], g.ohw, 0, col, g.ohw)
			clear(xg)
			g.col2im(xg, col)
		}
	}
	return nil
}

// Conv2DGradWeight implements ops.Backend: dW = Σ_images dY · im2col(X)ᵀ per group.
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
	vs, err := views(x, gy)
	if err != nil {
		return err
	}
	wd, err := dense(dst)
	if err != nil {
		return err
	}
	g := newConvGeom(x, dst, gy.Shape(), p)
	var col []float32
	if !g.direct {
		col = make([]float32, g.ckk*g.ohw)
	}
	for n := 0; n < g.n; n++ {
		xn, yn := vs[0].item(n), vs[1].item(n)
		beta := float32(1)
		if n == 0 {
			beta = 0
		}
		for gi := 0; gi < g.g; gi++ {
			src := xn[gi*g.chw : (gi+1)*g.chw]
			if !g.direct {
				g.im2col(col, src)
				src = col
			}
			b.gemm(false, true, g.og, g.ckk, g.ohw, 1, yn[gi*g.og*g.ohw:], g.ohw, src, g.ohw, beta, wd[gi*g.og*g.ckk:], g.ckk)
		}
	}
	return nil
}
