package chnet

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

func newModel(t *testing.T, cfg Config) *Model {
	t.Helper()
	m, err := New(nn.Init{B: cpu.New(), RNG: tensor.NewRNG(0, 0)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Parameter counts from reference.md §1.1 and §2.4 (computed there from the official code and
// cross-checked against the Res2Net README totals).
func TestParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cfg            Config
		total, decoder int
	}{
		{"released_v1_w32", Released(), 8_779_177, 127_361},
		{"v1b_w32", Config{Backbone: nn.V1b, HeadWidth: 32, HeadKernel: 1}, 8_671_048 + 127_361, 127_361},
		{"v1b_w128", Config{Backbone: nn.V1b, HeadWidth: 128, HeadKernel: 1}, 8_823_369, 152_321},
		{"v1_w128", Config{Backbone: nn.V1, HeadWidth: 128, HeadKernel: 1}, 8_804_137, 152_321},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, tc.cfg)
			total := nn.CountParams(m)
			backbone := nn.CountParams(m.Backbone)
			if total != tc.total || total-backbone != tc.decoder {
				t.Errorf("total %d decoder %d, want %d and %d", total, total-backbone, tc.total, tc.decoder)
			}
		})
	}
}

// The state dict must carry the official CHNet names (reference.md §1.1): 414 backbone tensors
// renamed from the ImageNet file's keys, plus 17 head tensors.
func TestStateDictNamesMatchOfficial(t *testing.T) {
	raw, err := os.ReadFile(golden.Path(t, "golden/res2net50_26w_4s_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string][]int
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{}
	for k, shape := range keys {
		if n := OfficialName(k); n != "" {
			want[n] = shape
		}
	}
	for k, shape := range map[string][]int{
		"tf1.weight": {64, 64, 1, 1}, "tf1.bias": {64}, "tf2.weight": {64, 256, 1, 1}, "tf2.bias": {64},
		"tf3.weight": {64, 512, 1, 1}, "tf3.bias": {64}, "tf4.weight": {64, 1024, 1, 1}, "tf4.bias": {64},
		"classifier.0.weight": {32, 256, 1, 1}, "classifier.0.bias": {32},
		"classifier.2.weight": {32}, "classifier.2.bias": {32}, "classifier.2.running_mean": {32},
		"classifier.2.running_var": {32}, "classifier.2.num_batches_tracked": {},
		"classifier.3.weight": {1, 32, 1, 1}, "classifier.3.bias": {1},
	} {
		want[k] = shape
	}
	if len(want) != 431 {
		t.Fatalf("expected 431 official tensors, derived %d", len(want))
	}
	m := newModel(t, Released())
	got := map[string][]int{}
	nn.Walk(m, "", func(name string, e nn.Entry) { got[name] = (*e.Ptr).Shape() })
	nn.WalkCounters(m, "", func(name string, _ nn.Counter) { got[name] = []int{} })
	for k, shape := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("model lacks %s", k)
			continue
		}
		if !tensor.Shape(g).Equal(shape) {
			t.Errorf("%s: shape %v, want %v", k, g, shape)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("model has unexpected %s", k)
		}
	}
}

func TestOfficialNameSkipsLayer4AndFC(t *testing.T) {
	for in, want := range map[string]string{
		"conv1.weight":                 "encode1.0.weight",
		"bn1.running_var":              "encode1.1.running_var",
		"layer1.0.convs.2.weight":      "encode2.1.0.convs.2.weight",
		"layer2.3.bn3.bias":            "encode3.3.bn3.bias",
		"layer3.0.downsample.1.weight": "encode4.0.downsample.1.weight",
		"layer4.0.conv1.weight":        "",
		"fc.weight":                    "",
		"conv1.0.weight":               "encode1.0.0.weight",
	} {
		if got := OfficialName(in); got != want {
			t.Errorf("OfficialName(%q) = %q, want %q", in, got, want)
		}
	}
}
