package optest

import (
	"math"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// gradCase is a function of some inputs whose gradient is checked by finite differences.
type gradCase struct {
	name   string
	shapes [][]int
	// grad marks the inputs that are differentiated (others are constants such as masks).
	grad []bool
	// init fills input i; nil draws N(0,1) values.
	init func(rng *tensor.RNG, i int, v []float32)
	f    func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor
}

// Finite differences in float32: eps balances truncation error (O(eps²)) against rounding of the
// float32 forward (O(1e-7/eps)). Kinked ops (ReLU, max pooling, abs) get inputs spaced well
// apart from their kinks by init functions.
const (
	fdEps = 1e-2
	fdTol = 2e-2
)

func gradCases() []gradCase {
	all := func(n int) []bool {
		g := make([]bool, n)
		for i := range g {
			g[i] = true
		}
		return g
	}
	// spread gives distinct values at least 0.1 apart in random order (no ties for max pooling,
	// nothing within eps of zero for ReLU and abs).
	spread := func(rng *tensor.RNG, _ int, v []float32) {
		p := rng.Perm(len(v))
		for i := range v {
			v[i] = (float32(p[i]) - float32(len(v))/2 + 0.5) * 0.1
		}
	}
	positive := func(rng *tensor.RNG, _ int, v []float32) {
		for i := range v {
			v[i] = float32(0.5 + rng.Float64())
		}
	}
	binaryMask := func(rng *tensor.RNG, i int, v []float32) {
		for j := range v {
			if i == 1 {
				v[j] = float32(rng.Intn(2))
			} else {
				v[j] = float32(2 * rng.Normal())
			}
		}
	}
	// A residual of magnitude 2–3 against a convolution of small weights keeps every sum far
	// from the ReLU's kink, where finite differences would straddle it.
	awayFromKinks := func(rng *tensor.RNG, i int, v []float32) {
		for j := range v {
			switch i {
			case 3:
				v[j] = float32((2 + rng.Float64()) * float64(1-2*rng.Intn(2)))
			default:
				v[j] = float32(0.1 * rng.Normal())
			}
		}
	}
	conv := func(p ops.Conv2DParams, bias bool) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			var b *tensor.Tensor
			if bias {
				b = in[2]
			}
			return t.Conv2D(in[0], in[1], b, p)
		}
	}
	pool := func(p ops.PoolParams, maxPool bool) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			if maxPool {
				return t.MaxPool2D(in[0], p)
			}
			return t.AvgPool2D(in[0], p)
		}
	}
	bn := func(training bool) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			c := in[0].Dim(1)
			rm, _ := ops.Zeros(t.Backend(), c)
			rv, _ := ops.FromHost(t.Backend(), []float32{0.5, 1.5, 2}[:c], c)
			return t.BatchNorm2D(in[0], in[1], in[2], rm, rv, training, ops.DefaultBatchNorm)
		}
	}
	// bnAct is batch norm with a fused residual and ReLU. Finite differences cannot cross the
	// ReLU's kink, so bnActInit shifts the channels far to either side of it (beta ±6): one
	// channel's gradient passes, the other's is masked to zero. The mask at individual units is
	// checked against the unfused ops in checkFusedBatchNorm.
	bnAct := func(training bool) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			c := in[0].Dim(1)
			rm, _ := ops.Zeros(t.Backend(), c)
			rv, _ := ops.FromHost(t.Backend(), []float32{0.5, 1.5, 2}[:c], c)
			return t.BatchNorm2DAct(in[0], in[1], in[2], rm, rv, in[3], true, training, ops.DefaultBatchNorm)
		}
	}
	bnActInit := func(rng *tensor.RNG, i int, v []float32) {
		for j := range v {
			switch i {
			case 1: // gamma
				v[j] = float32(0.5 + 0.5*rng.Float64())
			case 2: // beta
				v[j] = float32(6 - 12*(j%2))
			case 3: // residual
				v[j] = float32(0.3 * rng.Normal())
			default:
				v[j] = float32(rng.Normal())
			}
		}
	}
	unary := func(op ops.UnaryOp) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Unary(op, in[0]) }
	}
	binary := func(op ops.BinaryOp) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Binary(op, in[0], in[1]) }
	}
	matmul := func(p ops.MatMulParams) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.MatMul(in[0], in[1], p) }
	}
	return []gradCase{
		{"conv2d_3x3_s2_p1_bias", [][]int{{2, 3, 7, 6}, {4, 3, 3, 3}, {4}}, all(3), nil, conv(ops.Conv2DParams{Stride: 2, Pad: 1}, true)},
		{"conv2d_3x3_d2_g2", [][]int{{1, 4, 7, 7}, {6, 2, 3, 3}}, all(2), nil, conv(ops.Conv2DParams{Pad: 2, Dilation: 2, Groups: 2}, false)},
		{"conv2d_1x1", [][]int{{2, 5, 3, 4}, {3, 5, 1, 1}, {3}}, all(3), nil, conv(ops.Conv2DParams{}, true)},
		{"batch_norm_train", [][]int{{3, 2, 3, 2}, {2}, {2}}, all(3), nil, bn(true)},
		{"batch_norm_eval", [][]int{{2, 3, 2, 2}, {3}, {3}}, all(3), nil, bn(false)},
		{"batch_norm_residual_relu_train", [][]int{{3, 2, 3, 2}, {2}, {2}, {3, 2, 3, 2}}, all(4), bnActInit, bnAct(true)},
		{"batch_norm_residual_relu_eval", [][]int{{2, 2, 2, 2}, {2}, {2}, {2, 2, 2, 2}}, all(4), bnActInit, bnAct(false)},
		{"relu", [][]int{{2, 3, 2, 2}}, all(1), spread, unary(ops.ReLU)},
		{"sigmoid", [][]int{{2, 3, 2, 2}}, all(1), nil, unary(ops.Sigmoid)},
		{"abs", [][]int{{2, 3, 2, 2}}, all(1), spread, unary(ops.Abs)},
		{"neg", [][]int{{1, 2, 2, 3}}, all(1), nil, unary(ops.Neg)},
		{"add", [][]int{{2, 2, 2, 3}, {2, 2, 2, 3}}, all(2), nil, binary(ops.Add)},
		{"sub", [][]int{{2, 2, 2, 3}, {2, 2, 2, 3}}, all(2), nil, binary(ops.Sub)},
		{"mul", [][]int{{2, 2, 2, 3}, {2, 2, 2, 3}}, all(2), nil, binary(ops.Mul)},
		{"div", [][]int{{2, 2, 2, 3}, {2, 2, 2, 3}}, all(2), positive, binary(ops.Div)},
		{"scale", [][]int{{2, 2, 3, 1}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Scale(in[0], -1.5) }},
		{"max_pool_3s2p1", [][]int{{1, 2, 7, 6}}, all(1), spread, pool(ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1}, true)},
		{"avg_pool_3s1p1_include_pad", [][]int{{1, 2, 5, 4}}, all(1), nil, pool(ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1, CountIncludePad: true}, false)},
		{"avg_pool_2s2_ceil", [][]int{{2, 1, 5, 5}}, all(1), nil, pool(ops.PoolParams{Kernel: 2, Stride: 2, CeilMode: true}, false)},
		{"resize_up_ac0", [][]int{{1, 2, 3, 4}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.ResizeBilinear(in[0], 7, 5, false) }},
		{"resize_down_ac1", [][]int{{1, 2, 7, 6}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.ResizeBilinear(in[0], 3, 4, true) }},
		{"resize_sum", [][]int{{2, 3, 4, 3}, {2, 3, 7, 6}, {2, 3, 9, 8}, {2, 3, 2, 2}}, all(4), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.ResizeSum(in, 7, 6, false, false) // input 1 is already 7x6
		}},
		{"concat_one_input_thrice", [][]int{{2, 1, 3, 2}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			s := t.Sigmoid(in[0]) // expand_as as Attention U-Net writes it: one map, several views of one gradient
			return t.Concat(s, s, s)
		}},
		{"concat", [][]int{{2, 1, 2, 3}, {2, 3, 2, 3}}, all(2), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Concat(in[1], in[0]) }},
		{"split_partial_use", [][]int{{2, 5, 2, 2}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			p := t.Split(in[0], 2, 1, 2)
			return t.Mul(p[0], p[2]) // the middle part gets a zero gradient
		}},
		{"contiguous_of_slice", [][]int{{3, 4, 2, 1}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.Contiguous(t.Split(in[0], 1, 3)[1])
		}},
		// Gradients handed to several inputs and written straight into a split's gradient buffer
		// (ops/grad_target.go), outputs written straight into a concatenation (Tape.NewConcat).
		{"add_same_input", [][]int{{2, 2, 2, 3}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Add(in[0], in[0]) }},
		{"add_shared_gradient_accumulated", [][]int{{2, 2, 2, 3}, {2, 2, 2, 3}}, all(2), spread, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			a := t.ReLU(in[0])
			s := t.Add(a, in[1]) // hands one gradient to a and in[1]
			return t.Add(t.Mul(s, s), t.Add(t.Mul(a, in[1]), t.Unary(ops.Abs, s)))
		}},
		{"conv2d_act_residual_relu", [][]int{{2, 3, 5, 4}, {4, 3, 3, 3}, {4}, {2, 4, 5, 4}}, all(4), awayFromKinks, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.Conv2DAct(in[0], in[1], in[2], ops.ConvAct{Residual: in[3], ReLU: true}, ops.Conv2DParams{Pad: 1})
		}},
		{"conv2d_act_s2_residual", [][]int{{2, 3, 5, 4}, {4, 3, 1, 1}, {2, 4, 3, 2}}, all(3), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.Conv2DAct(in[0], in[1], nil, ops.ConvAct{Residual: in[2]}, ops.Conv2DParams{Stride: 2})
		}},
		{"conv_input_used_twice", [][]int{{2, 3, 5, 4}, {4, 3, 3, 3}, {4, 3, 1, 1}}, all(3), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			s := t.Sigmoid(in[0]) // the second convolution adds its input gradient to the first's
			a := t.Conv2D(s, in[1], nil, ops.Conv2DParams{Stride: 2, Pad: 1})
			b := t.Conv2D(s, in[2], nil, ops.Conv2DParams{Stride: 2})
			return t.Add(t.Mul(a, b), t.Sigmoid(b))
		}},
		{"res2net_split_concat", [][]int{{2, 8, 4, 3}, {2, 2, 3, 3}, {2, 2, 3, 3}, {2, 2, 3, 3}}, all(4), nil, res2netBranches(false)},
		{"res2net_split_concat_stage", [][]int{{2, 8, 5, 4}, {2, 2, 3, 3}, {2, 2, 3, 3}, {2, 2, 3, 3}}, all(4), nil, res2netBranches(true)},
		{"sum_all", [][]int{{2, 3, 2, 2}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Sum(in[0], ops.AxesAll) }},
		{"sum_nhw", [][]int{{2, 3, 2, 2}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Sum(in[0], ops.AxesNHW) }},
		{"mean_hw", [][]int{{2, 3, 2, 2}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Mean(in[0], ops.AxesHW) }},
		{"bce_with_logits", [][]int{{2, 1, 3, 3}, {2, 1, 3, 3}}, []bool{true, false}, binaryMask, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.BCEWithLogits(in[0], in[1]) }},
		{"structure_loss_official", [][]int{{2, 1, 9, 8}, {2, 1, 9, 8}}, []bool{true, false}, binaryMask, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.StructureLoss(in[0], in[1], ops.StructureLossOfficial)
		}},
		{"structure_loss_weighted", [][]int{{2, 1, 9, 8}, {2, 1, 9, 8}}, []bool{true, false}, binaryMask, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.StructureLoss(in[0], in[1], ops.StructureLossWeighted)
		}},
		// Transformer ops (ops.TransformerKernels) and their compositions.
		{"matmul_nn", [][]int{{2, 3, 4}, {2, 4, 5}}, all(2), nil, matmul(ops.MatMulParams{})},
		{"matmul_tt", [][]int{{2, 4, 3}, {2, 5, 4}}, all(2), nil, matmul(ops.MatMulParams{TransA: true, TransB: true})},
		{"matmul_shared_b_t", [][]int{{3, 2, 4}, {5, 4}}, all(2), nil, matmul(ops.MatMulParams{TransB: true})},
		{"matmul_shared_a_t", [][]int{{4, 3}, {2, 4, 5}}, all(2), nil, matmul(ops.MatMulParams{TransA: true})},
		{"softmax", [][]int{{2, 3, 5}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Softmax(in[0]) }},
		{"layer_norm", [][]int{{2, 3, 6}, {6}, {6}}, all(3), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.LayerNorm(in[0], in[1], in[2], ops.LayerNormParams{Eps: 1e-5})
		}},
		{"gelu", [][]int{{2, 3, 4}}, all(1), nil, unary(ops.GELU)},
		{"permute_0231", [][]int{{2, 3, 2, 4}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Permute(in[0], 0, 2, 3, 1) }},
		{"reshape_of_slice", [][]int{{2, 4, 3, 1}}, all(1), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			return t.Reshape(t.Split(in[0], 1, 3)[1], 2, 9)
		}},
		{"add_broadcast", [][]int{{2, 3, 4}, {3, 4}}, all(2), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.AddBroadcast(in[0], in[1]) }},
		{"linear", [][]int{{2, 3, 5}, {4, 5}, {4}}, all(3), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor { return t.Linear(in[0], in[1], in[2]) }},
		{"attention", [][]int{{2, 4, 3}, {2, 5, 3}, {2, 5, 3}}, all(3), nil, func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
			// softmax(q·kᵀ/√d)·v, the core the attention modules compose.
			p := t.Softmax(t.Scale(t.MatMul(in[0], in[1], ops.MatMulParams{TransB: true}), 0.577))
			return t.MatMul(p, in[2], ops.MatMulParams{})
		}},
	}
}

