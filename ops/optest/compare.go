package optest

import (
	"fmt"
	"math"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// tolCompare is the relative error (RelErr) allowed between two backends on one kernel: both
// compute in float32 and differ only in summation order (the CPU accumulates some sums in
// float64), which costs a few ulps of the largest value, far below 1e-5.
const tolCompare = 1e-5

// CompareBackends runs every kernel of ops.Backend on b and on ref with the same inputs and
// compares their outputs, forward and backward. Shapes are odd (not multiples of any tile size),
// many operands are channel slices of larger tensors (batch-strided views), convolutions cover
// stride, padding, dilation, groups and non-square kernels, and outputs start as NaN inside the
// written view (random outside it), so a kernel that skips an element or writes outside its view
// fails. Cases named large_* use tensors above 128 MiB, which backends with a small binding
// limit (lavapipe's maxStorageBufferRange) must process in slices; -short skips them.
func CompareBackends(t *testing.T, ref, b ops.Backend) {
	CompareBackendsMatching(t, ref, b, func(string) bool { return true })
}

// CompareBackendsMatching runs the CompareBackends cases whose names match.
func CompareBackendsMatching(t *testing.T, ref, b ops.Backend, match func(name string) bool) {
	for _, c := range compareCases() {
		if !match(c.name) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			if c.large && testing.Short() {
				t.Skip("tensor above 128 MiB: skipped under -short")
			}
			if c.transformer {
				for _, be := range []ops.Backend{ref, b} {
					if _, ok := be.(ops.TransformerKernels); !ok {
						t.Skipf("%s does not implement ops.TransformerKernels", be.Name())
					}
				}
			}
			want := runCase(t, ref, c)
			got := runCase(t, b, c)
			tol := c.tol
			if tol == 0 {
				tol = tolCompare
			}
			for i := range want {
				if e := RelErr(got[i].v, want[i].v); e > tol || math.IsNaN(e) {
					t.Errorf("%s: %s vs %s relative error %.3g > %g%s", got[i].name, b.Name(), ref.Name(), e, tol, firstDiff(got[i].v, want[i].v))
				}
			}
		})
	}
}

// firstDiff describes the largest difference, for failure messages.
func firstDiff(got, want []float32) string {
	if len(got) != len(want) {
		return fmt.Sprintf(" (%d values vs %d)", len(got), len(want))
	}
	worst, at := -1.0, 0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	return fmt.Sprintf(" (worst at %d of %d: got %v want %v)", at, len(want), got[at], want[at])
}

// compareCase is one kernel call (or a few) on one configuration.
type compareCase struct {
	name        string
	tol         float64 // 0: tolCompare
	large       bool
	transformer bool // needs ops.TransformerKernels
	run         func(e *env) error
}

// env supplies one backend with deterministic inputs and collects the tensors to compare.
type env struct {
	tb    testing.TB
	b     ops.Backend
	rng   *tensor.RNG
	outs  []result
	owned []tensor.Storage
	// parents maps a registered view to the parent tensor that is compared in its place.
	parents map[*tensor.Tensor]*tensor.Tensor
}

type result struct {
	name string
	t    *tensor.Tensor
	v    []float32
}

func runCase(tb testing.TB, b ops.Backend, c compareCase) []result {
	tb.Helper()
	e := &env{tb: tb, b: b, rng: tensor.NewRNG(2024, 7), parents: map[*tensor.Tensor]*tensor.Tensor{}}
	defer func() {
		for _, s := range e.owned {
			b.Release(s)
		}
	}()
	if err := c.run(e); err != nil {
		tb.Fatalf("%s: %v", b.Name(), err)
	}
	for i := range e.outs {
		v, err := b.Download(e.outs[i].t)
		if err != nil {
			tb.Fatalf("%s: read %s: %v", b.Name(), e.outs[i].name, err)
		}
		e.outs[i].v = v
	}
	return e.outs
}

// tensor uploads values to a new tensor of the backend.
func (e *env) tensor(v []float32, shape ...int) *tensor.Tensor {
	e.tb.Helper()
	x, err := ops.FromHost(e.b, v, shape...)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.owned = append(e.owned, x.Storage())
	return x
}

func (e *env) normal(n int, scale, shift float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(e.rng.Normal()*scale + shift)
	}
	return v
}

// in is a dense N(0,1) input.
func (e *env) in(shape ...int) *tensor.Tensor {
	return e.tensor(e.normal(tensor.Shape(shape).Numel(), 1, 0), shape...)
}

// inFn is a dense input with values from f.
func (e *env) inFn(f func(r *tensor.RNG) float32, shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = f(e.rng)
	}
	return e.tensor(v, shape...)
}

// viewOf is channels [1, 1+C) of a random [N C+3 H W] parent: a batch-strided view whose items
// are not contiguous with each other.
func (e *env) viewOf(shape []int, fill func(inView bool) float32) (view, parent *tensor.Tensor) {
	e.tb.Helper()
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	ps := []int{n, c + 3, h, w}
	v := make([]float32, tensor.Shape(ps).Numel())
	for i := range v {
		ch := i / (h * w) % (c + 3)
		v[i] = fill(ch >= 1 && ch < 1+c)
	}
	parent = e.tensor(v, ps...)
	view, err := parent.Narrow(1, 1, c)
	if err != nil {
		e.tb.Fatal(err)
	}
	return view, parent
}

