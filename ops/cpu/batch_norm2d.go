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

// bnTail is what follows the normalisation inside a batch-norm kernel: adding a residual (when
// it has data) and a ReLU.
type bnTail struct {
	res  view
	has  bool
	relu bool
}

func newTail(x, residual *tensor.Tensor, relu bool) (bnTail, error) {
	t := bnTail{relu: relu}
	if residual == nil {
		return t, nil
	}
	if !residual.Shape().Equal(x.Shape()) {
		return t, fmt.Errorf("batch_norm2d: residual %v for input %v", residual.Shape(), x.Shape())
	}
	v, err := viewOf(residual)
	if err != nil {
		return t, err
	}
	t.res, t.has = v, true
	return t, nil
}

// normalise writes out[j] = tail(src[j]·scale + shift) for values src of item i that start at
// position lo within the item, rounding as the unfused ops would: the affine map, the addition,
// the ReLU, each in float32.
func (t bnTail) normalise(out, src []float32, scale, shift float32, i, lo int) {
	var r []float32
	if t.has {
		r = t.res.item(i)[lo : lo+len(src)]
	}
	for j, v := range src {
		y := v*scale + shift
		if r != nil {
			y += r[j]
		}
		if t.relu {
			y = max(y, 0)
		}
		out[j] = y
	}
}

// BatchNormTrain implements ops.Backend: batchStats, then BatchNormApply.
func (b *Backend) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	if err := b.batchStats(mean, invStd, x, runMean, runVar, p); err != nil {
		return err
	}
	return b.BatchNormApply(dst, x, mean, invStd, gamma, beta, residual, relu)
}

// Conv2DBatchStats implements ops.Backend: the sum, the convolution, then the same statistics
// as BatchNormTrain's.
func (b *Backend) Conv2DBatchStats(dst, mean, invStd, x, x2, w, runMean, runVar *tensor.Tensor, p ops.Conv2DParams, bp ops.BatchNormParams) error {
	if x2 != nil {
		sum, release, err := b.sumInput(x, x2)
		if err != nil {
			return err
		}
		defer release()
		x = sum
	}
	if err := b.Conv2D(dst, x, w, nil, p); err != nil {
		return err
	}
	return b.batchStats(mean, invStd, dst, runMean, runVar, bp)
}

// batchStats writes x's per-channel mean and 1/sqrt(var+eps) and updates the running
// statistics. Statistics are two-pass in float64.
func (b *Backend) batchStats(mean, invStd, x, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	xv, vec, err := bnOperands(x, mean, invStd, runMean, runVar)
	if err != nil {
		return err
	}
	mu, is, rm, rv := vec[0], vec[1], vec[2], vec[3]
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
			mom := float64(p.Momentum)
			rm[ch] = float32((1-mom)*float64(rm[ch]) + mom*mean)
			rv[ch] = float32((1-mom)*float64(rv[ch]) + mom*variance*m/(m-1))
		}
	})
	return nil
}

// BatchNormApply implements ops.Backend.
func (b *Backend) BatchNormApply(dst, x, mean, invStd, gamma, beta, residual *tensor.Tensor, relu bool) error {
	xv, vec, err := bnOperands(x, mean, invStd, gamma, beta)
	if err != nil {
		return err
	}
	yv, err := viewOf(dst)
	if err != nil {
		return err
	}
	tail, err := newTail(x, residual, relu)
	if err != nil {
		return err
	}
	mu, is, ga, be := vec[0], vec[1], vec[2], vec[3]
	n, c, h, w := x.Shape().NCHW()
	hw := h * w
	parallelFor(b.workers, n*c, 4, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			i, ch := k/c, k%c
			scale := is[ch] * ga[ch]
			shift := be[ch] - mu[ch]*scale
			tail.normalise(yv.item(i)[ch*hw:(ch+1)*hw], xv.item(i)[ch*hw:(ch+1)*hw], scale, shift, i, ch*hw)
		}
	})
	return nil
}

