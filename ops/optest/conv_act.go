package optest

import (
	"math"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// convActCase is one fused convolution (ops.Backend.Conv2DAct) configuration: odd widths like
// Res2Net's 26, strides, dilation, 1x1 GEMMs, reductions longer than one GEMM block, outputs
// and residuals that are channel slices.
type convActCase struct {
	name                  string
	x, w                  []int
	p                     ops.Conv2DParams
	bias, res, relu       bool
	viewOut, viewResidual bool
}

var convActCases = []convActCase{
	{"3x3_s1_p1_w26_res_relu", []int{2, 26, 13, 11}, []int{26, 26, 3, 3}, ops.Conv2DParams{Pad: 1}, true, true, true, false, false},
	{"3x3_s2_p1_relu_view_out", []int{3, 13, 15, 12}, []int{26, 13, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}, true, false, true, true, false},
	{"1x1_s1_res_relu", []int{2, 37, 9, 7}, []int{70, 37, 1, 1}, ops.Conv2DParams{}, true, true, true, false, false},
	{"1x1_s2_bias", []int{2, 9, 11, 13}, []int{5, 9, 1, 1}, ops.Conv2DParams{Stride: 2}, true, false, false, false, false},
	{"1x1_s2_res", []int{2, 9, 11, 13}, []int{5, 9, 1, 1}, ops.Conv2DParams{Stride: 2}, true, true, false, false, false},
	{"7x7_s2_p3_relu", []int{2, 3, 23, 19}, []int{8, 3, 7, 7}, ops.Conv2DParams{Stride: 2, Pad: 3}, true, false, true, false, false},
	{"3x3_d2_p2_res_nobias", []int{2, 6, 11, 10}, []int{4, 6, 3, 3}, ops.Conv2DParams{Pad: 2, Dilation: 2}, false, true, false, false, false},
	{"3x3_s1_p1_long_k_res_relu", []int{2, 37, 19, 17}, []int{45, 37, 3, 3}, ops.Conv2DParams{Pad: 1}, true, true, true, false, true},
	{"1x1_long_k_res_relu_views", []int{2, 300, 9, 7}, []int{20, 300, 1, 1}, ops.Conv2DParams{}, true, true, true, true, true},
	{"3x3_s2_p1_b1_relu", []int{1, 52, 10, 9}, []int{52, 52, 3, 3}, ops.Conv2DParams{Stride: 2, Pad: 1}, true, false, true, false, false},
}

// runConvAct computes one case on e's backend, fused (Conv2DAct) or as the unfused composition
// Conv2D, Add, ReLU; both draw the same inputs in the same order.
func runConvAct(e *env, c convActCase, fused bool) error {
	p := c.p.Norm()
	y := []int{c.x[0], c.w[0], p.OutSize(c.x[2], c.w[2]), p.OutSize(c.x[3], c.w[3])}
	x, w := e.in(c.x...), e.in(c.w...)
	var bias, res *tensor.Tensor
	if c.bias {
		bias = e.in(c.w[0])
	}
	if c.res {
		if c.viewResidual {
			res = e.inView(y...)
		} else {
			res = e.in(y...)
		}
	}
	var out *tensor.Tensor
	if c.viewOut {
		out = e.outView("y", y...)
	} else {
		out = e.out("y", y...)
	}
	if fused {
		return e.b.Conv2DAct(out, x, w, bias, ops.ConvAct{Residual: res, ReLU: c.relu}, p)
	}
	if err := e.b.Conv2D(out, x, w, bias, p); err != nil {
		return err
	}
	if res != nil {
		if err := e.b.Binary(ops.Add, out, out, res); err != nil {
			return err
		}
	}
	if c.relu {
		return e.b.Unary(ops.ReLU, out, out)
	}
	return nil
}

// CompareConvAct checks the fused convolution epilogue (ops.Backend.Conv2DAct) on b against the
// unfused composition Conv2D → Add → ReLU on ref: the same values within tolCompare (the sums
// are the same float32 operations in the same order on the CPU; ref and b may differ in
// summation order), and nothing written outside an output slice.
func CompareConvAct(t *testing.T, ref, b ops.Backend) {
	for _, c := range convActCases {
		t.Run(c.name, func(t *testing.T) {
			want := runCase(t, ref, compareCase{run: func(e *env) error { return runConvAct(e, c, false) }})
			got := runCase(t, b, compareCase{run: func(e *env) error { return runConvAct(e, c, true) }})
			for i := range want {
				if e := RelErr(got[i].v, want[i].v); e > tolCompare || math.IsNaN(e) {
					t.Errorf("%s: fused on %s vs unfused on %s: relative error %.3g > %g%s", got[i].name, b.Name(), ref.Name(), e, tolCompare, firstDiff(got[i].v, want[i].v))
				}
			}
		})
	}
}
