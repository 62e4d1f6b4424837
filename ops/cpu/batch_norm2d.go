package cpu

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// bnOperands resolves batch-norm operands: x as an NCHW view plus per-channel vectors.
func bnOperands(x *tensor.Tensor, vecs ...*tensor.Tensor) (view, [][]float32, error) {
	v, err := viewOf(x)
	if err != nil {
		return view{}, nil, err
	}
	out := make([][]float32, len(vecs))
	for i, t := range vecs {
		if out[i], err = dense(t); err != nil {
			return view{}, nil, err
		}
		if len(out[i]) != x.Dim(1) {
			return view{}, nil, fmt.Errorf("batch_norm2d: per-channel tensor %v for %d channels", t.Shape(), x.Dim(1))
		}
	}
	return v, out, nil
}

// BatchNormTrain implements ops.Backend. Statistics are two-pass in float64.
func (b *Backend) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	xv, vec, err := bnOperands(x, mean, invStd, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	yv, err := viewOf(dst)
	if err != nil {
		return err
	}
	mu, is, ga, be, rm, rv := vec[0], vec[1], vec[2], vec[3], vec[4], vec[5]
	n, c, h, w := x.Shape().NCHW()
	hw := h * w
	m := float64(n * hw)
	parallelFor(b.workers, c, 1, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				s += sum64(xv.item(i)[ch*hw : (ch+1)*hw])
			}
			mean := s / m
			var ss float64
			for i := 0; i < n; i++ {
				for _, v := range xv.item(i)[ch*hw : (ch+1)*hw] {
					d := float64(v) - mean
					ss += d * d
				}
			}
			variance := ss / m
			inv := 1 / math.Sqrt(variance+float64(p.Eps))
			mu[ch], is[ch] = float32(mean), float32(inv)
			scale := float32(inv) * ga[ch]
			shift := be[ch] - float32(mean)*scale
			for i := 0; i < n; i++ {
				src, out := xv.item(i)[ch*hw:(ch+1)*hw], yv.item(i)[ch*hw:(ch+1)*hw]
				for j, v := range src {
					out[j] = v*scale + shift
				}
			}
			mom := float64(p.Momentum)
			rm[ch] = float32((1-mom)*float64(rm[ch]) + mom*mean)
			rv[ch] = float32((1-mom)*float64(rv[ch]) + mom*variance*m/(m-1))
		}
	})
	return nil
}

// BatchNormEval implements ops.Backend.
func (b *Backend) BatchNormEval(dst, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	xv, vec, err := bnOperands(x, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	yv, err := viewOf(dst)
	if err != nil {
		return err
	}
	ga, be, rm, rv := vec[0], vec[1], vec[2], vec[3]
	n, c, h, w := x.Shape().NCHW()
	hw := h * w
	parallelFor(b.workers, n*c, 4, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i, ch := k/c, k%c
			scale := float32(1/math.Sqrt(float64(rv[ch])+float64(p.Eps))) * ga[ch]
			shift := be[ch] - rm[ch]*scale
			src, out := xv.item(i)[ch*hw:(ch+1)*hw], yv.item(i)[ch*hw:(ch+1)*hw]
			for j, v := range src {
				out[j] = v*scale + shift
			}
		}
	})
	return nil
}

// BatchNormGrad implements ops.Backend. With x̂ = (x−mean)·invStd and M values per channel:
// gβ = Σgy, gγ = Σgy·x̂, and in training gx = γ·invStd·(gy − gβ/M − x̂·gγ/M).
func (b *Backend) BatchNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	xv, vec, err := bnOperands(x, gGamma, gBeta, gamma, mean, invStd)
	if err != nil {
		return err
	}
	vs, err := views(gx, gy)
	if err != nil {
		return err
	}
	gxv, gyv := vs[0], vs[1]
	gg, gb, ga, mu, is := vec[0], vec[1], vec[2], vec[3], vec[4]
	n, c, h, w := x.Shape().NCHW()
	hw := h * w
	m := float64(n * hw)
	parallelFor(b.workers, c, 1, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mean, inv := float64(mu[ch]), float64(is[ch])
			var sg, sgx float64
			for i := 0; i < n; i++ {
				xs, gs := xv.item(i)[ch*hw:(ch+1)*hw], gyv.item(i)[ch*hw:(ch+1)*hw]
				for j, g := range gs {
					sg += float64(g)
					sgx += float64(g) * (float64(xs[j]) - mean)
				}
			}
			gb[ch] = float32(sg)
			gg[ch] = float32(sgx * inv)
			k := float32(float64(ga[ch]) * inv)
			var a, c0 float32 // gx = k·gy + a·x + c0
			if batchStats {
				a = float32(-float64(ga[ch]) * inv * inv * inv * sgx / m)
				c0 = float32(-float64(ga[ch])*inv*sg/m + float64(ga[ch])*inv*inv*inv*sgx/m*mean)
			}
			for i := 0; i < n; i++ {
				xs, gs, out := xv.item(i)[ch*hw:(ch+1)*hw], gyv.item(i)[ch*hw:(ch+1)*hw], gxv.item(i)[ch*hw:(ch+1)*hw]
				for j, g := range gs {
					out[j] = k*g + a*xs[j] + c0
				}
			}
		}
	})
	return nil
}
