package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// The counter's multiply-adds and parameter counts for every baseline equal an independent count:
// tools/torchref/baselines.py runs PyTorch renderings of the same designs (written from the
// methods' reference code) under a TorchDispatchMode that adds up every aten convolution, mm,
// addmm and bmm, as PyTorch's FlopCounterMode does, and sums their parameters. Exact integers,
// at Table 5's 256x256 and the training size 352x352.
func TestBaselineCountsMatchPyTorch(t *testing.T) {
	raw, err := os.ReadFile("../chnet/baselines/testdata/torch_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Counts map[string]struct {
			MACs   int64 `json:"macs"`
			Params int   `json:"params"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	arch := map[string]string{"U-Net": "unet", "Attention U-Net": "attunet", "UTNet": "utnet", "TransUNet": "transunet"}
	seen := 0
	for _, cm := range CostModels() {
		key := ""
		for prefix, a := range arch {
			if strings.HasPrefix(cm.Name, prefix+" (") {
				key = a
			}
		}
		if key == "" {
			continue
		}
		for _, size := range []int{256, 352} {
			t.Run(fmt.Sprintf("%s/%d", key, size), func(t *testing.T) {
				want, ok := ref.Counts[fmt.Sprintf("%s/%d", key, size)]
				if !ok {
					t.Fatal("no reference count")
				}
				row, err := MeasureCost(cm, size)
				if err != nil {
					t.Fatal(err)
				}
				if row.MACs != want.MACs || row.Params != want.Params {
					t.Errorf("counted %d MACs and %d parameters, PyTorch %d and %d", row.MACs, row.Params, want.MACs, want.Params)
				}
			})
			seen++
		}
	}
	if seen != 8 {
		t.Errorf("checked %d model/size pairs, want 8 (every baseline at 256 and 352)", seen)
	}
}

// The counter's transformer rules on a hand-computed case: ViT-style attention over T = 4 tokens
// of D = 8 features in 2 heads, preceded by a LayerNorm. Four linear layers cost 4·T·D·D = 1024
// multiply-adds, which thop counts (nn.Linear hooks); q·kᵀ and p·v cost 2·T·T·D = 256 more, which
// only the FlopCounter-style MACs include; the LayerNorm counts 4·T·D = 128 for thop 0.1.1 and
// 2·T·D = 64 under the old rules.
func TestCounterTransformerRules(t *testing.T) {
	c, err := Profile([]int{1, 4, 8}, func(tp *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
		init := nn.Init{B: tp.Backend(), RNG: tensor.NewRNG(0, 0)}
		ln, err := nn.NewLayerNorm(init, 8, 1e-6)
		if err != nil {
			t.Fatal(err)
		}
		a, err := nn.NewMultiHeadAttention(init, 8, 2)
		if err != nil {
			t.Fatal(err)
		}
		return a.Forward(tp, ln.Forward(tp, x))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Totals("")
	if got.MACs != 1280 || got.ThopNew != 1024+128 || got.ThopOld != 1024+64 {
		t.Errorf("counted MACs %d thop %d thop-old %d; want 1280, 1152, 1088", got.MACs, got.ThopNew, got.ThopOld)
	}
}