// GradCheck compares every op's backward pass on b with central finite differences of its
// forward pass, for the loss Σ y·r with a fixed random r (computed in float64 on the host), and
// fused ops with the ops they fuse.
func GradCheck(t *testing.T, b ops.Backend) {
	t.Run("batch_norm_act_vs_unfused", func(t *testing.T) { checkFusedBatchNorm(t, b) })
	t.Run("conv2d_batch_norm_act_vs_unfused", func(t *testing.T) { checkFusedConvBatchNorm(t, b) })
	for _, gc := range gradCases() {
		t.Run(gc.name, func(t *testing.T) {
			rng := tensor.NewRNG(11, 0)
			vals := make([][]float32, len(gc.shapes))
			for i, s := range gc.shapes {
				vals[i] = make([]float32, tensor.Shape(s).Numel())
				if gc.init != nil {
					gc.init(rng, i, vals[i])
				} else {
					for j := range vals[i] {
						vals[i][j] = float32(rng.Normal())
					}
				}
			}
			// forward returns the outputs for the given input values (no gradient recording).
			var r []float64
			forward := func() []float32 {
				tp := ops.NewTape(b)
				tp.SetNoGrad(true)
				defer tp.Release()
				in := make([]*tensor.Tensor, len(vals))
				for i, v := range vals {
					in[i] = upload(t, b, v, gc.shapes[i])
				}
				y := gc.f(tp, in)
				if tp.Err() != nil {
					t.Fatal(tp.Err())
				}
				return download(t, b, y)
			}
			lossOf := func(y []float32) float64 {
				var s float64
				for i, v := range y {
					s += float64(v) * r[i]
				}
				return s
			}
			y0 := forward()
			r = make([]float64, len(y0))
			for i := range r {
				r[i] = rng.Normal()
			}

			// Analytic gradients through the tape: Σ y·r is Sum(Mul(y, r)).
			tp := ops.NewTape(b)
			in := make([]*tensor.Tensor, len(vals))
			for i, v := range vals {
				in[i] = upload(t, b, v, gc.shapes[i]).SetRequiresGrad(gc.grad[i])
			}
			y := gc.f(tp, in)
			rt := make([]float32, len(r))
			for i, v := range r {
				rt[i] = float32(v)
			}
			backwardWith(t, tp, y, upload(t, b, rt, y.Shape()))
			tp.Release()

			for i := range vals {
				if !gc.grad[i] {
					continue
				}
				if in[i].Grad == nil {
					t.Fatalf("input %d: no gradient", i)
				}
				analytic := download(t, b, in[i].Grad)
				numeric := make([]float32, len(vals[i]))
				for j := range vals[i] {
					orig := vals[i][j]
					vals[i][j] = orig + fdEps
					up := lossOf(forward())
					vals[i][j] = orig - fdEps
					down := lossOf(forward())
					vals[i][j] = orig
					numeric[j] = float32((up - down) / (2 * fdEps))
				}
				if e := RelErr(analytic, numeric); e > fdTol || math.IsNaN(e) {
					t.Errorf("input %d: analytic vs numeric gradient relative error %.3g > %g\nanalytic %v\nnumeric  %v", i, e, fdTol, head(analytic), head(numeric))
				}
			}
		})
	}
}

