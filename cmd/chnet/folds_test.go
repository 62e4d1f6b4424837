package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// Issue 11, point 6: --folds K silently dropped --test, and nothing used the K models together.
// Each fold's model is tested, then the folds as an ensemble, whose maps are what `chnet test`
// with the K checkpoints writes.
func TestFoldsWithTestAndEnsemble(t *testing.T) {
	dataDir, testDir := tinyData(t, 4, 32, 61), tinyData(t, 2, 32, 62)
	run := filepath.Join(t.TempDir(), "cv")
	code, _, stderr := runCLI(t, "train", "--data", dataDir, "--test", testDir, "--out", run, "--folds", "2", "--epochs", "1",
		"--batch-size", "2", "--size", "32", "--sizes", "32")
	if code != 0 {
		t.Fatalf("train --folds 2 --test: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"fold_0 (1 of 2)", "fold_1 (2 of 2)", "the ensemble of the 2 folds"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, f := range []string{"fold_0/test/data/metrics.json", "fold_1/test/data/metrics.json", "test/data/metrics.json", "folds.json"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("after cross-validation with --test: %v", err)
		}
	}
	out := filepath.Join(t.TempDir(), "ens")
	code, _, stderr = runCLI(t, "test", "-m", filepath.Join(run, "fold_0", train.FinalName), "-m", filepath.Join(run, "fold_1", train.FinalName), "-o", out, testDir)
	if code != 0 {
		t.Fatalf("test with two checkpoints: exit %d\n%s", code, stderr)
	}
	for _, n := range []string{"synth_0000.png", "synth_0001.png"} {
		a, err1 := os.ReadFile(filepath.Join(run, "test", "data", "maps", n))
		b, err2 := os.ReadFile(filepath.Join(out, "data", "maps", n))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: the run's ensemble map and test -m -m's differ (%v, %v)", n, err1, err2)
		}
	}
}

// An ensemble's map is the mean of its networks' maps, exactly.
func TestEnsembleIsTheMeanOfItsModels(t *testing.T) {
	b := cpu.New()
	const size = 32
	var ms []nn.Segmenter
	for seed := uint64(1); seed <= 2; seed++ {
		m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(seed, 0)}, zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true})
		if err != nil {
			t.Fatal(err)
		}
		nn.SetTraining(m, false)
		ms = append(ms, m)
	}
	pix := make([]float32, 3*size*size)
	rng := tensor.NewRNG(3, 0)
	for i := range pix {
		pix[i] = float32(rng.Float64()*4 - 2)
	}
	pa, err := (&loadedModel{m: ms[0], size: size}).predict(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := (&loadedModel{m: ms[1], size: size}).predict(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&loadedModel{m: ms[0], more: ms[1:], size: size}).predict(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	differ := false
	for i := range got {
		if want := (pa[i] + pb[i]) / 2; got[i] != want {
			t.Fatalf("pixel %d: ensemble %v, want (%v + %v)/2", i, got[i], pa[i], pb[i])
		}
		differ = differ || pa[i] != pb[i]
	}
	if !differ {
		t.Fatal("the two networks predict the same map: the test shows nothing")
	}
}
