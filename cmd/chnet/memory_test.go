package main

import (
	"math"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/chnet/chnet/bench"
	"github.com/chnet/chnet/chnet/zoo"
)

// Sizes and batches that cannot fit were crashes (issue 9, case 7): --size 3000000000 panicked
// in makeslice, --size 100000 and a checkpoint recording input_size 100000 ran out of memory,
// --size 2048 --batch-size 64 was taken by the OOM killer after 45 s. Each is refused before
// anything is allocated, naming the flag, and a batch that does not fit comes with the largest
// one that would.
func TestSizesAndBatchesThatCannotFit(t *testing.T) {
	dataDir := tinyData(t, 4, 32, 21)
	base := func(args ...string) []string {
		return append([]string{"train", "--data", dataDir, "--out", filepath.Join(t.TempDir(), "r"), "--epochs", "1"}, args...)
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{base("--size", "3000000000"), exitUsage, []string{"--size", "--max-pixels"}},
		{base("--size", "100000"), exitUsage, []string{"--size", "--max-pixels"}},
		{base("--size", "64", "--sizes", "64,100000"), exitUsage, []string{"--sizes"}},
		// Past the engine's 2^31-1 elements per tensor, whatever the machine.
		{base("--size", "2048", "--batch-size", "64"), exitUnavailable, []string{"--batch-size 64", "--size 2048"}},
		// bench speed panicked in makeslice and ran out of memory the same way.
		{[]string{"bench", "speed", "--size", "3000000000"}, exitUsage, []string{"--size"}},
		{[]string{"bench", "flops", "--size", "3000000000"}, exitUsage, []string{"--size"}},
		{[]string{"bench", "speed", "--mode", "train", "--batch", "64", "--size", "1024"}, exitUnavailable, []string{"--batch 64", "would fit"}},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: %q does not say %q", tc.args, stderr, w)
			}
		}
	}

	// With 2 GiB of RAM, batch 64 at 256² does not fit; the batch suggested fits and one more
	// does not, by the same estimate measured here independently.
	defer func(f func() int64) {
		hostMemory = f
		debug.SetMemoryLimit(math.MaxInt64) // keepHeapUnder set it to the fake 2 GiB
	}(hostMemory)
	hostMemory = func() int64 { return 2 << 30 }
	code, _, stderr := runCLI(t, base("--size", "256", "--sizes", "256", "--batch-size", "64", "--workers", "1")...)
	m := regexp.MustCompile(`--batch-size (\d+) would fit`).FindStringSubmatch(stderr)
	if code != exitUnavailable || m == nil {
		t.Fatalf("batch 64 at 256² in 2 GiB: exit %d, %q; want %d suggesting a batch", code, stderr, exitUnavailable)
	}
	fit, _ := strconv.Atoi(m[1])
	spec := zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true, InputSize: 256}
	fp, err := bench.NewFootprint(spec, true)
	if err != nil {
		t.Fatal(err)
	}
	need := func(batch int) int64 {
		p, err := fp.Peak(batch, 256)
		if err != nil {
			t.Fatal(err)
		}
		data := 4*4*256*256 + int64(2*batch)*16*256*256 + fixedCost
		return int64(float64(p)*tensorMargin) + data
	}
	if need(fit) > 2<<30 || need(fit+1) <= 2<<30 {
		t.Errorf("suggested --batch-size %d: needs %d bytes, batch %d needs %d; the limit is %d", fit, need(fit), fit+1, need(fit+1), 2<<30)
	}

	// Prediction: a checkpoint recording a size past the pixel limit, and one whose size does
	// not fit in 2 GiB, are refused naming the checkpoint and --size.
	img := filepath.Join(dataDir, "images", "synth_0000.png")
	for _, tc := range []struct {
		inputSize, code int
	}{{100000, exitData}, {4096, exitUnavailable}} {
		ckpt := initCheckpoint(t, tc.inputSize)
		code, _, stderr := runCLI(t, "predict", "-m", ckpt, "-o", t.TempDir(), img)
		if code != tc.code || !strings.Contains(stderr, ckpt) || !strings.Contains(stderr, "--size") {
			t.Errorf("checkpoint with input_size %d: exit %d, want %d naming it and --size: %s", tc.inputSize, code, tc.code, stderr)
		}
	}
}
