package cpu

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// LayerNorm implements ops.TransformerKernels. Row statistics are accumulated in float64 with a
// second pass for the variance: rows are short (hundreds of values), so two passes cost little
// and avoid the cancellation of E[x²]−E[x]².
func (b *Backend) LayerNorm(dst, mean, invStd, x, gamma, beta *tensor.Tensor, p ops.LayerNormParams) error {
	s, err := rowsOf(dst, x)
	if err != nil {
		return fmt.Errorf("layer_norm: %w", err)
	}
	g, err1 := dense(gamma)
	bt, err2 := dense(beta)
	mu, err3 := dense(mean)
	is, err4 := dense(invStd)
	for _, e := range []error{err1, err2, err3, err4} {
		if e != nil {
			return fmt.Errorf("layer_norm: %w", e)
		}
	}
	if len(g) != s.d || len(bt) != s.d || len(mu) != s.total || len(is) != s.total {
		return fmt.Errorf("layer_norm: weight %v, bias %v, mean %v, inv_std %v do not fit input %v", gamma.Shape(), beta.Shape(), mean.Shape(), invStd.Shape(), x.Shape())
	}
	b.forRows(s, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			y, xs := s.row(0, r), s.row(1, r)
			var sum float64
			for _, v := range xs {
				sum += float64(v)
			}
			m := sum / float64(s.d)
			var ss float64
			for _, v := range xs {
				dv := float64(v) - m
				ss += dv * dv
			}
			inv := 1 / math.Sqrt(ss/float64(s.d)+float64(p.Eps))
			mu[r], is[r] = float32(m), float32(inv)
			for i, v := range xs {
				y[i] = float32((float64(v)-m)*inv)*g[i] + bt[i]
			}
		}
	})
	return nil
}

// LayerNormGrad implements ops.TransformerKernels. With x̂ = (x−mean)·invStd and g = gy·gamma,
// gx = invStd·(g − mean(g) − x̂·mean(g·x̂)) per row; the gamma and beta gradients sum gy·x̂ and gy
// over rows, in per-chunk float64 partial sums that are added at the end.
func (b *Backend) LayerNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor) error {
	s, err := rowsOf(gx, gy, x)
	if err != nil {
		return fmt.Errorf("layer_norm grad: %w", err)
	}
	var ds [5][]float32
	for i, t := range []*tensor.Tensor{gGamma, gBeta, gamma, mean, invStd} {
		if ds[i], err = dense(t); err != nil {
			return fmt.Errorf("layer_norm grad: %w", err)
		}
	}
	gg, gb, g, mu, is := ds[0], ds[1], ds[2], ds[3], ds[4]
	if len(gg) != s.d || len(gb) != s.d || len(g) != s.d || len(mu) != s.total || len(is) != s.total {
		return fmt.Errorf("layer_norm grad: parameter or statistics shapes do not fit input %v", x.Shape())
	}
	// Chunks are fixed (not per worker) so the float64 partial sums, and hence the result, do
	// not depend on the number of cores.
	const chunkRows = 64
	chunks := (s.total + chunkRows - 1) / chunkRows
	partGG := make([]float64, chunks*s.d)
	partGB := make([]float64, chunks*s.d)
	parallelFor(b.workers, chunks, 1, func(c0, c1 int) {
		xhat := make([]float64, s.d)
		for c := c0; c < c1; c++ {
			pg, pb := partGG[c*s.d:(c+1)*s.d], partGB[c*s.d:(c+1)*s.d]
			for r := c * chunkRows; r < min((c+1)*chunkRows, s.total); r++ {
				gxr, gyr, xr := s.row(0, r), s.row(1, r), s.row(2, r)
				m, inv := float64(mu[r]), float64(is[r])
				var sumG, sumGX float64
				for i, v := range xr {
					xh := (float64(v) - m) * inv
					xhat[i] = xh
					gi := float64(gyr[i]) * float64(g[i])
					sumG += gi
					sumGX += gi * xh
					pg[i] += float64(gyr[i]) * xh
					pb[i] += float64(gyr[i])
				}
				meanG, meanGX := sumG/float64(s.d), sumGX/float64(s.d)
				for i := range gxr {
					gi := float64(gyr[i]) * float64(g[i])
					gxr[i] = float32(inv * (gi - meanG - xhat[i]*meanGX))
				}
			}
		}
	})
	for i := 0; i < s.d; i++ {
		var a, c float64
		for ch := 0; ch < chunks; ch++ {
			a += partGG[ch*s.d+i]
			c += partGB[ch*s.d+i]
		}
		gg[i], gb[i] = float32(a), float32(c)
	}
	return nil
}
