package ops_test

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// countingBackend counts the calls that only move or accumulate data.
type countingBackend struct {
	ops.Backend
	copies, fills, axpbys, adds, convAdds int
}

func (c *countingBackend) Copy(dst, src *tensor.Tensor) error {
	c.copies++
	return c.Backend.Copy(dst, src)
}

func (c *countingBackend) Fill(dst *tensor.Tensor, v float32) error {
	c.fills++
	return c.Backend.Fill(dst, v)
}

func (c *countingBackend) Axpby(dst, x *tensor.Tensor, alpha, beta float32) error {
	c.axpbys++
	return c.Backend.Axpby(dst, x, alpha, beta)
}

func (c *countingBackend) Binary(op ops.BinaryOp, dst, a, b *tensor.Tensor) error {
	if op == ops.Add {
		c.adds++
	}
	return c.Backend.Binary(op, dst, a, b)
}

// TestSplitConcatWithoutCopies checks that outputs written into their concatenation slice and
// gradients written into their split slice give bit-identical results to the copying path, and
// that they copy only the one part that passes through unchanged (non-stage blocks) and never
// copy a gradient.
func TestSplitConcatWithoutCopies(t *testing.T) {
	for _, stage := range []bool{false, true} {
		run := func(inPlace, early bool) (grads [][]float32, c *countingBackend) {
			c = &countingBackend{Backend: cpu.New()}
			rng := tensor.NewRNG(5, 0)
			param := func(shape ...int) *tensor.Tensor {
				v := make([]float32, tensor.Shape(shape).Numel())
				for i := range v {
					v[i] = float32(rng.Normal())
				}
				p, err := ops.FromHost(c, v, shape...)
				if err != nil {
					t.Fatal(err)
				}
				return p.SetRequiresGrad(true)
			}
			x := param(2, 8, 6, 5)
			ws := [3]*tensor.Tensor{param(2, 2, 3, 3), param(2, 2, 3, 3), param(2, 2, 3, 3)}
			tp := ops.NewTape(c)
			defer tp.Release()
			// x enters as an op's output, as in a network (a leaf's gradient is copied to it).
			in := tp.Scale(x, 0.5)
			y := optest.Res2NetCore(tp, in, ws, optest.Res2NetCoreOptions{Stage: stage, Copy: !inPlace, Early: early, Act: (*ops.Tape).ReLU})
			if !stage {
				y = tp.Add(tp.Sigmoid(y), in) // a fresh gradient for the concatenation, as conv3's in Res2Net
			}
			loss := tp.Sum(tp.Mul(y, y), ops.AxesAll)
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}
			for _, p := range append([]*tensor.Tensor{x}, ws[:]...) {
				g, err := c.Download(p.Grad)
				if err != nil {
					t.Fatal(err)
				}
				grads = append(grads, g)
			}
			return grads, c
		}
		want, _ := run(false, false)
		for _, early := range []bool{false, true} {
			got, c := run(true, early)
			for i := range want {
				for j := range want[i] {
					if got[i][j] != want[i][j] {
						t.Fatalf("stage %v, early %v: gradient %d element %d: %g in place, %g with copies", stage, early, i, j, got[i][j], want[i][j])
					}
				}
			}
			wantCopies := 1 // the unchanged last split into the concatenation
			if stage {
				wantCopies = 0
			}
			// The fill seeds the backward pass; the axpbys are Scale and its gradient.
			if c.copies != wantCopies || c.fills != 1 || c.axpbys != 2 {
				t.Errorf("stage %v, early %v: %d copies, %d fills, %d axpbys; want %d, 1, 2", stage, early, c.copies, c.fills, c.axpbys, wantCopies)
			}
		}
	}
}

func (c *countingBackend) Conv2DGradInputAdd(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	c.convAdds++
	return c.Backend.Conv2DGradInputAdd(dst, gy, w, p)
}

// TestConvAccumulatesInputGradient checks that a tensor read by two convolutions gets its
// gradient summed by the second convolution's kernel, without an add of its own, and that the
// sum matches the separate gradients added.
func TestConvAccumulatesInputGradient(t *testing.T) {
	c := &countingBackend{Backend: cpu.New()}
	rng := tensor.NewRNG(6, 0)
	param := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(rng.Normal())
		}
		p, err := ops.FromHost(c, v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return p.SetRequiresGrad(true)
	}
	x, w1, w2 := param(2, 3, 6, 5), param(4, 3, 3, 3), param(4, 3, 3, 3)
	p := ops.Conv2DParams{Pad: 1}
	gradOf := func(ws ...*tensor.Tensor) []float32 {
		x.Grad, w1.Grad, w2.Grad = nil, nil, nil
		tp := ops.NewTape(c)
		defer tp.Release()
		s := tp.Scale(x, 1)
		var sum *tensor.Tensor
		for _, w := range ws {
			y := tp.Conv2D(s, w, nil, p)
			if sum == nil {
				sum = y
			} else {
				sum = tp.Add(sum, y)
			}
		}
		if err := tp.Backward(tp.Sum(sum, ops.AxesAll)); err != nil {
			t.Fatal(err)
		}
		g, err := c.Download(x.Grad)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g1, g2 := gradOf(w1), gradOf(w2)
	c.adds, c.convAdds = 0, 0
	both := gradOf(w1, w2)
	if c.convAdds != 1 || c.adds != 1 { // the forward add of the two outputs
		t.Errorf("%d accumulating convolutions and %d adds, want 1 and 1", c.convAdds, c.adds)
	}
	for i := range both {
		// Either order of the float32 sum; the kernel adds the later gradient to the earlier.
		if both[i] != g1[i]+g2[i] && both[i] != g2[i]+g1[i] {
			t.Fatalf("element %d: %g, want %g + %g", i, both[i], g1[i], g2[i])
		}
	}
}
