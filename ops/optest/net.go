package optest

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// tolNet is the relative error allowed between two backends over a whole small network,
// forward and backward: the same as for one kernel, because float32 summation-order
// differences stay near 1e-6 through these few layers (measured on lavapipe: ≤ 8e-7).
const tolNet = tolCompare

// netParam is one trainable tensor of the test network.
type netParam struct {
	name  string
	shape []int
	scale float64
	shift float64
}

var netParams = []netParam{
	// No bias before batch norm: its exact gradient is zero, so both backends return rounding
	// noise that no relative tolerance can compare.
	{"conv1.weight", []int{8, 3, 3, 3}, 0.3, 0},
	{"bn1.weight", []int{8}, 0.2, 1},
	{"bn1.bias", []int{8}, 0.1, 0},
	{"conv2.weight", []int{6, 8, 3, 3}, 0.2, 0},
	{"conv2.bias", []int{6}, 0.1, 0},
	{"head.weight", []int{1, 14, 1, 1}, 0.3, 0},
	{"head.bias", []int{1}, 0.1, 0},
}

// netRun is what one backend computed: the loss, every parameter's gradient, the updated
// running statistics and the logits.
type netRun struct {
	names []string
	vals  [][]float32
}

// runNet builds conv → batch norm → ReLU → max pool → conv → resize → concat → 1x1 conv →
// structure loss on b from fixed seeds, runs forward and backward through ops.Tape and reads
// back everything to compare.
func runNet(tb testing.TB, b ops.Backend, form ops.StructureLossForm) netRun {
	tb.Helper()
	const n, h, w = 2, 23, 19
	rng := tensor.NewRNG(99, 3)
	tp := ops.NewTape(b)
	defer tp.Release()
	params := map[string]*tensor.Tensor{}
	for _, p := range netParams {
		v := make([]float32, tensor.Shape(p.shape).Numel())
		for i := range v {
			v[i] = float32(p.shift + p.scale*rng.Normal())
		}
		params[p.name] = upload(tb, b, v, p.shape).SetRequiresGrad(true)
	}
	x := make([]float32, n*3*h*w)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	mask := make([]float32, n*h*w)
	for i := range mask {
		y, xx := i/w%h, i%w
		if (y-11)*(y-11)+(xx-9)*(xx-9) < 40 {
			mask[i] = 1
		}
	}
	xt := upload(tb, b, x, []int{n, 3, h, w})
	mt := upload(tb, b, mask, []int{n, 1, h, w})
	rm, err := ops.Zeros(b, 8)
	if err != nil {
		tb.Fatal(err)
	}
	rv := upload(tb, b, []float32{1, 1, 1, 1, 1, 1, 1, 1}, []int{8})

	c1 := tp.Conv2D(xt, params["conv1.weight"], nil, ops.Conv2DParams{Pad: 1})
	a1 := tp.ReLU(tp.BatchNorm2D(c1, params["bn1.weight"], params["bn1.bias"], rm, rv, true, ops.DefaultBatchNorm))
	p1 := tp.MaxPool2D(a1, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1})
	c2 := tp.Conv2D(p1, params["conv2.weight"], params["conv2.bias"], ops.Conv2DParams{Pad: 1})
	up := tp.ResizeBilinear(c2, h, w, false)
	cat := tp.Concat(up, a1)
	logits := tp.Conv2D(cat, params["head.weight"], params["head.bias"], ops.Conv2DParams{})
	loss := tp.StructureLoss(logits, mt, form)
	tp.Keep(logits)
	if err := tp.Backward(loss); err != nil {
		tb.Fatal(err)
	}
	run := netRun{}
	add := func(name string, t *tensor.Tensor) {
		run.names = append(run.names, name)
		run.vals = append(run.vals, download(tb, b, t))
	}
	add("loss", loss)
	add("logits", logits)
	for _, p := range netParams {
		if params[p.name].Grad == nil {
			tb.Fatalf("%s has no gradient", p.name)
		}
		add("grad "+p.name, params[p.name].Grad)
	}
	add("bn1.running_mean", rm)
	add("bn1.running_var", rv)
	return run
}

// CompareNet runs a small network (every layer kind CHNet uses, through ops.Tape) forward and
// backward on ref and on b with the same parameters and data, and compares the loss, the
// logits, every parameter gradient and the running statistics.
func CompareNet(t *testing.T, ref, b ops.Backend) {
	for _, form := range []ops.StructureLossForm{ops.StructureLossOfficial, ops.StructureLossWeighted} {
		t.Run(form.String(), func(t *testing.T) {
			want := runNet(t, ref, form)
			got := runNet(t, b, form)
			for i, name := range want.names {
				if e := RelErr(got.vals[i], want.vals[i]); e > tolNet {
					t.Errorf("%s: %s vs %s relative error %.3g > %g%s", name, b.Name(), ref.Name(), e, tolNet, firstDiff(got.vals[i], want.vals[i]))
				} else {
					t.Logf("%s: relative error %.2g", name, e)
				}
			}
		})
	}
}
