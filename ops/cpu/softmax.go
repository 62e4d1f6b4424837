package cpu

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/tensor"
)

// rowSet is the rows of the last dimension of same-shaped batch-strided tensors: row r of
// tensor t is rows(t, r), d elements long.
type rowSet struct {
	vs         []view
	d, perItem int
	total      int
}

func rowsOf(ts ...*tensor.Tensor) (rowSet, error) {
	x := ts[0]
	if x.Rank() < 2 {
		return rowSet{}, fmt.Errorf("tensor %v must have at least two dimensions", x.Shape())
	}
	for _, t := range ts[1:] {
		if !t.Shape().Equal(x.Shape()) {
			return rowSet{}, fmt.Errorf("shapes differ: %v and %v", x.Shape(), t.Shape())
		}
	}
	vs, err := views(ts...)
	if err != nil {
		return rowSet{}, err
	}
	d := x.Dim(x.Rank() - 1)
	return rowSet{vs: vs, d: d, perItem: vs[0].inner / d, total: x.Numel() / d}, nil
}

// row returns row r of tensor t; rows never straddle batch items (the last dimension lies
// inside an item's contiguous block).
func (s rowSet) row(t, r int) []float32 {
	i, j := r/s.perItem, r%s.perItem
	return s.vs[t].item(i)[j*s.d : (j+1)*s.d]
}

// forRows runs fn over row ranges in parallel, in chunks big enough to amortise goroutines.
func (b *Backend) forRows(s rowSet, fn func(lo, hi int)) {
	parallelFor(b.workers, s.total, max(1, 4096/max(1, s.d)), fn)
}

// Softmax implements ops.TransformerKernels: max-subtracted exponentials, normalised with a
// float64 sum so long rows (attention over thousands of keys) do not lose mass to rounding.
func (b *Backend) Softmax(dst, x *tensor.Tensor) error {
	s, err := rowsOf(dst, x)
	if err != nil {
		return fmt.Errorf("softmax: %w", err)
	}
	b.forRows(s, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			d, xs := s.row(0, r), s.row(1, r)
			mx := float32(math.Inf(-1))
			for _, v := range xs {
				mx = max(mx, v)
			}
			var sum float64
			for i, v := range xs {
				e := math.Exp(float64(v - mx))
				d[i] = float32(e)
				sum += e
			}
			inv := float32(1 / sum)
			for i := range d {
				d[i] *= inv
			}
		}
	})
	return nil
}

// SoftmaxGrad implements ops.TransformerKernels: gx = y·(gy − Σ gy·y). The row's dot product is
// taken before gx is written, so gx may alias gy.
func (b *Backend) SoftmaxGrad(gx, gy, y *tensor.Tensor) error {
	s, err := rowsOf(gx, gy, y)
	if err != nil {
		return fmt.Errorf("softmax grad: %w", err)
	}
	b.forRows(s, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			g, gys, ys := s.row(0, r), s.row(1, r), s.row(2, r)
			var dot float64
			for i, v := range gys {
				dot += float64(v) * float64(ys[i])
			}
			for i := range g {
				g[i] = ys[i] * float32(float64(gys[i])-dot)
			}
		}
	})
	return nil
}