// checkFusedBatchNorm compares BatchNorm2DAct, its output and every gradient, with the ops it
// fuses (BatchNorm2D, Add, ReLU) on the same backend, for each tail and mode, with the output
// used twice. The values are
// random, so the ReLU masks about half the units, one by one; both compute the same float32
// expressions, so they agree to rounding.
func checkFusedBatchNorm(t *testing.T, b ops.Backend) {
	const tol = 1e-5
	shape := []int{3, 4, 5, 6}
	for _, tc := range []struct {
		name                     string
		residual, relu, training bool
	}{
		{"relu_train", false, true, true},
		{"residual_train", true, false, true},
		{"residual_relu_train", true, true, true},
		{"relu_eval", false, true, false},
		{"residual_relu_eval", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := tensor.NewRNG(5, 0)
			normal := func(n int, scale, shift float64) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(scale*rng.Normal() + shift)
				}
				return v
			}
			c, n := shape[1], tensor.Shape(shape).Numel()
			xv, gv, bv, rv := normal(n, 1, 0.5), normal(c, 0.3, 1), normal(c, 0.3, 0), normal(n, 1, 0)
			rmv, rvv, gyv := normal(c, 0.2, 0), normal(c, 0.2, 1), normal(n, 1, 0)
			run := func(fused bool) map[string][]float32 {
				tp := ops.NewTape(b)
				defer tp.Release()
				x := upload(t, b, xv, shape).SetRequiresGrad(true)
				gamma := upload(t, b, gv, []int{c}).SetRequiresGrad(true)
				beta := upload(t, b, bv, []int{c}).SetRequiresGrad(true)
				rm, rvar := upload(t, b, rmv, []int{c}), upload(t, b, rvv, []int{c})
				var res *tensor.Tensor
				if tc.residual {
					res = upload(t, b, rv, shape).SetRequiresGrad(true)
				}
				var y *tensor.Tensor
				if fused {
					y = tp.BatchNorm2DAct(x, gamma, beta, rm, rvar, res, tc.relu, tc.training, ops.DefaultBatchNorm)
				} else {
					y = tp.BatchNorm2D(x, gamma, beta, rm, rvar, tc.training, ops.DefaultBatchNorm)
					if res != nil {
						y = tp.Add(y, res)
					}
					if tc.relu {
						y = tp.ReLU(y)
					}
				}
				// y used twice: the fused op's rule adds the second gradient itself
				// (BatchNormGrad's gy2), the unfused ops' tape sums the two.
				y = tp.Add(y, tp.Sigmoid(y))
				if tp.Err() != nil {
					t.Fatal(tp.Err())
				}
				out := map[string][]float32{"y": download(t, b, y)}
				backwardWith(t, tp, y, upload(t, b, gyv, shape))
				out["running_mean"], out["running_var"] = download(t, b, rm), download(t, b, rvar)
				out["grad x"], out["grad gamma"], out["grad beta"] = download(t, b, x.Grad), download(t, b, gamma.Grad), download(t, b, beta.Grad)
				if res != nil {
					out["grad residual"] = download(t, b, res.Grad)
				}
				return out
			}
			want, got := run(false), run(true)
			for name, w := range want {
				if e := RelErr(got[name], w); e > tol || math.IsNaN(e) {
					t.Errorf("%s: fused vs unfused relative error %.3g > %g", name, e, tol)
				}
			}
		})
	}
}

