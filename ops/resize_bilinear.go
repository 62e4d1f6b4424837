package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// ResizeBilinear is torch.nn.functional.interpolate(mode="bilinear") to h x w, up or down,
// without antialiasing. With alignCorners false a source coordinate is (d+0.5)·in/out − 0.5,
// clamped at 0; with true it is d·(in−1)/(out−1).
func (t *Tape) ResizeBilinear(x *tensor.Tensor, h, w int, alignCorners bool) *tensor.Tensor {
	const op = "resize_bilinear"
	if !t.ok(x) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	if h < 1 || w < 1 {
		t.Fail(fmt.Errorf("%s: output size %dx%d must be positive", op, h, w))
		return nil
	}
	if x.Dim(2) == h && x.Dim(3) == w {
		return x // PyTorch copies here; the identity needs no kernel and no gradient node
	}
	y := t.alloc(tensor.Shape{x.Dim(0), x.Dim(1), h, w}, op)
	if y == nil || !t.check(t.b.ResizeBilinear(y, x, alignCorners), fmt.Sprintf("%s %v -> %dx%d", op, x.Shape(), h, w)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.allocGradView(x, op+" grad")
			if gx != nil {
				t.check(t.b.ResizeBilinearGrad(gx, gys[0], alignCorners), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// ResizeSum is Σ_i ResizeBilinear(xs[i], h, w), summed in order, then ReLU'd if relu: CHNet's
// factorized head (chnet.Model.factorizedHidden). Each term after the first is resized and
// added in one pass over the sum (ResizeBilinearAdd), and the last also applies the ReLU, so
// the full-resolution terms never exist; the result equals the separate ops'. Inputs share N
// and C.
func (t *Tape) ResizeSum(xs []*tensor.Tensor, h, w int, alignCorners, relu bool) *tensor.Tensor {
	const op = "resize_sum"
	if !t.ok(xs...) {
		return nil
	}
	if len(xs) == 0 || h < 1 || w < 1 {
		t.Fail(fmt.Errorf("%s: %d inputs to %dx%d: need at least one and a positive size", op, len(xs), h, w))
		return nil
	}
	for i, x := range xs {
		if err := requireNCHW(op, fmt.Sprintf("input %d", i), x); err != nil {
			t.Fail(err)
			return nil
		}
		if x.Dim(0) != xs[0].Dim(0) || x.Dim(1) != xs[0].Dim(1) {
			t.Fail(fmt.Errorf("%s: input %d is %v, input 0 %v: batch and channels must match", op, i, x.Shape(), xs[0].Shape()))
			return nil
		}
	}
	same := func(x *tensor.Tensor) bool { return x.Dim(2) == h && x.Dim(3) == w }
	y := t.allocOut(tensor.Shape{xs[0].Dim(0), xs[0].Dim(1), h, w}, op)
	if y == nil {
		return nil
	}
	last, reluDone := len(xs)-1, false
	for i, x := range xs {
		desc := fmt.Sprintf("%s input %d %v -> %dx%d", op, i, x.Shape(), h, w)
		var err error
		switch {
		case i == 0 && same(x):
			err = t.b.Copy(y, x)
		case i == 0:
			err = t.b.ResizeBilinear(y, x, alignCorners)
		case same(x):
			err = t.b.Binary(Add, y, y, x)
		default:
			err = t.b.ResizeBilinearAdd(y, x, alignCorners, relu && i == last)
			reluDone = relu && i == last
		}
		if !t.check(err, desc) {
			return nil
		}
	}
	if relu && !reluDone && !t.check(t.b.Unary(ReLU, y, y), op+" relu") {
		return nil
	}
	var saved []*tensor.Tensor
	if relu {
		saved = []*tensor.Tensor{y}
	}
	t.record(op, []*tensor.Tensor{y}, xs, saved,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			g := gys[0]
			if relu {
				if g = t.alloc(y.Shape(), op+" grad"); g == nil || !t.check(t.b.UnaryGrad(ReLU, g, gys[0], nil, y), op+" grad relu") {
					return nil
				}
			}
			gxs := make([]*tensor.Tensor, len(xs))
			handed := false
			for i, x := range xs {
				switch {
				case !x.RequiresGrad():
				case same(x):
					gxs[i], handed = g, true
				default:
					if gxs[i] = t.allocGradView(x, op+" grad"); gxs[i] == nil ||
						!t.check(t.b.ResizeBilinearGrad(gxs[i], g, alignCorners), op+" grad") {
						return nil
					}
				}
			}
			if g != gys[0] && !handed {
				t.release(g)
			}
			return gxs
		})
	return y
}

// BilinearAxis holds, for each output index along one axis, the two source indices and their
// weights: out[d] = W0[d]·in[I0[d]] + W1[d]·in[I1[d]].
type BilinearAxis struct {
	I0, I1 []int
	W0, W1 []float32
}

// BilinearTaps computes one axis of PyTorch's upsample_bilinear2d, with the scale and the source
// coordinate in float32 as PyTorch computes them for float tensors, so every backend reads the
// same pixels with the same weights.
func BilinearTaps(in, out int, alignCorners bool) BilinearAxis {
	t := BilinearAxis{make([]int, out), make([]int, out), make([]float32, out), make([]float32, out)}
	var scale float32
	if alignCorners {
		if out > 1 {
			scale = float32(in-1) / float32(out-1)
		}
	} else {
		scale = float32(in) / float32(out)
	}
	for d := 0; d < out; d++ {
		var src float32
		if alignCorners {
			src = scale * float32(d)
		} else {
			src = max(scale*(float32(d)+0.5)-0.5, 0)
		}
		i0 := int(src)
		i1 := i0
		if i0 < in-1 {
			i1 = i0 + 1
		}
		l1 := src - float32(i0)
		t.I0[d], t.I1[d], t.W0[d], t.W1[d] = i0, i1, 1-l1, l1
	}
	return t
}
