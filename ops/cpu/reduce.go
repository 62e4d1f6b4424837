package cpu

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Sum implements ops.Backend. Partial sums are float64: a 16x352x352 map sums two million terms.
func (b *Backend) Sum(dst, x *tensor.Tensor, axes ops.Axes) error {
	d, err := dense(dst)
	if err != nil {
		return err
	}
	v, err := viewOf(x)
	if err != nil {
		return err
	}
	switch axes {
	case ops.AxesAll:
		if len(d) != 1 {
			return fmt.Errorf("sum: destination %v must have one element", dst.Shape())
		}
		partial := make([]float64, v.n)
		parallelFor(b.workers, v.n, 1, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				partial[n] = sum64(v.item(n))
			}
		})
		var s float64
		for _, p := range partial {
			s += p
		}
		d[0] = float32(s)
	case ops.AxesNHW, ops.AxesHW:
		if x.Rank() != 4 {
			return fmt.Errorf("sum over %v: input %v is not NCHW", axes, x.Shape())
		}
		n, c, h, w := x.Shape().NCHW()
		hw := h * w
		if axes == ops.AxesHW {
			if len(d) != n*c {
				return fmt.Errorf("sum over HW: destination %v, want [%d %d]", dst.Shape(), n, c)
			}
			parallelFor(b.workers, n*c, 8, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					d[i] = float32(sum64(v.item(i / c)[(i%c)*hw : (i%c+1)*hw]))
				}
			})
			return nil
		}
		if len(d) != c {
			return fmt.Errorf("sum over NHW: destination %v, want [%d]", dst.Shape(), c)
		}
		parallelFor(b.workers, c, 8, func(lo, hi int) {
			for ch := lo; ch < hi; ch++ {
				var s float64
				for i := 0; i < n; i++ {
					s += sum64(v.item(i)[ch*hw : (ch+1)*hw])
				}
				d[ch] = float32(s)
			}
		})
	default:
		return fmt.Errorf("sum: unknown axes %v", axes)
	}
	return nil
}

// sum64 adds float32 values in float64, four lanes at a time.
func sum64(s []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += float64(s[i])
		a1 += float64(s[i+1])
		a2 += float64(s[i+2])
		a3 += float64(s[i+3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// Expand implements ops.Backend.
func (b *Backend) Expand(dst, src *tensor.Tensor, axes ops.Axes, scale float32) error {
	s, err := dense(src)
	if err != nil {
		return err
	}
	v, err := viewOf(dst)
	if err != nil {
		return err
	}
	switch axes {
	case ops.AxesAll:
		if len(s) != 1 {
			return fmt.Errorf("expand: source %v must have one element", src.Shape())
		}
		val := s[0] * scale
		for n := 0; n < v.n; n++ {
			d := v.item(n)
			for i := range d {
				d[i] = val
			}
		}
	case ops.AxesNHW, ops.AxesHW:
		if dst.Rank() != 4 {
			return fmt.Errorf("expand over %v: destination %v is not NCHW", axes, dst.Shape())
		}
		n, c, h, w := dst.Shape().NCHW()
		want := c
		if axes == ops.AxesHW {
			want = n * c
		}
		if len(s) != want {
			return fmt.Errorf("expand over %v: source %v does not match destination %v", axes, src.Shape(), dst.Shape())
		}
		hw := h * w
		for i := 0; i < n; i++ {
			item := v.item(i)
			for ch := 0; ch < c; ch++ {
				val := s[ch] * scale
				if axes == ops.AxesHW {
					val = s[i*c+ch] * scale
				}
				plane := item[ch*hw : (ch+1)*hw]
				for j := range plane {
					plane[j] = val
				}
			}
		}
	default:
		return fmt.Errorf("expand: unknown axes %v", axes)
	}
	return nil
}