// inView is a random N(0,1) input that is a channel slice.
func (e *env) inView(shape ...int) *tensor.Tensor {
	v, _ := e.viewOf(shape, func(bool) float32 { return float32(e.rng.Normal()) })
	return v
}

// out is a dense output, NaN until written, compared after the run.
func (e *env) out(name string, shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = float32(math.NaN())
	}
	x := e.tensor(v, shape...)
	e.check(name, x)
	return x
}

// outView is an output that is a channel slice: NaN inside the view, random outside; the whole
// parent is compared, so writes outside the view are caught too.
func (e *env) outView(name string, shape ...int) *tensor.Tensor {
	view, parent := e.viewOf(shape, func(in bool) float32 {
		if in {
			return float32(math.NaN())
		}
		return float32(e.rng.Normal())
	})
	e.check(name, parent)
	return view
}

// state is a dense random tensor that a kernel updates in place, compared after the run.
func (e *env) state(name string, f func(r *tensor.RNG) float32, shape ...int) *tensor.Tensor {
	x := e.inFn(f, shape...)
	e.check(name, x)
	return x
}

// check registers a tensor to compare.
func (e *env) check(name string, x *tensor.Tensor) {
	e.outs = append(e.outs, result{name: name, t: x})
}

func normal(r *tensor.RNG) float32   { return float32(r.Normal()) }
func positive(r *tensor.RNG) float32 { return float32(0.5 + 2*r.Float64()) }

