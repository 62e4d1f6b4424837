package nn

import (
	"math"
	"testing"

	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// The module against torch.nn.MultiheadAttention (batch_first, 8 features, 2 heads), whose
// packed in_proj weight tools/torchref/attention_ops.py split into query/key/value: outputs and
// the gradients of input and every parameter, within the single-op tolerance of 1e-5 (a few
// products and one softmax; PyTorch differs only in summation order).
func TestMultiHeadAttentionMatchesPyTorch(t *testing.T) {
	f, err := safetensors.ReadFile("../ops/optest/testdata/attention_ops.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New()
	get := func(name string) *tensor.Tensor {
		v, shape, err := f.Float32("mha." + name)
		if err != nil {
			t.Fatal(err)
		}
		x, err := ops.FromHost(b, v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	want := func(name string) []float32 {
		v, _, err := f.Float32("mha." + name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	heads := int(want("cfg")[0])
	a := &MultiHeadAttention{Heads: heads}
	for _, l := range []struct {
		name string
		dst  **Linear
	}{{"query", &a.Query}, {"key", &a.Key}, {"value", &a.Value}, {"out", &a.Out}} {
		*l.dst = &Linear{Weight: get(l.name + ".weight").SetRequiresGrad(true), Bias: get(l.name + ".bias").SetRequiresGrad(true)}
	}
	x := get("x").SetRequiresGrad(true)
	tp := ops.NewTape(b)
	defer tp.Release()
	y := a.Forward(tp, x)
	tp.Keep(y)
	loss := tp.Sum(tp.Mul(y, get("gy")), ops.AxesAll)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got *tensor.Tensor, w []float32) {
		t.Helper()
		v, err := ops.ToHost(b, got)
		if err != nil {
			t.Fatal(err)
		}
		// The key bias adds the same q·b to every score of a row, which softmax ignores: its
		// gradient is zero up to rounding (PyTorch's is ~1e-8), so it is held to an absolute bound.
		if what == "key grad bias" {
			for i := range v {
				if math.Abs(float64(v[i])) > 1e-6 || math.Abs(float64(w[i])) > 1e-6 {
					t.Errorf("%s: want ~0, got %v (PyTorch %v)", what, v, w)
					break
				}
			}
			return
		}
		if e := optest.RelErr(v, w); e > 1e-5 {
			t.Errorf("%s: relative error %.3g", what, e)
		}
	}
	check("output", y, want("y"))
	check("grad input", x.Grad, want("gx"))
	for _, c := range a.Children() {
		l := c.Module.(*Linear)
		check(c.Name+" grad weight", l.Weight.Grad, want(c.Name+".gweight"))
		check(c.Name+" grad bias", l.Bias.Grad, want(c.Name+".gbias"))
	}
}
