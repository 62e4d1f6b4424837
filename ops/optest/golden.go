package optest

import (
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