// checkFusedConvBatchNorm compares Conv2DBatchNormAct (the batch statistics gathered by the
// convolution) with Conv2D then BatchNorm2DAct on the same backend: output, running statistics
// and every gradient, with the output written into a concatenation's slice and used twice, as in
// Res2Net. The statistics are summed in another order on a GPU, so the two agree to rounding.
func checkFusedConvBatchNorm(t *testing.T, b ops.Backend) {
	const tol = 1e-5
	xs, ws := []int{3, 4, 9, 7}, []int{5, 4, 3, 3}
	cp := ops.Conv2DParams{Stride: 2, Pad: 1}.Norm()
	ys := []int{3, 5, cp.OutSize(9, 3), cp.OutSize(7, 3)}
	for _, tc := range []struct {
		name                          string
		residual, relu, training, sum bool
	}{
		{"train", false, false, true, false},
		{"relu_train", false, true, true, false},
		{"residual_relu_train", true, true, true, false},
		{"relu_eval", false, true, false, false},
		// The input as a sum of two (Res2Net's sp + spx[i]), added by the convolution.
		{"sum_relu_train", false, true, true, true},
		{"sum_relu_eval", false, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := tensor.NewRNG(7, 0)
			normal := func(n int, scale, shift float64) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(scale*rng.Normal() + shift)
				}
				return v
			}
			c, n := ys[1], tensor.Shape(ys).Numel()
			xv, wv := normal(tensor.Shape(xs).Numel(), 1, 1), normal(tensor.Shape(ws).Numel(), 0.3, 0)
			x2v := normal(tensor.Shape(xs).Numel(), 1, 0)
			gv, bv, rv := normal(c, 0.3, 1), normal(c, 0.3, 0), normal(n, 1, 0)
			rmv, rvv, gyv := normal(c, 0.2, 0), normal(c, 0.2, 1), normal(2*n, 1, 0)
			run := func(fused bool) map[string][]float32 {
				tp := ops.NewTape(b)
				defer tp.Release()
				x := upload(t, b, xv, xs).SetRequiresGrad(true)
				w := upload(t, b, wv, ws).SetRequiresGrad(true)
				gamma := upload(t, b, gv, []int{c}).SetRequiresGrad(true)
				beta := upload(t, b, bv, []int{c}).SetRequiresGrad(true)
				rm, rvar := upload(t, b, rmv, []int{c}), upload(t, b, rvv, []int{c})
				var res, x2 *tensor.Tensor
				if tc.residual {
					res = upload(t, b, rv, ys).SetRequiresGrad(true)
				}
				if tc.sum {
					x2 = upload(t, b, x2v, xs).SetRequiresGrad(true)
				}
				cat := tp.NewConcatNHW(ys[0], ys[2], ys[3], c, c)
				var h *tensor.Tensor
				if !fused {
					in := x
					if x2 != nil {
						in = tp.Add(x, x2)
					}
					h = tp.Conv2D(in, w, nil, cp)
				}
				y := cat.Into(0, func() *tensor.Tensor {
					if fused {
						return tp.Conv2DBatchNormAct(x, x2, w, nil, cp, gamma, beta, rm, rvar, res, tc.relu, tc.training, ops.DefaultBatchNorm)
					}
					return tp.BatchNorm2DAct(h, gamma, beta, rm, rvar, res, tc.relu, tc.training, ops.DefaultBatchNorm)
				})
				other := cat.Into(1, func() *tensor.Tensor { return tp.Sigmoid(y) }) // a second use of y
				out := tp.Concat(y, other)
				if tp.Err() != nil {
					t.Fatal(tp.Err())
				}
				got := map[string][]float32{"y": download(t, b, out)}
				backwardWith(t, tp, out, upload(t, b, gyv, []int{ys[0], 2 * c, ys[2], ys[3]}))
				got["running_mean"], got["running_var"] = download(t, b, rm), download(t, b, rvar)
				got["grad x"], got["grad w"] = download(t, b, x.Grad), download(t, b, w.Grad)
				got["grad gamma"], got["grad beta"] = download(t, b, gamma.Grad), download(t, b, beta.Grad)
				if res != nil {
					got["grad residual"] = download(t, b, res.Grad)
				}
				if x2 != nil {
					got["grad x2"] = download(t, b, x2.Grad)
				}
				return got
			}
			want, got := run(false), run(true)
			for name, w := range want {
				if e := RelErr(got[name], w); e > tol || math.IsNaN(e) {
					t.Errorf("%s: fused vs unfused relative error %.3g > %g", name, e, tol)
				}
			}
		})
	}
}

// res2netBranches is Res2NetCore on in[0] with the weights in[1..3] and a smooth activation
// (unlike ReLU); the input is used again by a residual add outside stage blocks.
func res2netBranches(stage bool) func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
	return func(t *ops.Tape, in []*tensor.Tensor) *tensor.Tensor {
		y := Res2NetCore(t, in[0], [3]*tensor.Tensor{in[1], in[2], in[3]}, Res2NetCoreOptions{Stage: stage, Act: (*ops.Tape).Sigmoid})
		if stage {
			return y
		}
		return t.Add(y, in[0])
	}
}