// BatchNormEval implements ops.Backend.
func (b *Backend) BatchNormEval(dst, x, gamma, beta, runMean, runVar, residual *tensor.Tensor, relu bool, p ops.BatchNormParams) error {
	xv, vec, err := bnOperands(x, gamma, beta, runMean, runVar)
	if err != nil {
		return err
	}
	yv, err := viewOf(dst)
	if err != nil {
		return err
	}
	tail, err := newTail(x, residual, relu)
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
			tail.normalise(yv.item(i)[ch*hw:(ch+1)*hw], xv.item(i)[ch*hw:(ch+1)*hw], scale, shift, i, ch*hw)
		}
	})
	return nil
}

// BatchNormGrad implements ops.Backend. With x̂ = (x−mean)·invStd, M values per channel and g
// the incoming gradient (masked by y > 0 after a fused ReLU): gβ = Σg, gγ = Σg·x̂, and in training
// gx = γ·invStd·(g − gβ/M − x̂·gγ/M).
func (b *Backend) BatchNormGrad(gx, gGamma, gBeta, gResidual, gy, gy2, x, y, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	xv, vec, err := bnOperands(x, gGamma, gBeta, gamma, mean, invStd)
	if err != nil {
		return err
	}
	vs, err := views(gx, gy)
	if err != nil {
		return err
	}
	gxv, gyv := vs[0], vs[1]
	var yv, grv, gy2v view
	for _, o := range []struct {
		t *tensor.Tensor
		v *view
	}{{y, &yv}, {gResidual, &grv}, {gy2, &gy2v}} {
		if o.t == nil {
			continue
		}
		if !o.t.Shape().Equal(x.Shape()) {
			return fmt.Errorf("batch_norm2d grad: %v for input %v", o.t.Shape(), x.Shape())
		}
		if *o.v, err = viewOf(o.t); err != nil {
			return err
		}
	}
	gg, gb, ga, mu, is := vec[0], vec[1], vec[2], vec[3], vec[4]
	n, c, h, w := x.Shape().NCHW()
	hw := h * w
	m := float64(n * hw)
	parallelFor(b.workers, c, 1, func(lo, hi int) {
		g := make([]float32, hw)  // one item's masked gradient for the channel
		g2 := make([]float32, hw) // and its sum gy + gy2
		// masked returns item i's gradient for channel ch: gy (+ gy2), or that where y > 0 and 0
		// elsewhere, also written to gResidual.
		masked := func(i, ch int) []float32 {
			gs := gyv.item(i)[ch*hw : (ch+1)*hw]
			if gy2 != nil {
				for j, v := range gy2v.item(i)[ch*hw : (ch+1)*hw] {
					g2[j] = gs[j] + v
				}
				gs = g2
			}
			if y == nil {
				if gResidual != nil {
					copy(grv.item(i)[ch*hw:(ch+1)*hw], gs)
				}
				return gs
			}
			for j, v := range yv.item(i)[ch*hw : (ch+1)*hw] {
				if v > 0 {
					g[j] = gs[j]
				} else {
					g[j] = 0
				}
			}
			if gResidual != nil {
				copy(grv.item(i)[ch*hw:(ch+1)*hw], g)
			}
			return g
		}
		for ch := lo; ch < hi; ch++ {
			mean, inv := float64(mu[ch]), float64(is[ch])
			var sg, sgx float64
			for i := 0; i < n; i++ {
				xs, gs := xv.item(i)[ch*hw:(ch+1)*hw], masked(i, ch)
				for j, g := range gs {
					sg += float64(g)
					sgx += float64(g) * (float64(xs[j]) - mean)
				}
			}
			gb[ch] = float32(sg)
			gg[ch] = float32(sgx * inv)
			k := float32(float64(ga[ch]) * inv)
			var a, c0 float32 // gx = k·g + a·x + c0
			if batchStats {
				a = float32(-float64(ga[ch]) * inv * inv * inv * sgx / m)
				c0 = float32(-float64(ga[ch])*inv*sg/m + float64(ga[ch])*inv*inv*inv*sgx/m*mean)
			}
			for i := 0; i < n; i++ {
				xs, gs, out := xv.item(i)[ch*hw:(ch+1)*hw], masked(i, ch), gxv.item(i)[ch*hw:(ch+1)*hw]
				for j, g := range gs {
					out[j] = k*g + a*xs[j] + c0
				}
			}
		}
	})
	return nil
}
