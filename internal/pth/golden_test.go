package pth

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/internal/safetensors"
)

// imagenetShapes reads res2net50_26w_4s_keys.json keeping its key order (the file order of
// the official state dict).
func imagenetShapes(t *testing.T) ([]string, map[string][]int) {
	t.Helper()
	b, err := os.ReadFile(golden.Path(t, "golden/res2net50_26w_4s_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	if err := json.Unmarshal(b, &shapes); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 {
				keys = append(keys, tok)
			}
		}
	}
	if len(keys) != len(shapes) {
		t.Fatalf("read %d ordered keys, %d shapes", len(keys), len(shapes))
	}
	return keys, shapes
}

// officialName renames an ImageNet Res2Net key to CHNet's (reference.md §1.1), or "" for
// keys CHNet drops (layer4, fc).
func officialName(k string) string {
	for _, r := range [][2]string{{"conv1.", "encode1.0."}, {"bn1.", "encode1.1."}, {"layer1.", "encode2.1."},
		{"layer2.", "encode3."}, {"layer3.", "encode4."}} {
		if rest, ok := strings.CutPrefix(k, r[0]); ok {
			return r[1] + rest
		}
	}
	return ""
}

func sameTensor(a, b Tensor) bool {
	if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.I64, b.I64) || len(a.F32) != len(b.F32) {
		return false
	}
	for i := range a.F32 {
		if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
			return false
		}
	}
	return true
}

