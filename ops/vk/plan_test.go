package vk

import (
	"reflect"
	"strings"
	"testing"

	"github.com/chnet/chnet/bench"
	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/vkrt"
)

// A planning device must count exactly what the real device does for the same steps: the same
// dispatches per kernel, barriers, submissions, host waits, bound bytes, multiply-adds and
// allocator peak. Both start fresh and see the same calls in the same order, so their arenas
// (and so the byte ranges the hazard tracker compares) evolve identically.
func TestPlanMatchesDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("CHNet training steps and inferences on lavapipe")
	}
	info := open(t).dev.Info
	plan, err := OpenPlan(info, vkrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	dev, err := Open(vkrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	for _, train := range []bool{true, false} {
		cfg := bench.PlanConfig{Model: zoo.Released(), Batch: 2, Size: 32, Train: train}
		got, err := bench.MeasurePlan(plan, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := bench.MeasurePlan(dev, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Planned || want.Planned {
			t.Fatalf("planned: %v and %v", got.Planned, want.Planned)
		}
		got.Planned, got.Device = want.Planned, want.Device
		if g, w := got.String(), want.String(); !reflect.DeepEqual(got, want) {
			t.Errorf("train %v: the plan counts (peak %d, reserved %d)\n%s\nthe device counts (peak %d, reserved %d)\n%s",
				train, got.PeakMemory, got.Reserved, g, want.PeakMemory, want.Reserved, w)
		}
		t.Logf("train %v, counted alike:\n%s", train, want)
	}
}

// bench speed --profile on lavapipe: every kernel of an inference is timed with GPU
// timestamps, with as many calls per step as the plan counts, and rates for both kinds.
func TestSpeedProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("CHNet inferences on lavapipe")
	}
	b := open(t)
	cfg := bench.SpeedConfig{Model: zoo.Released(), Batch: 1, Size: 32, Repeat: 1, Profile: true}
	r, err := bench.MeasureSpeed(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := OpenPlan(b.dev.Info, vkrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	want, err := bench.MeasurePlan(plan, bench.PlanConfig{Model: cfg.Model, Batch: 1, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]float64{}
	var share float64
	for _, row := range r.Profile {
		calls[row.Name] = row.Calls
		share += row.Share
		if row.Ms < 0 || (strings.HasPrefix(row.Name, "conv2d") && row.Ms > 0 && row.GFLOPs <= 0) {
			t.Errorf("row %+v", row)
		}
	}
	for _, k := range want.Kernels {
		if calls[k.Name] != float64(k.Calls) {
			t.Errorf("%s: %v calls profiled, %d planned", k.Name, calls[k.Name], k.Calls)
		}
	}
	if share < 0.999 || share > 1.001 || len(r.Profile) < len(want.Kernels) {
		t.Errorf("shares sum to %v over %d rows", share, len(r.Profile))
	}
}
