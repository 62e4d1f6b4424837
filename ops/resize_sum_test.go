package ops_test

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// TestResizeSumMatchesSeparateOps checks ResizeSum, with and without its ReLU, against the ops
// it replaces (resizes, adds in order, ReLU): the same values and gradients, bit for bit.
func TestResizeSumMatchesSeparateOps(t *testing.T) {
	b := cpu.New()
	shapes := [][]int{{2, 3, 4, 3}, {2, 3, 9, 8}, {2, 3, 2, 2}}
	const h, w = 9, 8
	for _, relu := range []bool{false, true} {
		run := func(fused bool) (out []float32, grads [][]float32) {
			rng := tensor.NewRNG(8, 0)
			xs := make([]*tensor.Tensor, len(shapes))
			for i, s := range shapes {
				v := make([]float32, tensor.Shape(s).Numel())
				for j := range v {
					v[j] = float32(rng.Normal())
				}
				x, err := ops.FromHost(b, v, s...)
				if err != nil {
					t.Fatal(err)
				}
				xs[i] = x.SetRequiresGrad(true)
			}
			tp := ops.NewTape(b)
			defer tp.Release()
			var y *tensor.Tensor
			if fused {
				y = tp.ResizeSum(xs, h, w, false, relu)
			} else {
				for _, x := range xs {
					up := tp.ResizeBilinear(x, h, w, false)
					if y == nil {
						y = up
					} else {
						y = tp.Add(y, up)
					}
				}
				if relu {
					y = tp.ReLU(y)
				}
			}
			tp.Keep(y)
			loss := tp.Sum(tp.Mul(y, y), ops.AxesAll)
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}
			out, err := b.Download(y)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range xs {
				g, err := b.Download(x.Grad)
				if err != nil {
					t.Fatal(err)
				}
				grads = append(grads, g)
			}
			return out, grads
		}
		wantY, wantG := run(false)
		gotY, gotG := run(true)
		for i := range wantY {
			if gotY[i] != wantY[i] {
				t.Fatalf("relu %v: output %d: %g, separate ops %g", relu, i, gotY[i], wantY[i])
			}
		}
		for k := range wantG {
			for i := range wantG[k] {
				if gotG[k][i] != wantG[k][i] {
					t.Fatalf("relu %v: input %d gradient %d: %g, separate ops %g", relu, k, i, gotG[k][i], wantG[k][i])
				}
			}
		}
	}
}
