package nn_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// Both containers of the same Res2Net-50 v1 stem+layer1 state dict (shared/golden) must load to
// identical tensors and reproduce PyTorch's eval-mode output of stem, max pooling and layer1.
func TestRes2NetStemLayer1Golden(t *testing.T) {
	legacy, err := nn.LoadPth(golden.Path(t, "golden/res2net_stem_layer1_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	zip, err := nn.LoadPth(golden.Path(t, "golden/res2net_stem_layer1_zip.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if len(legacy.Tensors) != len(zip.Tensors) || len(legacy.Counters) != len(zip.Counters) {
		t.Fatalf("legacy has %d tensors/%d counters, zip %d/%d", len(legacy.Tensors), len(legacy.Counters), len(zip.Tensors), len(zip.Counters))
	}
	for k, a := range legacy.Tensors {
		b := zip.Tensors[k]
		if len(a.Data) != len(b.Data) {
			t.Fatalf("%s: %d vs %d values", k, len(a.Data), len(b.Data))
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("%s[%d]: legacy %v, zip %v", k, i, a.Data[i], b.Data[i])
			}
		}
	}

	b := cpu.New()
	r, err := nn.NewRes2Net(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, nn.Res2NetConfig{Variant: nn.V1, Stages: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := nn.LoadState(b, r, legacy, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loaded) != 85 {
		t.Fatalf("loaded %d tensors, want 85 (stem and layer1 without num_batches_tracked)", len(rep.Loaded))
	}
	nn.SetTraining(r, false)
	f, err := safetensors.ReadFile(golden.Path(t, "golden/res2net_stem_layer1_io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	xv, xs, _ := f.Float32("input")
	want, _, _ := f.Float32("eval.output")
	x, _ := ops.FromHost(b, xv, xs...)
	tp := ops.NewTape(b)
	tp.SetNoGrad(true)
	y := r.Features(tp, x)[1]
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := ops.ToHost(b, y)
	// shared/golden/MANIFEST.md: outputs through many layers compare at 1e-4.
	if e := optest.RelErr(got, want); e > 1e-4 {
		t.Fatalf("stem+layer1 output: relative error %.3g", e)
	} else {
		t.Logf("stem+layer1 output: relative error %.2g", e)
	}
}

// Every key of the published res2net50_26w_4s file maps onto the full v1 network, except the
// ImageNet classifier (fc), which chnet knowingly has no use for.
func TestRes2NetKeysMatchImageNetFile(t *testing.T) {
	raw, err := os.ReadFile(golden.Path(t, "golden/res2net50_26w_4s_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string][]int
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	r, err := nn.NewRes2Net(nn.Init{B: cpu.New(), RNG: tensor.NewRNG(0, 0)}, nn.Res2NetConfig{Variant: nn.V1, Stages: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int{}
	nn.Walk(r, "", func(n string, e nn.Entry) { got[n] = (*e.Ptr).Shape() })
	nn.WalkCounters(r, "", func(n string, _ nn.Counter) { got[n] = []int{} })
	skipped := 0
	for k, shape := range keys {
		if strings.HasPrefix(k, "fc.") {
			skipped++
			continue
		}
		g, ok := got[k]
		if !ok {
			t.Errorf("no model tensor for %s", k)
		} else if !tensor.Shape(g).Equal(shape) {
			t.Errorf("%s: model %v, file %v", k, g, shape)
		}
	}
	if len(got) != len(keys)-skipped || skipped != 2 {
		t.Errorf("model has %d entries, file %d (skipped %d fc keys)", len(got), len(keys), skipped)
	}
}