// TestGoldenRes2NetContainers: the same state dict saved by torch in the legacy and the zip
// container reads back identically, with the official key names and shapes.
func TestGoldenRes2NetContainers(t *testing.T) {
	legacy, err := Load(golden.Path(t, "golden/res2net_stem_layer1_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := Load(golden.Path(t, "golden/res2net_stem_layer1_zip.pth"))
	if err != nil {
		t.Fatal(err)
	}
	keys, shapes := imagenetShapes(t)
	var want []string
	for _, k := range keys {
		if strings.HasPrefix(k, "conv1.") || strings.HasPrefix(k, "bn1.") || strings.HasPrefix(k, "layer1.") {
			want = append(want, k)
		}
	}
	if !slices.Equal(legacy.Keys, want) || !slices.Equal(zipped.Keys, want) {
		t.Fatalf("keys: legacy %d, zip %d, want the %d stem and layer1 keys in order", len(legacy.Keys), len(zipped.Keys), len(want))
	}
	for _, k := range want {
		a, b := legacy.Tensors[k], zipped.Tensors[k]
		if !sameTensor(a, b) {
			t.Errorf("%s differs between containers", k)
		}
		if !slices.Equal(a.Shape, shapes[k]) {
			t.Errorf("%s: shape %v, official %v", k, a.Shape, shapes[k])
		}
	}
}

// TestGoldenCHNet reads the official CHNet state dict: key names and order, shapes, dtypes,
// and values against two independent records: torch's own statistics of every tensor
// (testdata/chnet_seed0_probe.json, made by make_fixtures.py) and the SGD step that
// make_golden.py recorded in chnet_v1_io.safetensors.
func TestGoldenCHNet(t *testing.T) {
	sd, err := Load(golden.Path(t, "golden/chnet_v1_seed0.pth"))
	if err != nil {
		t.Fatal(err)
	}
	keys, shapes := imagenetShapes(t)
	var want []string
	wantShape := map[string][]int{}
	for _, k := range keys {
		if n := officialName(k); n != "" {
			want = append(want, n)
			wantShape[n] = shapes[k]
		}
	}
	for _, h := range []struct {
		key   string
		shape []int
	}{
		{"tf1.weight", []int{64, 64, 1, 1}}, {"tf1.bias", []int{64}},
		{"tf2.weight", []int{64, 256, 1, 1}}, {"tf2.bias", []int{64}},
		{"tf3.weight", []int{64, 512, 1, 1}}, {"tf3.bias", []int{64}},
		{"tf4.weight", []int{64, 1024, 1, 1}}, {"tf4.bias", []int{64}},
		{"classifier.0.weight", []int{32, 256, 1, 1}}, {"classifier.0.bias", []int{32}},
		{"classifier.2.weight", []int{32}}, {"classifier.2.bias", []int{32}},
		{"classifier.2.running_mean", []int{32}}, {"classifier.2.running_var", []int{32}},
		{"classifier.2.num_batches_tracked", []int{}},
		{"classifier.3.weight", []int{1, 32, 1, 1}}, {"classifier.3.bias", []int{1}},
	} {
		want = append(want, h.key)
		wantShape[h.key] = h.shape
	}
	if len(want) != 431 {
		t.Fatalf("expected key list has %d keys, reference.md says 431", len(want))
	}
	if !slices.Equal(sd.Keys, want) {
		t.Fatalf("keys differ from the official CHNet names (%d keys read)", len(sd.Keys))
	}
	nbt := 0
	for _, k := range sd.Keys {
		tn := sd.Tensors[k]
		if !slices.Equal(tn.Shape, wantShape[k]) {
			t.Errorf("%s: shape %v, want %v", k, tn.Shape, wantShape[k])
		}
		if strings.HasSuffix(k, ".num_batches_tracked") {
			nbt++
			if tn.DType != "I64" || tn.Shape == nil || len(tn.Shape) != 0 || len(tn.I64) != 1 {
				t.Errorf("%s: %s %v with %d values, want an I64 scalar", k, tn.DType, tn.Shape, len(tn.I64))
			}
		} else if tn.DType != "F32" || tn.I64 != nil {
			t.Errorf("%s: %s, want F32", k, tn.DType)
		}
	}
	// BNs: stem 1; per block 5 (bn1, bns.0-2, bn3); one downsample BN per stage:
	// 1 + (3·5+1) + (4·5+1) + (6·5+1) = 69 in the backbone, plus classifier.2.
	if nbt != 70 {
		t.Errorf("%d num_batches_tracked, want 70", nbt)
	}
	if err := sd.CheckFinite(); err != nil {
		t.Error(err)
	}

	t.Run("torch statistics", func(t *testing.T) {
		b, err := os.ReadFile("testdata/chnet_seed0_probe.json")
		if err != nil {
			t.Fatal(err)
		}
		var probe map[string]struct {
			Sum, Sumsq float64
			First      []float64
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			t.Fatal(err)
		}
		if len(probe) != len(sd.Keys) {
			t.Fatalf("probe has %d keys", len(probe))
		}
		firsts := 0
		for k, p := range probe {
			tn := sd.Tensors[k]
			vals := make([]float64, 0, max(len(tn.F32), len(tn.I64)))
			for _, v := range tn.F32 {
				vals = append(vals, float64(v))
			}
			for _, v := range tn.I64 {
				vals = append(vals, float64(v))
			}
			var sum, sumsq float64
			for _, v := range vals {
				sum += v
				sumsq += v * v
			}
			// torch sums in another order; float64 rounding differs far below 1e-9.
			if math.Abs(sum-p.Sum) > 1e-9*(1+p.Sumsq) || math.Abs(sumsq-p.Sumsq) > 1e-9*(1+p.Sumsq) {
				t.Errorf("%s: sum %v sumsq %v, torch %v %v", k, sum, sumsq, p.Sum, p.Sumsq)
			}
			for i, v := range p.First {
				firsts++
				if vals[i] != v {
					t.Errorf("%s[%d] = %v, torch %v", k, i, vals[i], v)
				}
			}
		}
		if firsts < 40 {
			t.Errorf("only %d leading values compared", firsts)
		}
	})

	// make_golden.py took one SGD step (lr 0.05, momentum 0.9, weight decay 5e-4, nesterov) from
	// these weights: with a zero momentum buffer, p1 = p0 − lr·(1+m)·(g + wd·p0). Recomputing
	// p1 from the weights read here and the recorded gradient must give the recorded p1.
	t.Run("SGD step recorded by make_golden.py", func(t *testing.T) {
		io, err := safetensors.ReadFile(golden.Path(t, "golden/chnet_v1_io.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		const lr, m, wd = 0.05, 0.9, 5e-4
		checked := 0
		for _, name := range io.Names {
			param, ok := strings.CutPrefix(name, "sgd1.")
			if !ok {
				continue
			}
			p1, _, err := io.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			g, _, err := io.Float32("train.grad." + param)
			if err != nil {
				t.Fatal(err)
			}
			p0 := sd.Tensors[param].F32
			if len(p0) != len(p1) || len(g) != len(p1) {
				t.Fatalf("%s: %d weights, %d gradients, %d updated", param, len(p0), len(g), len(p1))
			}
			worst := 0.0
			for i := range p0 {
				d := g[i] + wd*p0[i]
				d += m * d
				want := p0[i] - lr*d
				worst = max(worst, math.Abs(float64(want-p1[i]))/(1+math.Abs(float64(p0[i]))))
			}
			if worst > 1e-6 {
				t.Errorf("%s: recomputed SGD step differs by %.3g (relative)", param, worst)
			}
			checked++
		}
		if checked != 15 {
			t.Errorf("checked %d parameters, make_golden.py records 15", checked)
		}
	})
}

// TestGoldenTruncation cuts the golden files every 16 KiB: every prefix is an error.
func TestGoldenTruncation(t *testing.T) {
	for _, name := range []string{"golden/res2net_stem_layer1_legacy.pth", "golden/res2net_stem_layer1_zip.pth"} {
		b, err := os.ReadFile(golden.Path(t, name))
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < len(b); cut += 16 << 10 {
			if _, err := readBytes(b[:cut]); err == nil {
				t.Errorf("%s cut at %d: no error", name, cut)
			}
		}
		for cut := len(b) - 64; cut < len(b); cut++ {
			if _, err := readBytes(b[:cut]); err == nil {
				t.Errorf("%s cut at %d: no error", name, cut)
			}
		}
	}
}
