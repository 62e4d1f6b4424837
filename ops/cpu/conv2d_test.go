package cpu

import (
	"slices"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Zero Conv2DParams fields mean the defaults (stride 1, dilation 1, groups 1) to the backend as
// to the tape: called directly with Groups 0, the convolutions once divided by zero.
func TestConvZeroParamsAreDefaults(t *testing.T) {
	b := New()
	fill := func(shape ...int) *tensor.Tensor {
		n := tensor.Shape(shape).Numel()
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((i*7)%11) - 5
		}
		x, err := ops.FromHost(b, v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x, w, gy := fill(2, 3, 5, 5), fill(4, 3, 3, 3), fill(2, 4, 3, 3)
	run := func(p ops.Conv2DParams) [3][]float32 {
		var out [3][]float32
		for i, c := range []struct {
			shape tensor.Shape
			do    func(dst *tensor.Tensor) error
		}{
			{tensor.Shape{2, 4, 3, 3}, func(d *tensor.Tensor) error { return b.Conv2D(d, x, w, nil, p) }},
			{tensor.Shape{2, 3, 5, 5}, func(d *tensor.Tensor) error { return b.Conv2DGradInput(d, gy, w, p) }},
			{tensor.Shape{4, 3, 3, 3}, func(d *tensor.Tensor) error { return b.Conv2DGradWeight(d, x, gy, p) }},
		} {
			d, err := b.Alloc(c.shape)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.do(d); err != nil {
				t.Fatalf("direction %d with %+v: %v", i, p, err)
			}
			if out[i], err = b.Download(d); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	got, want := run(ops.Conv2DParams{}), run(ops.Conv2DParams{Stride: 1, Dilation: 1, Groups: 1})
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("direction %d: zero params give %v, the defaults %v", i, got[i][:4], want[i][:4])
		}
	}
}
