package optest

import (
	_ "embed"
	"github.com/chnet/chnet/tensor"
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/ops"
)

// Tolerances for single ops against PyTorch 1.13 float32 (shared/golden/MANIFEST.md suggests
// 1e-4 for outputs): one op differs from PyTorch only in summation order and float rounding.
const (
	tolForward  = 1e-5
	tolBackward = 1e-5
)

// Golden runs every case of shared/golden/ops_cases.safetensors, forward and backward, on b.
func Golden(t *testing.T, b ops.Backend) {
	f, err := safetensors.ReadFile(golden.Path(t, "golden/ops_cases.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"conv_3x3_s1", "conv_3x3_s2", "conv_7x7_s2", "conv_1x1_s2", "conv_3x3_d2", "conv_3x3_g2"} {
		t.Run(name, func(t *testing.T) { goldenConv(t, b, cases{t, f}, name) })
	}
	t.Run("batch_norm_train", func(t *testing.T) { goldenBatchNorm(t, b, cases{t, f}) })
	pools := map[string]func(tp *ops.Tape, c cases, x *ops.Tape){}
	_ = pools
	for _, pc := range []struct {
		name string
		run  func(tp *ops.Tape, x *tensorT) *tensorT
	}{
		{"maxpool_3s2p1", func(tp *ops.Tape, x *tensorT) *tensorT {
			return tp.MaxPool2D(x, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1})
		}},
		{"avgpool_3s1p1", func(tp *ops.Tape, x *tensorT) *tensorT {
			return tp.AvgPool2D(x, ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1, CountIncludePad: true})
		}},
		{"avgpool_3s2p1", func(tp *ops.Tape, x *tensorT) *tensorT {
			return tp.AvgPool2D(x, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1, CountIncludePad: true})
		}},
		{"avgpool_2s2_ceil_nopad", func(tp *ops.Tape, x *tensorT) *tensorT {
			return tp.AvgPool2D(x, ops.PoolParams{Kernel: 2, Stride: 2, CeilMode: true})
		}},
		{"avgpool_31s1p15", func(tp *ops.Tape, x *tensorT) *tensorT {
			return tp.AvgPool2D(x, ops.PoolParams{Kernel: 31, Stride: 1, Pad: 15, CountIncludePad: true})
		}},
		{"up_bilinear_ac0", func(tp *ops.Tape, x *tensorT) *tensorT { return tp.ResizeBilinear(x, 23, 17, false) }},
		{"up_bilinear_ac1", func(tp *ops.Tape, x *tensorT) *tensorT { return tp.ResizeBilinear(x, 23, 17, true) }},
		{"down_bilinear_ac0", func(tp *ops.Tape, x *tensorT) *tensorT { return tp.ResizeBilinear(x, 4, 3, false) }},
	} {
		t.Run(pc.name, func(t *testing.T) {
			c := cases{t, f}
			tp := ops.NewTape(b)
			defer tp.Release()
			x := c.param(b, pc.name+".x")
			y := pc.run(tp, x)
			tp.Keep(y)
			gy := c.upload(b, pc.name+".gy")
			backwardWith(t, tp, y, gy)
			want, _ := c.get(pc.name + ".y")
			expectClose(t, "output", download(t, b, y), want, tolForward)
			want, _ = c.get(pc.name + ".gx")
			expectClose(t, "grad input", download(t, b, x.Grad), want, tolBackward)
		})
	}
	for _, form := range []ops.StructureLossForm{ops.StructureLossOfficial, ops.StructureLossWeighted} {
		name := "structure_loss"
		if form == ops.StructureLossWeighted {
			name = "structure_loss_weighted"
		}
		t.Run(name, func(t *testing.T) {
			c := cases{t, f}
			tp := ops.NewTape(b)
			defer tp.Release()
			x := c.param(b, name+".pred")
			mask := c.upload(b, name+".mask")
			loss := tp.StructureLoss(x, mask, form)
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}
			want, _ := c.get(name + ".loss")
			expectClose(t, "loss", download(t, b, loss), want, tolForward)
			want, _ = c.get(name + ".gpred")
			expectClose(t, "grad logits", download(t, b, x.Grad), want, tolBackward)
		})
	}
}

func goldenConv(t *testing.T, b ops.Backend, c cases, name string) {
	cfg, _ := c.get(name + ".cfg")
	p := ops.Conv2DParams{Stride: int(cfg[0]), Pad: int(cfg[1]), Dilation: int(cfg[2]), Groups: int(cfg[3])}
	tp := ops.NewTape(b)
	defer tp.Release()
	x := c.param(b, name+".x")
	w := c.param(b, name+".w")
	var bias *tensorT
	if c.has(name + ".b") {
		bias = c.param(b, name+".b")
	}
	y := tp.Conv2D(x, w, bias, p)
	tp.Keep(y)
	backwardWith(t, tp, y, c.upload(b, name+".gy"))
	want, _ := c.get(name + ".y")
	expectClose(t, "output", download(t, b, y), want, tolForward)
	want, _ = c.get(name + ".gx")
	expectClose(t, "grad input", download(t, b, x.Grad), want, tolBackward)
	want, _ = c.get(name + ".gw")
	expectClose(t, "grad weight", download(t, b, w.Grad), want, tolBackward)
	if bias != nil {
		want, _ = c.get(name + ".gb")
		expectClose(t, "grad bias", download(t, b, bias.Grad), want, tolBackward)
	}
}

