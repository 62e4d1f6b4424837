package cpu

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// forItems runs fn over matching items of same-shaped batch-strided tensors, in parallel.
func (b *Backend) forItems(ts []*tensor.Tensor, fn func(items [][]float32)) error {
	for _, t := range ts[1:] {
		if t.Numel() != ts[0].Numel() || t.Dim(0) != ts[0].Dim(0) {
			return fmt.Errorf("shapes differ: %v and %v", ts[0].Shape(), t.Shape())
		}
	}
	vs, err := views(ts...)
	if err != nil {
		return err
	}
	n, inner := vs[0].n, vs[0].inner
	// Split each item into chunks so a batch of one still uses every core.
	const chunk = 16384
	per := (inner + chunk - 1) / chunk
	parallelFor(b.workers, n*per, 1, func(lo, hi int) {
		items := make([][]float32, len(vs))
		for j := lo; j < hi; j++ {
			i, c := j/per, j%per
			s, e := c*chunk, min((c+1)*chunk, inner)
			for k, v := range vs {
				items[k] = v.item(i)[s:e]
			}
			fn(items)
		}
	})
	return nil
}

// Unary implements ops.Backend.
func (b *Backend) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	return b.forItems([]*tensor.Tensor{dst, x}, func(it [][]float32) {
		d, s := it[0], it[1][:len(it[0])]
		switch op {
		case ops.ReLU:
			for i, v := range s {
				d[i] = max(v, 0)
			}
		case ops.Sigmoid:
			for i, v := range s {
				d[i] = sigmoid(v)
			}
		case ops.Abs:
			for i, v := range s {
				d[i] = float32(math.Abs(float64(v)))
			}
		case ops.Neg:
			for i, v := range s {
				d[i] = -v
			}
		case ops.GELU:
			for i, v := range s {
				d[i] = gelu(v)
			}
		}
	})
}

// gelu is x·Φ(x) with Φ the standard normal CDF, in float64 (math.Erf) like PyTorch's exact form.
func gelu(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
}

// geluGrad is Φ(x) + x·φ(x), the derivative of x·Φ(x).
func geluGrad(x float32) float32 {
	v := float64(x)
	cdf := 0.5 * (1 + math.Erf(v/math.Sqrt2))
	pdf := math.Exp(-0.5*v*v) / math.Sqrt(2*math.Pi)
	return float32(cdf + v*pdf)
}

// sigmoid is 1/(1+e^-x), written to avoid overflow for large |x|.
func sigmoid(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}

// UnaryGrad implements ops.Backend.
func (b *Backend) UnaryGrad(op ops.UnaryOp, dst, gy, x, y *tensor.Tensor) error {
	// ReLU and sigmoid read only y; Abs and GELU read only x. Pass the one that is needed.
	src := y
	if op == ops.Abs || op == ops.Neg || op == ops.GELU {
		src = x
		if src == nil {
			src = gy
		}
	}
	return b.forItems([]*tensor.Tensor{dst, gy, src}, func(it [][]float32) {
		d, g, s := it[0], it[1][:len(it[0])], it[2][:len(it[0])]
		switch op {
		case ops.ReLU:
			for i := range d {
				if s[i] > 0 {
					d[i] = g[i]
				} else {
					d[i] = 0
				}
			}
		case ops.Sigmoid:
			for i := range d {
				d[i] = g[i] * s[i] * (1 - s[i])
			}
		case ops.Abs:
			for i := range d {
				switch {
				case s[i] > 0:
					d[i] = g[i]
				case s[i] < 0:
					d[i] = -g[i]
				default:
					d[i] = 0
				}
			}
		case ops.Neg:
			for i := range d {
				d[i] = -g[i]
			}
		case ops.GELU:
			for i := range d {
				d[i] = g[i] * geluGrad(s[i])
			}
		}
	})
}

// Binary implements ops.Backend.
func (b *Backend) Binary(op ops.BinaryOp, dst, x, y *tensor.Tensor) error {
	return b.forItems([]*tensor.Tensor{dst, x, y}, func(it [][]float32) {
		d, p, q := it[0], it[1][:len(it[0])], it[2][:len(it[0])]
		switch op {
		case ops.Add:
			for i := range d {
				d[i] = p[i] + q[i]
			}
		case ops.Sub:
			for i := range d {
				d[i] = p[i] - q[i]
			}
		case ops.Mul:
			for i := range d {
				d[i] = p[i] * q[i]
			}
		case ops.Div:
			for i := range d {
				d[i] = p[i] / q[i]
			}
		}
	})
}

// Axpby implements ops.Backend.
func (b *Backend) Axpby(dst, x *tensor.Tensor, alpha, beta float32) error {
	return b.forItems([]*tensor.Tensor{dst, x}, func(it [][]float32) {
		d, s := it[0], it[1][:len(it[0])]
		if beta == 0 {
			for i := range d {
				d[i] = alpha * s[i]
			}
			return
		}
		for i := range d {
			d[i] = alpha*s[i] + beta*d[i]
		}
	})
}
