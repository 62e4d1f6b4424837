package main

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11, point 9: test wrote ./test-results and predict ./predictions into the current
// directory, replacing earlier results silently, and model flags were ignored for chnet
// checkpoints. Without --out, results go beside the checkpoint (into its run folder); earlier
// results are replaced only with --force; predict reads a data set folder as test does.
func TestOutputsBesideTheCheckpoint(t *testing.T) {
	run := t.TempDir()
	ckpt := filepath.Join(run, "checkpoint_best.safetensors")
	if err := os.Rename(initCheckpoint(t, 32), ckpt); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(run, "config.json"), []byte("{}\n"), 0o644)
	ds := tinyData(t, 2, 32, 31)
	cwd := t.TempDir()
	t.Chdir(cwd)

	for _, tc := range []struct {
		args  []string
		wrote string
	}{
		{[]string{"test", "-m", ckpt, ds}, filepath.Join(run, "test-best", "data", "metrics.json")},
		{[]string{"predict", "-m", ckpt, ds}, filepath.Join(run, "predictions-best", "synth_0000.png")},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(stderr, "writing to "+filepath.Dir(strings.TrimSuffix(tc.wrote, "/data/metrics.json"))) {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, stderr)
		}
		st, err := os.Stat(tc.wrote)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		// Again: refused, naming --force, and nothing replaced; with --force, replaced.
		code, _, stderr = runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, "--force") {
			t.Errorf("%v again: exit %d, want %d naming --force\n%s", tc.args, code, exitUsage, stderr)
		}
		if st2, err := os.Stat(tc.wrote); err != nil || !os.SameFile(st, st2) {
			t.Errorf("%v: the refused run replaced %s", tc.args, tc.wrote)
		}
		if code, _, stderr := runCLI(t, append(tc.args[:1:1], append([]string{"--force"}, tc.args[1:]...)...)...); code != 0 {
			t.Errorf("%v --force: exit %d\n%s", tc.args, code, stderr)
		}
	}
	if es, _ := os.ReadDir(cwd); len(es) != 0 {
		t.Errorf("test and predict wrote into the current directory: %v", es)
	}
	// A checkpoint outside a run folder: beside it, named by its file.
	other := filepath.Join(t.TempDir(), "mine.safetensors")
	os.Rename(initCheckpoint(t, 32), other)
	if code, _, stderr := runCLI(t, "predict", "-m", other, filepath.Join(ds, "images", "synth_0001.png")); code != 0 {
		t.Fatalf("predict beside a lone checkpoint: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(other), "predictions-mine", "synth_0001.png")); err != nil {
		t.Error(err)
	}
	// Model flags: one describing another network is refused; --literal-head is honoured.
	for _, args := range [][]string{{"--arch", "unet"}, {"--head-width", "128"}, {"--backbone", "v1b"}} {
		code, _, stderr := runCLI(t, append(append([]string{"predict", "-m", ckpt, "-o", t.TempDir()}, args...), ds)...)
		if code != exitUsage || !strings.Contains(stderr, args[0]) {
			t.Errorf("predict %v on a chnet checkpoint: exit %d, want %d naming it\n%s", args, code, exitUsage, stderr)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	if code, _, stderr := runCLI(t, "predict", "-m", ckpt, "-o", a, ds); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLI(t, "predict", "-m", ckpt, "-o", b, "--literal-head", ds); code != 0 {
		t.Fatalf("--literal-head: %s", stderr)
	}
	// The literal head computes the same function: the 8-bit maps agree within one level.
	ga, gb := readGrey(t, filepath.Join(a, "synth_0000.png")), readGrey(t, filepath.Join(b, "synth_0000.png"))
	if len(ga.Pix) != len(gb.Pix) || len(ga.Pix) == 0 {
		t.Fatalf("maps of %d and %d pixels", len(ga.Pix), len(gb.Pix))
	}
	for i := range ga.Pix {
		if d := int(ga.Pix[i]) - int(gb.Pix[i]); d > 1 || d < -1 {
			t.Fatalf("pixel %d: %d factorized, %d literal", i, ga.Pix[i], gb.Pix[i])
		}
	}
}

func readGrey(t *testing.T, path string) *image.Gray {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	g, ok := m.(*image.Gray)
	if !ok {
		t.Fatalf("%s: %T, want 8-bit grey", path, m)
	}
	return g
}
