package main

import (
	"bytes"
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// initCheckpoint writes an untrained CHNet checkpoint whose metadata records inputSize.
func initCheckpoint(t *testing.T, inputSize int) string {
	t.Helper()
	b := cpu.New()
	spec := zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true, InputSize: inputSize}
	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)}, spec)
	if err != nil {
		t.Fatal(err)
	}
	st, err := nn.StateOf(b, m)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "init.safetensors")
	if err := train.SaveCheckpoint(path, &train.Checkpoint{Model: st, ModelConfig: meta}, true); err != nil {
		t.Fatal(err)
	}
	return path
}

// predict -o naming the input folder once overwrote the images with maps, and x.png's mask
// overwrote an input named x_mask.png's map (issue 9, case 2).
func TestPredictNeverOverwritesItsInputs(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	os.Mkdir(images, 0o755)
	files := map[string][]byte{
		"a.png":      badinput.PNG(badinput.Noise(32, 32, 1)),
		"a_mask.png": badinput.PNG(badinput.Disc(32, 32)),
		"b.png":      badinput.PNG(badinput.Noise(32, 32, 2)),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(images, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func() {
		t.Helper()
		for n, want := range files {
			if got, err := os.ReadFile(filepath.Join(images, n)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("input %s was changed (%v)", n, err)
			}
		}
	}
	ckpt := initCheckpoint(t, 32)
	// Refused before anything is read or written.
	link := filepath.Join(dir, "link")
	os.Symlink(images, link)
	for _, args := range [][]string{
		{"predict", "-m", ckpt, "-o", images, images},
		{"predict", "-m", ckpt, "-o", link, images},
		{"predict", "-m", ckpt, "-o", images, filepath.Join(images, "a.png")},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "--out") {
			t.Errorf("%v: exit %d, want %d naming --out: %s", args, code, exitUsage, stderr)
		}
		unchanged()
	}
	// test writes OUT/<folder>/maps: arranged to be the images folder, it is refused.
	ds := filepath.Join(dir, "set")
	if err := os.MkdirAll(filepath.Join(ds, "masks"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ds, "masks", "b.png"), badinput.PNG(badinput.Disc(32, 32)), 0o644)
	if err := os.Symlink(images, filepath.Join(ds, "images")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(images, filepath.Join(dir, "maps")); err != nil {
		t.Fatal(err)
	}
	testOut := filepath.Join(dir, "testout")
	os.MkdirAll(testOut, 0o755)
	os.Symlink(dir, filepath.Join(testOut, "set"))
	if code, _, stderr := runCLI(t, "test", "-m", ckpt, "-o", testOut, ds); code != exitUsage || !strings.Contains(stderr, "--out") {
		t.Errorf("test writing its maps into the images folder: exit %d, want %d: %s", code, exitUsage, stderr)
	}
	unchanged()
	// a.png's mask and a_mask.png's map would be one file: both are left out and listed, b done.
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "predict", "-m", ckpt, "-o", out, "--threshold", "0.5", images)
	if code != exitData || !strings.Contains(stderr, "would both write") || !strings.Contains(stdout, "b.png") {
		t.Errorf("colliding outputs: exit %d, want %d listing them and doing b.png\n%s%s", code, exitData, stdout, stderr)
	}
	if es, _ := os.ReadDir(out); len(es) != 2 {
		t.Errorf("out holds %d files, want b.png and b_mask.png", len(es))
	}
	unchanged()
}

// JSON has no NaN: eval --format json failed outright on an all-foreground mask, where the
// MATLAB toolbox's specificity is 0/0 (issue 9, case 10). The undefined metric is null, the
// rest kept.
func TestEvalJSONWritesNullForUndefinedMetrics(t *testing.T) {
	dir := t.TempDir()
	pred, gt := filepath.Join(dir, "pred"), filepath.Join(dir, "gt")
	os.Mkdir(pred, 0o755)
	os.Mkdir(gt, 0o755)
	full := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range full.Pix {
		full.Pix[i] = 255
	}
	os.WriteFile(filepath.Join(gt, "x.png"), badinput.PNG(full), 0o644)
	os.WriteFile(filepath.Join(pred, "x.png"), badinput.PNG(badinput.Disc(16, 16)), 0o644)
	code, out, stderr := runCLI(t, "eval", "--pred", pred, "--gt", gt, "--convention", "matlab", "--format", "json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var res struct {
		All map[string]*float64 `json:"all"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	nulls, numbers := 0, 0
	for _, v := range res.All {
		if v == nil {
			nulls++
		} else {
			numbers++
		}
	}
	if nulls == 0 || numbers == 0 {
		t.Errorf("%d null and %d numeric metrics; want both\n%s", nulls, numbers, out)
	}
}