func goldenBatchNorm(t *testing.T, b ops.Backend, c cases) {
	tp := ops.NewTape(b)
	defer tp.Release()
	x := c.param(b, "bn.x")
	gamma := c.param(b, "bn.w")
	beta := c.param(b, "bn.b")
	ch := x.Dim(1)
	rm := upload(t, b, make([]float32, ch), []int{ch})
	ones := make([]float32, ch)
	for i := range ones {
		ones[i] = 1
	}
	rv := upload(t, b, ones, []int{ch})
	y := tp.BatchNorm2D(x, gamma, beta, rm, rv, true, ops.DefaultBatchNorm)
	tp.Keep(y)
	backwardWith(t, tp, y, c.upload(b, "bn.gy"))
	for _, chk := range []struct {
		what, key string
		got       *tensorT
	}{
		{"output", "bn.y", y}, {"grad input", "bn.gx", x.Grad}, {"grad weight", "bn.gw", gamma.Grad},
		{"grad bias", "bn.gb", beta.Grad}, {"running mean", "bn.running_mean", rm}, {"running var", "bn.running_var", rv},
	} {
		want, _ := c.get(chk.key)
		expectClose(t, chk.what, download(t, b, chk.got), want, tolBackward)
	}
}

type tensorT = tensor.Tensor

// attentionOps holds the transformer ops' PyTorch cases, written by
// tools/torchref/attention_ops.py; embedded so every backend's test finds it without paths.
//
//go:embed testdata/attention_ops.safetensors
var attentionOps []byte

// GoldenTransformer runs the attention baselines' ops (ops.TransformerKernels, GELU and the
// compositions on them) against PyTorch, forward and backward: matmul with every transpose
// combination and with a batch-shared matrix, softmax, layer_norm, GELU, permute and linear.
func GoldenTransformer(t *testing.T, b ops.Backend) {
	f, err := safetensors.Parse(attentionOps)
	if err != nil {
		t.Fatal(err)
	}
	type unaryCase struct {
		name string
		run  func(tp *ops.Tape, c cases, x *tensorT) *tensorT
	}
	var runs []unaryCase
	for _, name := range []string{"matmul_nn", "matmul_tn", "matmul_nt", "matmul_tt", "matmul_shared_b",
		"matmul_shared_b_t", "matmul_t_shared_b", "matmul_shared_a_t", "matmul_k260"} {
		t.Run(name, func(t *testing.T) {
			c := cases{t, f}
			cfg, _ := c.get(name + ".cfg")
			p := ops.MatMulParams{TransA: cfg[0] != 0, TransB: cfg[1] != 0}
			goldenOp(t, b, c, name, []string{"a", "b"}, func(tp *ops.Tape, in []*tensorT) *tensorT {
				return tp.MatMul(in[0], in[1], p)
			})
		})
	}
	runs = append(runs,
		unaryCase{"softmax", func(tp *ops.Tape, _ cases, x *tensorT) *tensorT { return tp.Softmax(x) }},
		unaryCase{"gelu", func(tp *ops.Tape, _ cases, x *tensorT) *tensorT { return tp.GELU(x) }},
	)
	for _, name := range []string{"permute_0231", "permute_0213", "permute_3120"} {
		runs = append(runs, unaryCase{name, func(tp *ops.Tape, c cases, x *tensorT) *tensorT {
			cfg, _ := c.get(name + ".cfg")
			perm := make([]int, len(cfg))
			for i, v := range cfg {
				perm[i] = int(v)
			}
			return tp.Permute(x, perm...)
		}})
	}
	for _, u := range runs {
		t.Run(u.name, func(t *testing.T) {
			c := cases{t, f}
			goldenOp(t, b, c, u.name, []string{"x"}, func(tp *ops.Tape, in []*tensorT) *tensorT { return u.run(tp, c, in[0]) })
		})
	}
	for _, name := range []string{"layer_norm", "layer_norm_vit"} {
		t.Run(name, func(t *testing.T) {
			c := cases{t, f}
			cfg, _ := c.get(name + ".cfg")
			goldenOp(t, b, c, name, []string{"x", "w", "b"}, func(tp *ops.Tape, in []*tensorT) *tensorT {
				return tp.LayerNorm(in[0], in[1], in[2], ops.LayerNormParams{Eps: cfg[0]})
			})
		})
	}
	t.Run("linear", func(t *testing.T) {
		goldenOp(t, b, cases{t, f}, "linear", []string{"x", "w", "b"}, func(tp *ops.Tape, in []*tensorT) *tensorT {
			return tp.Linear(in[0], in[1], in[2])
		})
	})
}

// goldenOp runs one golden case: inputs name.<in>, output name.y, output gradient name.gy and
// input gradients name.g<in>.
func goldenOp(t *testing.T, b ops.Backend, c cases, name string, ins []string, f func(tp *ops.Tape, in []*tensorT) *tensorT) {
	tp := ops.NewTape(b)
	defer tp.Release()
	xs := make([]*tensorT, len(ins))
	for i, in := range ins {
		xs[i] = c.param(b, name+"."+in)
	}
	y := f(tp, xs)
	if tp.Err() != nil {
		t.Fatal(tp.Err())
	}
	tp.Keep(y)
	backwardWith(t, tp, y, c.upload(b, name+".gy"))
	want, _ := c.get(name + ".y")
	expectClose(t, "output", download(t, b, y), want, tolForward)
	for i, in := range ins {
		want, _ := c.get(name + ".g" + in)
		expectClose(t, "grad "+in, download(t, b, xs[i].Grad), want, tolBackward)
	}
}