func compareCases() []compareCase {
	var cs []compareCase
	add := func(c compareCase) { cs = append(cs, c) }

	// Elementwise.
	add(compareCase{name: "fill_view", run: func(e *env) error { return e.b.Fill(e.outView("dst", 3, 5, 7, 9), 2.5) }})
	add(compareCase{name: "copy_view_to_dense", run: func(e *env) error {
		return e.b.Copy(e.out("dst", 3, 5, 7, 9), e.inView(3, 5, 7, 9))
	}})
	add(compareCase{name: "copy_dense_to_view", run: func(e *env) error {
		return e.b.Copy(e.outView("dst", 3, 5, 7, 9), e.in(3, 5, 7, 9))
	}})
	for _, op := range []ops.UnaryOp{ops.ReLU, ops.Sigmoid, ops.Abs, ops.Neg, ops.GELU} {
		add(compareCase{name: "unary_" + op.String(), run: func(e *env) error {
			x := e.inFn(func(r *tensor.RNG) float32 { return float32(8 * r.Normal()) }, 2, 5, 7, 9)
			return e.b.Unary(op, e.outView("dst", 2, 5, 7, 9), x)
		}})
		add(compareCase{name: "unary_" + op.String() + "_view_in_place", run: func(e *env) error {
			x := e.inView(2, 5, 7, 9)
			e.check("x", x)
			return e.b.Unary(op, x, x)
		}})
		add(compareCase{name: "unary_grad_" + op.String(), run: func(e *env) error {
			gy, x := e.inView(2, 5, 7, 9), e.in(2, 5, 7, 9)
			y := e.out("y", 2, 5, 7, 9)
			if err := e.b.Unary(op, y, x); err != nil {
				return err
			}
			return e.b.UnaryGrad(op, e.outView("dst", 2, 5, 7, 9), gy, x, y)
		}})
	}
	for _, op := range []ops.BinaryOp{ops.Add, ops.Sub, ops.Mul, ops.Div} {
		add(compareCase{name: "binary_" + op.String(), run: func(e *env) error {
			a, b := e.inView(3, 4, 5, 11), e.inFn(positive, 3, 4, 5, 11)
			return e.b.Binary(op, e.out("dst", 3, 4, 5, 11), a, b)
		}})
		add(compareCase{name: "binary_" + op.String() + "_in_place", run: func(e *env) error {
			a := e.state("a", normal, 3, 4, 5, 11)
			return e.b.Binary(op, a, a, e.inFn(positive, 3, 4, 5, 11))
		}})
	}
	add(compareCase{name: "axpby_beta0_nan_dst", run: func(e *env) error {
		return e.b.Axpby(e.out("dst", 3, 5, 7, 9), e.inView(3, 5, 7, 9), -1.5, 0)
	}})
	add(compareCase{name: "axpby_beta", run: func(e *env) error {
		return e.b.Axpby(e.state("dst", normal, 3, 5, 7, 9), e.inView(3, 5, 7, 9), 0.7, -0.3)
	}})
	add(compareCase{name: "axpby_in_place", run: func(e *env) error {
		x := e.state("x", normal, 2, 3, 9, 5)
		return e.b.Axpby(x, x, 2, 0)
	}})
	add(compareCase{name: "bce_with_logits", run: func(e *env) error {
		x := e.inFn(func(r *tensor.RNG) float32 { return float32(6 * r.Normal()) }, 2, 1, 17, 19)
		tg := e.inFn(func(r *tensor.RNG) float32 { return float32(r.Intn(3)) / 2 }, 2, 1, 17, 19)
		return e.b.BCEWithLogits(e.out("dst", 2, 1, 17, 19), x, tg)
	}})
	add(compareCase{name: "bce_with_logits_grad", run: func(e *env) error {
		x := e.inFn(func(r *tensor.RNG) float32 { return float32(6 * r.Normal()) }, 2, 1, 17, 19)
		tg := e.inFn(func(r *tensor.RNG) float32 { return float32(r.Intn(3)) / 2 }, 2, 1, 17, 19)
		return e.b.BCEWithLogitsGrad(e.outView("gx", 2, 1, 17, 19), e.in(2, 1, 17, 19), x, tg)
	}})

	// Reductions and broadcasts.
	for _, axes := range []ops.Axes{ops.AxesAll, ops.AxesNHW, ops.AxesHW} {
		dstShape := map[ops.Axes][]int{ops.AxesAll: {1}, ops.AxesNHW: {5}, ops.AxesHW: {3, 5}}[axes]
		add(compareCase{name: "sum_" + axes.String() + "_view", run: func(e *env) error {
			return e.b.Sum(e.out("dst", dstShape...), e.inView(3, 5, 7, 9), axes)
		}})
		big := map[ops.Axes][]int{ops.AxesAll: {1}, ops.AxesNHW: {3}, ops.AxesHW: {2, 3}}[axes]
		add(compareCase{name: "sum_" + axes.String() + "_many_chunks", run: func(e *env) error {
			x := e.inFn(func(r *tensor.RNG) float32 { return float32(r.Normal() + 0.5) }, 2, 3, 151, 133)
			return e.b.Sum(e.out("dst", big...), x, axes)
		}})
		add(compareCase{name: "expand_" + axes.String(), run: func(e *env) error {
			return e.b.Expand(e.outView("dst", 3, 5, 7, 9), e.in(dstShape...), axes, 0.25)
		}})
	}

	// Convolution: forward and both gradients per configuration.
	type convCfg struct {
		name       string
		x, w       []int
		p          ops.Conv2DParams
		bias, view bool
	}
	for _, c := range []convCfg{
		{"3x3_s1_p1_bias", []int{2, 5, 13, 11}, []int{7, 5, 3, 3}, ops.Conv2DParams{Pad: 1}, true, false},
		{"3x3_s2_p1", []int{3, 4, 15, 12}, []int{6, 4, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}, false, false},
		{"7x7_s2_p3_bias", []int{2, 3, 23, 19}, []int{8, 3, 7, 7}, ops.Conv2DParams{Stride: 2, Pad: 3}, true, false},
		{"1x1_s1_bias", []int{2, 37, 9, 7}, []int{70, 37, 1, 1}, ops.Conv2DParams{}, true, false},
		{"1x1_s2", []int{2, 9, 11, 13}, []int{5, 9, 1, 1}, ops.Conv2DParams{Stride: 2}, false, false},
		{"1x1_s1_p1", []int{1, 3, 5, 6}, []int{4, 3, 1, 1}, ops.Conv2DParams{Pad: 1}, false, false},
		{"3x3_d2_p2_g2", []int{2, 6, 11, 10}, []int{4, 3, 3, 3}, ops.Conv2DParams{Pad: 2, Dilation: 2, Groups: 2}, false, false},
		{"3x3_depthwise_s2", []int{2, 5, 9, 8}, []int{5, 1, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1, Groups: 5}, true, false},
		{"5x3_s1_p1", []int{2, 3, 9, 8}, []int{4, 3, 5, 3}, ops.Conv2DParams{Pad: 1}, false, false},
		{"3x3_s1_p1_wide", []int{3, 37, 19, 17}, []int{45, 37, 3, 3}, ops.Conv2DParams{Pad: 1}, true, false},
		{"3x3_s2_p1_views", []int{2, 5, 9, 8}, []int{6, 5, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}, true, true},
		{"1x1_s1_views", []int{2, 5, 9, 8}, []int{3, 5, 1, 1}, ops.Conv2DParams{}, false, true},
		// Long reductions over few weights: the weight gradient splits K (ops/vk: summed in the
		// kernel by the last workgroup of each tile).
		{"3x3_s1_p1_long_k", []int{2, 4, 40, 37}, []int{3, 4, 3, 3}, ops.Conv2DParams{Pad: 1}, false, false},
		{"1x1_s1_long_k_views", []int{3, 6, 41, 40}, []int{5, 6, 1, 1}, ops.Conv2DParams{}, true, true},
	} {
		p := c.p.Norm()
		oh, ow := p.OutSize(c.x[2], c.w[2]), p.OutSize(c.x[3], c.w[3])
		y := []int{c.x[0], c.w[0], oh, ow}
		input := func(e *env, shape []int) *tensor.Tensor {
			if c.view {
				return e.inView(shape...)
			}
			return e.in(shape...)
		}
		output := func(e *env, name string, shape []int) *tensor.Tensor {
			if c.view {
				return e.outView(name, shape...)
			}
			return e.out(name, shape...)
		}
		add(compareCase{name: "conv2d_" + c.name, run: func(e *env) error {
			x, w := input(e, c.x), e.in(c.w...)
			var bias *tensor.Tensor
			if c.bias {
				bias = e.in(c.w[0])
			}
			return e.b.Conv2D(output(e, "y", y), x, w, bias, p)
		}})
		add(compareCase{name: "conv2d_grad_input_" + c.name, run: func(e *env) error {
			gy, w := input(e, y), e.in(c.w...)
			return e.b.Conv2DGradInput(output(e, "gx", c.x), gy, w, p)
		}})
		add(compareCase{name: "conv2d_grad_input_add_" + c.name, run: func(e *env) error {
			gy, w := input(e, y), e.in(c.w...)
			// The destination holds an earlier gradient, which the kernel adds to.
			var gx *tensor.Tensor
			if c.view {
				var parent *tensor.Tensor
				gx, parent = e.viewOf(c.x, func(bool) float32 { return float32(e.rng.Normal()) })
				e.check("gx", parent)
			} else {
				gx = e.state("gx", normal, c.x...)
			}
			return e.b.Conv2DGradInputAdd(gx, gy, w, p)
		}})
		add(compareCase{name: "conv2d_grad_weight_" + c.name, run: func(e *env) error {
			x, gy := input(e, c.x), input(e, y)
			return e.b.Conv2DGradWeight(e.out("gw", c.w...), x, gy, p)
		}})
	}

	// The fused epilogue (inference's folded conv → batch norm → add → ReLU) on every backend;
	// CompareConvAct also checks it against the unfused composition.
	for _, c := range convActCases {
		add(compareCase{name: "conv2d_act_" + c.name, run: func(e *env) error { return runConvAct(e, c, true) }})
	}
	// An output and residual of 151 MB: backends with a small binding limit run it in pieces.
	add(compareCase{name: "large_conv2d_act_1x1_res_relu", large: true, run: func(e *env) error {
		return runConvAct(e, convActCase{x: []int{9, 16, 512, 512}, w: []int{16, 16, 1, 1}, bias: true, res: true, relu: true}, true)
	}})

	// Weights that are slices of a larger weight along its input channels (CHNet's factorized
	// head): read in place, and their gradients written in place.
	for _, c := range []struct {
		name string
		x, w []int
		p    ops.Conv2DParams
	}{
		{"1x1_weight_slice", []int{2, 5, 9, 8}, []int{3, 5, 1, 1}, ops.Conv2DParams{}},
		{"3x3_s2_weight_slice", []int{2, 4, 11, 9}, []int{5, 4, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}},
		{"1x1_weight_slice_long_k", []int{3, 6, 41, 40}, []int{5, 6, 1, 1}, ops.Conv2DParams{}},
	} {
		p := c.p.Norm()
		y := []int{c.x[0], c.w[0], p.OutSize(c.x[2], c.w[2]), p.OutSize(c.x[3], c.w[3])}
		add(compareCase{name: "conv2d_" + c.name, run: func(e *env) error {
			return e.b.Conv2D(e.out("y", y...), e.in(c.x...), e.inView(c.w...), nil, p)
		}})
		add(compareCase{name: "conv2d_grad_input_" + c.name, run: func(e *env) error {
			return e.b.Conv2DGradInput(e.out("gx", c.x...), e.in(y...), e.inView(c.w...), p)
		}})
		add(compareCase{name: "conv2d_grad_weight_" + c.name, run: func(e *env) error {
			return e.b.Conv2DGradWeight(e.outView("gw", c.w...), e.in(c.x...), e.in(y...), p)
		}})
	}

	// Batch normalisation. The input's mean (3) is large against its spread, as after a ReLU,
	// which a one-pass variance in float32 would get wrong.
	bnIn := func(e *env, shape ...int) *tensor.Tensor {
		v, _ := e.viewOf(shape, func(bool) float32 { return float32(3 + 0.5*e.rng.Normal()) })
		return v
	}
	// Fused tails: none, ReLU, residual add then ReLU (a ResNet block's end). The residual is a
	// strided view, as channel slices of a concatenation are.
	type bnTail struct {
		name           string
		residual, relu bool
	}
	tails := []bnTail{{"", false, false}, {"_relu", false, true}, {"_residual_relu", true, true}}
	residualOf := func(e *env, tl bnTail, shape []int) *tensor.Tensor {
		if !tl.residual {
			return nil
		}
		return e.inView(shape...)
	}
	for _, shape := range [][]int{{3, 5, 7, 6}, {2, 3, 150, 131}} {
		sfx := fmt.Sprintf("_%dx%dx%dx%d", shape[0], shape[1], shape[2], shape[3])
		c := shape[1]
		for _, tl := range tails {
			add(compareCase{name: "batch_norm_train" + tl.name + sfx, run: func(e *env) error {
				x := bnIn(e, shape...)
				gamma, beta := e.in(c), e.in(c)
				rm, rv := e.state("running_mean", normal, c), e.state("running_var", positive, c)
				mean, inv := e.out("mean", c), e.out("inv_std", c)
				res := residualOf(e, tl, shape)
				return e.b.BatchNormTrain(e.outView("y", shape...), mean, inv, x, gamma, beta, rm, rv, res, tl.relu, ops.DefaultBatchNorm)
			}})
			// second: a second incoming gradient (an output used twice), a strided view too.
			for _, v := range []struct {
				train  bool
				second string
			}{{true, ""}, {false, ""}, {true, "_second"}, {false, "_second"}} {
				train := v.train
				add(compareCase{name: fmt.Sprintf("batch_norm_grad%s%s_train_%v%s", tl.name, v.second, train, sfx), run: func(e *env) error {
					x, gy := bnIn(e, shape...), e.inView(shape...)
					var gy2 *tensor.Tensor
					if v.second != "" {
						gy2 = e.inView(shape...)
					}
					gamma := e.in(c)
					mean := e.inFn(func(r *tensor.RNG) float32 { return float32(3 + 0.1*r.Normal()) }, c)
					inv := e.inFn(func(r *tensor.RNG) float32 { return float32(1.5 + 0.5*r.Float64()) }, c)
					var y, gr *tensor.Tensor
					if tl.relu {
						// The forward output: ReLU's zeros and positive values.
						y = e.inFn(func(r *tensor.RNG) float32 { return float32(max(r.Normal(), 0)) }, shape...)
					}
					if tl.residual {
						gr = e.outView("gresidual", shape...)
					}
					return e.b.BatchNormGrad(e.outView("gx", shape...), e.out("ggamma", c), e.out("gbeta", c), gr, gy, gy2, x, y, gamma, mean, inv, train)
				}})
			}
		}
	}
	// A convolution with the batch statistics of its output (the training step's conv → BN):
	// several row blocks and column tiles of every tile size, strided and 1x1, views in and
	// out, inputs whose outputs' mean is large against their spread; groups fall back.
	for _, c := range []struct {
		name string
		x, w []int
		p    ops.Conv2DParams
	}{
		{"3x3_p1", []int{3, 5, 13, 11}, []int{37, 5, 3, 3}, ops.Conv2DParams{Pad: 1}},
		{"3x3_s2p1", []int{3, 4, 15, 13}, []int{6, 4, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}},
		{"7x7_s2p3", []int{2, 3, 23, 21}, []int{9, 3, 7, 7}, ops.Conv2DParams{Stride: 2, Pad: 3}},
		{"1x1", []int{2, 7, 9, 10}, []int{33, 7, 1, 1}, ops.Conv2DParams{}},
		{"1x1_s2", []int{3, 6, 9, 11}, []int{70, 6, 1, 1}, ops.Conv2DParams{Stride: 2}},
		{"1x1_one_pixel", []int{5, 3, 1, 1}, []int{4, 3, 1, 1}, ops.Conv2DParams{}},
		{"grouped", []int{2, 6, 7, 9}, []int{4, 3, 3, 3}, ops.Conv2DParams{Pad: 1, Groups: 2}},
	} {
		p := c.p.Norm()
		y := []int{c.x[0], c.w[0], p.OutSize(c.x[2], c.w[2]), p.OutSize(c.x[3], c.w[3])}
		add(compareCase{name: "conv2d_batch_stats_" + c.name, run: func(e *env) error {
			x, _ := e.viewOf(c.x, func(bool) float32 { return float32(1 + 0.5*e.rng.Normal()) })
			rm, rv := e.state("running_mean", normal, c.w[0]), e.state("running_var", positive, c.w[0])
			return e.b.Conv2DBatchStats(e.outView("y", y...), e.out("mean", c.w[0]), e.out("inv_std", c.w[0]), x, nil, e.inView(c.w...), rm, rv, p, ops.DefaultBatchNorm)
		}})
		// The input as the sum of two, both channel slices (one layout: added as loaded), or
		// the second dense (another layout: added first).
		for _, dense := range []bool{false, true} {
			sfx := ""
			if dense {
				sfx = "_dense"
			}
			x2 := func(e *env) *tensor.Tensor {
				if dense {
					return e.in(c.x...)
				}
				return e.inView(c.x...)
			}
			add(compareCase{name: "conv2d_batch_stats_sum" + sfx + "_" + c.name, run: func(e *env) error {
				x, _ := e.viewOf(c.x, func(bool) float32 { return float32(1 + 0.5*e.rng.Normal()) })
				rm, rv := e.state("running_mean", normal, c.w[0]), e.state("running_var", positive, c.w[0])
				return e.b.Conv2DBatchStats(e.outView("y", y...), e.out("mean", c.w[0]), e.out("inv_std", c.w[0]), x, x2(e), e.inView(c.w...), rm, rv, p, ops.DefaultBatchNorm)
			}})
			add(compareCase{name: "conv2d_grad_weight_sum" + sfx + "_" + c.name, run: func(e *env) error {
				return e.b.Conv2DGradWeightSum(e.outView("gw", c.w...), e.inView(c.x...), x2(e), e.inView(y...), p)
			}})
		}
	}
	// The summed weight gradient over a long reduction: split-K, the partials summed in-kernel.
	for _, c := range []struct {
		name string
		x, w []int
	}{
		{"long_k", []int{6, 5, 41, 37}, []int{7, 5, 3, 3}},
	} {
		p := ops.Conv2DParams{Pad: 1}.Norm()
		y := []int{c.x[0], c.w[0], c.x[2], c.x[3]}
		add(compareCase{name: "conv2d_grad_weight_sum_" + c.name, run: func(e *env) error {
			return e.b.Conv2DGradWeightSum(e.outView("gw", c.w...), e.inView(c.x...), e.inView(c.x...), e.inView(y...), p)
		}})
	}
	for _, tl := range tails {
		add(compareCase{name: "batch_norm_apply" + tl.name, run: func(e *env) error {
			x := bnIn(e, 3, 5, 7, 6)
			mean := e.inFn(func(r *tensor.RNG) float32 { return float32(3 + 0.1*r.Normal()) }, 5)
			inv := e.inFn(func(r *tensor.RNG) float32 { return float32(1.5 + 0.5*r.Float64()) }, 5)
			gamma, beta := e.in(5), e.in(5)
			res := residualOf(e, tl, []int{3, 5, 7, 6})
			return e.b.BatchNormApply(e.outView("y", 3, 5, 7, 6), x, mean, inv, gamma, beta, res, tl.relu)
		}})
	}
	for _, tl := range tails {
		add(compareCase{name: "batch_norm_eval" + tl.name, run: func(e *env) error {
			x := bnIn(e, 3, 5, 7, 6)
			gamma, beta, rm, rv := e.in(5), e.in(5), e.in(5), e.inFn(positive, 5)
			res := residualOf(e, tl, []int{3, 5, 7, 6})
			return e.b.BatchNormEval(e.outView("y", 3, 5, 7, 6), x, gamma, beta, rm, rv, res, tl.relu, ops.DefaultBatchNorm)
		}})
	}

	// Pooling. ties draws from three values, so windows hold equal maxima and the first one
	// must win (PyTorch's rule).
	ties := func(r *tensor.RNG) float32 { return float32(r.Intn(3)) }
	for _, c := range []struct {
		name  string
		x     []int
		p     ops.PoolParams
		isMax bool
		vals  func(*tensor.RNG) float32
	}{
		{"max_pool_3s2p1", []int{2, 3, 13, 11}, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1}, true, normal},
		{"max_pool_3s2p1_ties", []int{2, 3, 13, 11}, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1}, true, ties},
		{"max_pool_2s2_ceil", []int{2, 3, 9, 7}, ops.PoolParams{Kernel: 2, Stride: 2, CeilMode: true}, true, normal},
		{"max_pool_3s1p1", []int{1, 2, 6, 7}, ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1}, true, ties},
		{"avg_pool_3s1p1_include_pad", []int{2, 3, 13, 11}, ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1, CountIncludePad: true}, false, normal},
		{"avg_pool_3s2p1_exclude_pad", []int{2, 3, 13, 11}, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1}, false, normal},
		{"avg_pool_2s2_ceil", []int{2, 3, 9, 7}, ops.PoolParams{Kernel: 2, Stride: 2, CeilMode: true}, false, normal},
		{"avg_pool_3s2p1_ceil_include_pad", []int{2, 3, 10, 9}, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1, CeilMode: true, CountIncludePad: true}, false, normal},
		{"avg_pool_31s1p15", []int{1, 2, 40, 37}, ops.PoolParams{Kernel: 31, Stride: 1, Pad: 15, CountIncludePad: true}, false, normal},
	} {
		p := c.p.Norm()
		y := []int{c.x[0], c.x[1], p.OutSize(c.x[2]), p.OutSize(c.x[3])}
		add(compareCase{name: c.name, run: func(e *env) error {
			x, _ := e.viewOf(c.x, func(bool) float32 { return c.vals(e.rng) })
			if c.isMax {
				return e.b.MaxPool2D(e.outView("y", y...), x, p)
			}
			return e.b.AvgPool2D(e.outView("y", y...), x, p)
		}})
		add(compareCase{name: c.name + "_grad", run: func(e *env) error {
			x, _ := e.viewOf(c.x, func(bool) float32 { return c.vals(e.rng) })
			gy := e.inView(y...)
			if c.isMax {
				return e.b.MaxPool2DGrad(e.outView("gx", c.x...), gy, x, p)
			}
			return e.b.AvgPool2DGrad(e.outView("gx", c.x...), gy, p)
		}})
	}

	// Bilinear resizing, up and down, both corner conventions, non-integer scales.
	for _, c := range []struct {
		name   string
		x      []int
		oh, ow int
		ac     bool
	}{
		{"resize_up_ac0", []int{2, 3, 5, 7}, 11, 13, false},
		{"resize_up_ac1", []int{2, 3, 5, 7}, 11, 13, true},
		{"resize_down_ac0", []int{2, 3, 17, 19}, 6, 5, false},
		{"resize_down_ac1", []int{2, 3, 17, 19}, 6, 5, true},
		{"resize_x8_ac0", []int{1, 2, 4, 3}, 32, 24, false},
		{"resize_to_1x1_ac1", []int{1, 2, 4, 3}, 1, 1, true},
	} {
		y := []int{c.x[0], c.x[1], c.oh, c.ow}
		add(compareCase{name: c.name, run: func(e *env) error {
			return e.b.ResizeBilinear(e.outView("y", y...), e.inView(c.x...), c.ac)
		}})
		add(compareCase{name: c.name + "_grad", run: func(e *env) error {
			return e.b.ResizeBilinearGrad(e.outView("gx", c.x...), e.inView(y...), c.ac)
		}})
		for _, relu := range []bool{false, true} {
			add(compareCase{name: fmt.Sprintf("%s_add_relu%v", c.name, relu), run: func(e *env) error {
				// The destination holds an earlier sum, in a view; both signs reach the ReLU.
				dst, parent := e.viewOf(y, func(bool) float32 { return float32(e.rng.Normal()) })
				e.check("y", parent)
				return e.b.ResizeBilinearAdd(dst, e.inView(c.x...), c.ac, relu)
			}})
		}
	}

	// Structure loss on a mask that is mostly binary with soft edges, as resized masks are.
	for _, form := range []ops.StructureLossForm{ops.StructureLossOfficial, ops.StructureLossWeighted} {
		mask := func(e *env, shape ...int) *tensor.Tensor {
			return e.inFn(func(r *tensor.RNG) float32 {
				if r.Intn(5) == 0 {
					return float32(r.Float64())
				}
				return float32(r.Intn(2))
			}, shape...)
		}
		logits := func(e *env, shape ...int) *tensor.Tensor {
			return e.inFn(func(r *tensor.RNG) float32 { return float32(3 * r.Normal()) }, shape...)
		}
		add(compareCase{name: "structure_loss_" + form.String(), run: func(e *env) error {
			return e.b.StructureLoss(e.out("loss", 1), logits(e, 3, 1, 37, 41), mask(e, 3, 1, 37, 41), form)
		}})
		add(compareCase{name: "structure_loss_grad_" + form.String(), run: func(e *env) error {
			gl := e.tensor([]float32{0.7}, 1)
			return e.b.StructureLossGrad(e.out("gx", 3, 1, 37, 41), gl, logits(e, 3, 1, 37, 41), mask(e, 3, 1, 37, 41), form)
		}})
	}

	// SGD.
	for _, p := range []ops.SGDParams{
		{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true},
		{LR: 0.1, Momentum: 0.9},
		{LR: 0.05, WeightDecay: 1e-3},
	} {
		add(compareCase{name: fmt.Sprintf("sgd_m%g_wd%g_nesterov%v", p.Momentum, p.WeightDecay, p.Nesterov), run: func(e *env) error {
			w, buf := e.state("param", normal, 7, 5, 3, 3), e.state("momentum", normal, 7, 5, 3, 3)
			return e.b.SGDStep(w, e.in(7, 5, 3, 3), buf, nil, nil, p)
		}})
	}
	// The learning rate read from a device tensor; the push-constant rate must be ignored.
	add(compareCase{name: "sgd_lr_from_tensor", run: func(e *env) error {
		w, buf := e.state("param", normal, 7, 5, 3, 3), e.state("momentum", normal, 7, 5, 3, 3)
		p := ops.SGDParams{LR: 1e6, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true, LRFrom: e.tensor([]float32{0.03}, 1)}
		return e.b.SGDStep(w, e.in(7, 5, 3, 3), buf, nil, nil, p)
	}})
	// Guarded SGD over a flat buffer: applied for a finite loss with the flag clear; skipped, with
	// the flag set, for a NaN or infinite loss or a flag already set.
	for _, c := range []struct {
		name       string
		loss, halt float32
	}{
		{"finite", 0.7, 0}, {"nan", float32(math.NaN()), 0}, {"inf", float32(math.Inf(-1)), 0}, {"halted", 0.7, 1},
	} {
		add(compareCase{name: "sgd_guarded_" + c.name, run: func(e *env) error {
			const n = 3001
			w, buf := e.state("param", normal, n), e.state("momentum", normal, n)
			halt := e.state("halt", func(*tensor.RNG) float32 { return c.halt }, 1)
			p := ops.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
			return e.b.SGDStep(w, e.in(n), buf, e.tensor([]float32{c.loss}, 1), halt, p)
		}})
	}
	// Dynamic loss scaling: SGD on scaled gradients (applied, or skipped while found is set), the
	// non-finite check (clean, NaN or infinity at the ends of a piece; found already set stays
	// set) and the scale update (overflow, an ordinary step, the step that reaches the interval).
	lsState := func(e *env, scale, found, good float32) *tensor.Tensor {
		v := []float32{scale, found, good, 3}
		return e.state("loss_scale", func(*tensor.RNG) float32 { f := v[0]; v = v[1:]; return f }, ops.LossScaleStateLen)
	}
	for _, c := range []struct {
		name  string
		found float32
	}{{"applied", 0}, {"skipped", 1}} {
		add(compareCase{name: "sgd_scaled_" + c.name, run: func(e *env) error {
			const n = 3001
			w, buf := e.state("param", normal, n), e.state("momentum", normal, n)
			p := ops.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, ScaleFrom: lsState(e, 1024, c.found, 0)}
			return e.b.SGDStep(w, e.in(n), buf, nil, nil, p)
		}})
	}
	for _, c := range []struct {
		name  string
		bad   int // index of the non-finite value, or -1
		value float32
		found float32
	}{
		{"clean", -1, 0, 0}, {"nan_first", 0, float32(math.NaN()), 0}, {"inf_last", 4096, float32(math.Inf(1)), 0},
		{"neg_inf_middle", 2000, float32(math.Inf(-1)), 0}, {"already_found", -1, 0, 1},
	} {
		add(compareCase{name: "check_finite_" + c.name, run: func(e *env) error {
			const n = 4097
			i := 0
			x := e.inFn(func(r *tensor.RNG) float32 {
				v := normal(r)
				if i == c.bad {
					v = c.value
				}
				i++
				return v
			}, n)
			return e.b.CheckFinite(lsState(e, 1024, c.found, 5), x)
		}})
	}
	for _, c := range []struct {
		name        string
		found, good float32
	}{{"overflow", 1, 7}, {"finite", 0, 7}, {"grow", 0, 9}} {
		add(compareCase{name: "loss_scale_update_" + c.name, run: func(e *env) error {
			return e.b.UpdateLossScale(lsState(e, 1024, c.found, c.good), ops.LossScaleParams{Growth: 2, Backoff: 0.5, Interval: 10})
		}})
	}

	// The attention baselines' kernels (ops.TransformerKernels).
	tk := func(e *env) ops.TransformerKernels { return e.b.(ops.TransformerKernels) }
	for _, c := range []struct {
		name   string
		a, b   []int
		ta, tb bool
		out    []int
	}{
		{"nn", []int{3, 7, 13}, []int{3, 13, 9}, false, false, []int{3, 7, 9}},
		{"tn", []int{3, 13, 7}, []int{3, 13, 9}, true, false, []int{3, 7, 9}},
		{"nt", []int{3, 7, 13}, []int{3, 9, 13}, false, true, []int{3, 7, 9}},
		{"tt", []int{3, 13, 7}, []int{3, 9, 13}, true, true, []int{3, 7, 9}},
		{"shared_b", []int{3, 7, 13}, []int{13, 9}, false, false, []int{3, 7, 9}},
		{"shared_a_t", []int{13, 7}, []int{3, 13, 9}, true, false, []int{3, 7, 9}},
		{"wide", []int{2, 70, 45}, []int{2, 45, 37}, false, false, []int{2, 70, 37}},
	} {
		add(compareCase{name: "matmul_" + c.name, transformer: true, run: func(e *env) error {
			return tk(e).MatMul(e.out("dst", c.out...), e.in(c.a...), e.in(c.b...), ops.MatMulParams{TransA: c.ta, TransB: c.tb})
		}})
	}
	// rowsView is rows 1..r of each item of a [n r+2 d] tensor: batch-strided, not contiguous.
	rowsView := func(e *env, n, r, d int) *tensor.Tensor {
		x := e.in(n, r+2, d)
		v, err := x.Narrow(1, 1, r)
		if err != nil {
			e.tb.Fatal(err)
		}
		return v
	}
	add(compareCase{name: "matmul_views", transformer: true, run: func(e *env) error {
		return tk(e).MatMul(e.out("dst", 3, 7, 9), rowsView(e, 3, 7, 13), rowsView(e, 3, 13, 9), ops.MatMulParams{})
	}})
	add(compareCase{name: "softmax_view", transformer: true, run: func(e *env) error {
		x := e.inFn(func(r *tensor.RNG) float32 { return float32(4 * r.Normal()) }, 3, 5, 37)
		return tk(e).Softmax(e.out("dst", 3, 5, 37), x)
	}})
	add(compareCase{name: "softmax_rows_of_view", transformer: true, run: func(e *env) error {
		return tk(e).Softmax(e.out("dst", 3, 5, 37), rowsView(e, 3, 5, 37))
	}})
	add(compareCase{name: "softmax_grad_in_place", transformer: true, run: func(e *env) error {
		y := e.out("y", 3, 5, 37)
		if err := tk(e).Softmax(y, e.in(3, 5, 37)); err != nil {
			return err
		}
		gy := e.state("gx", normal, 3, 5, 37)
		return tk(e).SoftmaxGrad(gy, gy, y)
	}})
	add(compareCase{name: "layer_norm", transformer: true, run: func(e *env) error {
		x := e.inFn(func(r *tensor.RNG) float32 { return float32(3 + r.Normal()) }, 3, 7, 45)
		return tk(e).LayerNorm(e.out("y", 3, 7, 45), e.out("mean", 21), e.out("inv_std", 21), x, e.in(45), e.in(45), ops.LayerNormParams{Eps: 1e-6})
	}})
	add(compareCase{name: "layer_norm_grad", transformer: true, run: func(e *env) error {
		x := rowsView(e, 3, 70, 45)
		mean, inv := e.in(210), e.inFn(positive, 210)
		return tk(e).LayerNormGrad(e.out("gx", 3, 70, 45), e.out("ggamma", 45), e.out("gbeta", 45), e.in(3, 70, 45), x, e.in(45), mean, inv)
	}})
	for _, c := range []struct {
		x, perm []int
	}{{[]int{2, 3, 4, 5}, []int{0, 2, 3, 1}}, {[]int{2, 5, 3, 7}, []int{3, 1, 0, 2}}, {[]int{4, 3, 5}, []int{2, 1, 0}}} {
		out := make([]int, len(c.perm))
		for k, d := range c.perm {
			out[k] = c.x[d]
		}
		add(compareCase{name: fmt.Sprintf("permute_%v", c.perm), transformer: true, run: func(e *env) error {
			return tk(e).Permute(e.out("dst", out...), e.in(c.x...), c.perm)
		}})
	}
	add(compareCase{name: "permute_of_view", transformer: true, run: func(e *env) error {
		return tk(e).Permute(e.out("dst", 13, 7, 3), rowsView(e, 3, 7, 13), []int{2, 1, 0})
	}})

	// Tensors above 128 MiB (34.6 M floats = 138 MB; each item 69 MB): backends whose bindings
	// are limited to 128 MiB must split them, by elements or by batch items.
	large := []int{2, 3, 2400, 2400}
	uniform := func(r *tensor.RNG) float32 { return float32(r.Uniform(-2, 2)) }
	add(compareCase{name: "large_relu", large: true, run: func(e *env) error {
		return e.b.Unary(ops.ReLU, e.out("y", large...), e.inFn(uniform, large...))
	}})
	add(compareCase{name: "large_sum_nhw_and_expand", large: true, run: func(e *env) error {
		x := e.inFn(uniform, large...)
		s := e.out("sum", 3)
		if err := e.b.Sum(s, x, ops.AxesNHW); err != nil {
			return err
		}
		return e.b.Expand(e.out("expand", large...), s, ops.AxesNHW, 1e-3)
	}})
	add(compareCase{name: "large_conv2d_1x1_and_grads", large: true, run: func(e *env) error {
		x, w := e.inFn(uniform, large...), e.in(2, 3, 1, 1)
		y := e.out("y", 2, 2, 2400, 2400)
		if err := e.b.Conv2D(y, x, w, nil, ops.Conv2DParams{}.Norm()); err != nil {
			return err
		}
		if err := e.b.Conv2DGradWeight(e.out("gw", 2, 3, 1, 1), x, y, ops.Conv2DParams{}.Norm()); err != nil {
			return err
		}
		return e.b.Conv2DGradInput(e.out("gx", large...), y, w, ops.Conv2DParams{}.Norm())
	}})
	return cs
}
