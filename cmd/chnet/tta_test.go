package main

import (
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// Issue 11, point 7: --tta's map is the mean of the map and the mirrored map of the mirrored
// image, exactly (and not the plain map: a random network is not mirror-symmetric).
func TestTTAIsTheMeanOfTheFlippedPredictions(t *testing.T) {
	b := cpu.New()
	const size = 32
	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(7, 0)}, zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true})
	if err != nil {
		t.Fatal(err)
	}
	nn.SetTraining(m, false)
	pix := make([]float32, 3*size*size)
	rng := tensor.NewRNG(8, 0)
	for i := range pix {
		pix[i] = float32(rng.Float64()*4 - 2)
	}
	plain := &loadedModel{m: m, size: size}
	p, err := plain.predict(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	q, err := plain.predict(b, flipW(pix, 3, size, size))
	if err != nil {
		t.Fatal(err)
	}
	q = flipW(q, 1, size, size)
	got, err := (&loadedModel{m: m, size: size, tta: true}).predict(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	differs := false
	for i := range got {
		if want := (p[i] + q[i]) / 2; got[i] != want {
			t.Fatalf("pixel %d: tta %v, want (%v + %v)/2 = %v", i, got[i], p[i], q[i], want)
		}
		differs = differs || got[i] != p[i]
	}
	if !differs {
		t.Fatal("the tta map equals the plain map: nothing was averaged")
	}
	// And from the command line.
	if code, _, stderr := runCLI(t, "predict", "-m", initCheckpoint(t, 32), "-o", t.TempDir(), "--tta", tinyData(t, 1, 32, 9)); code != 0 {
		t.Errorf("predict --tta: exit %d\n%s", code, stderr)
	}
	// flipW mirrors rows: [1 2 3; 4 5 6] → [3 2 1; 6 5 4].
	if f := flipW([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3); f[0] != 3 || f[2] != 1 || f[3] != 6 || f[5] != 4 {
		t.Errorf("flipW: %v", f)
	}
}
