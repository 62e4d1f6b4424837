package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
)

// rising is a validator whose Dice improves every call, so every epoch is the best so far.
type rising struct{ n int }

func (r *rising) Validate(ctx context.Context, _ ops.Backend, _ nn.Segmenter) (map[string]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.n++
	return map[string]float64{"dice": float64(r.n) / 10}, nil
}

func sameWeights(t *testing.T, what string, got, want map[string][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d values, want %d", what, k, len(g), len(w))
		}
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("%s: %s[%d] = %v, uninterrupted %v", what, k, i, g[i], w[i])
			}
		}
	}
}

// Ctrl-C after an epoch's last step — before validation or during it — once saved step =
// batches per epoch, which resuming then refused forever (issue 9, case 1). Now the resumed run
// finishes the epoch's end and matches an uninterrupted run bit for bit.
func TestInterruptAtEpochEndResumes(t *testing.T) {
	data := newMemData(4, 32, 2) // 2 batches per epoch
	const epochs = 2
	full := newTinyTrainer(t, t.TempDir(), data, epochs)
	full.Val = &rising{}
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := weights(t, full)

	for _, tc := range []struct {
		name  string
		point string
		nth   int
	}{
		{"after the last step", "step", 2},
		{"during validation", "validate", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := newTinyTrainer(t, dir, data, epochs)
			first.Val = &rising{}
			seen := 0
			first.Hook = func(_ context.Context, p string) {
				if p == tc.point {
					if seen++; seen == tc.nth {
						cancel()
					}
				}
			}
			if err := first.Run(ctx); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("interrupted run returned %v", err)
			}
			if first.State.Epoch != 0 || first.State.Step != 2 {
				t.Fatalf("saved epoch %d step %d, want epoch 0 (0-based) after its 2 steps", first.State.Epoch, first.State.Step)
			}
			second := newTinyTrainer(t, dir, data, epochs)
			second.Val = &rising{}
			if err := second.Resume(filepath.Join(dir, LatestName)); err != nil {
				t.Fatal(err)
			}
			if err := second.Run(context.Background()); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			sameWeights(t, "resumed", weights(t, second), want)
			rs, err := ReadRecords(filepath.Join(dir, "metrics.jsonl"))
			if err != nil || len(rs) != epochs || rs[0].Steps != 2 || rs[0].Images != 4 {
				t.Fatalf("metrics.jsonl: %+v (%v), want %d records, the first of 2 steps and 4 images", rs, err, epochs)
			}
		})
	}
}

// A kill while checkpoint_best or checkpoint_final was written left it missing or holding an
// older epoch, for good (issue 9, cases 3 and 4). Repair rebuilds each from checkpoint_latest
// when latest stands at the epoch the file must hold, and says so.
func TestRepairRebuildsBestAndFinal(t *testing.T) {
	data := newMemData(2, 32, 2)
	dir := t.TempDir()
	tr := newTinyTrainer(t, dir, data, 2)
	tr.Val = &rising{}
	// Keep epoch 1's best checkpoint aside: it plays the stale file a torn write leaves.
	var stale []byte
	tr.Hook = func(_ context.Context, p string) {
		if p == "save "+LatestName && tr.State.Epoch == 2 {
			stale, _ = os.ReadFile(filepath.Join(dir, BestName))
		}
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	latest, err := os.ReadFile(filepath.Join(dir, LatestName))
	if err != nil || stale == nil {
		t.Fatalf("latest: %v; stale best captured: %v", err, stale != nil)
	}
	linked := func(name string) bool {
		a, err1 := os.Stat(filepath.Join(dir, LatestName))
		b, err2 := os.Stat(filepath.Join(dir, name))
		return err1 == nil && err2 == nil && os.SameFile(a, b)
	}
	// The run's last epoch is its best: best and final are latest's file, not copies of it.
	if !linked(BestName) || !linked(FinalName) {
		t.Fatalf("best linked to latest: %v, final: %v; want both", linked(BestName), linked(FinalName))
	}
	// Best and final are hard links to latest (Trainer.linkLatest): a damaged one is a new file
	// in its place, as every writer of chnet's (atomicfile) and a killed one leave it. Written in
	// place, the damage would reach latest through the link too.
	replace := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func()
	}{
		{"final missing", func() { os.Remove(filepath.Join(dir, FinalName)) }},
		{"best from an older epoch", func() { replace(BestName, stale) }},
		{"final torn", func() { replace(FinalName, latest[:len(latest)/2]) }},
		{"both", func() {
			os.Remove(filepath.Join(dir, FinalName))
			replace(BestName, stale)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage()
			re := newTinyTrainer(t, dir, data, 2)
			if err := re.Resume(filepath.Join(dir, LatestName)); err != nil {
				t.Fatal(err)
			}
			notes, err := re.Repair()
			if err != nil || len(notes) == 0 {
				t.Fatalf("Repair: %q, %v", notes, err)
			}
			for _, name := range []string{BestName, FinalName} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || !bytes.Equal(b, latest) {
					t.Errorf("%s after repair: %d bytes (%v), want the %d bytes of latest", name, len(b), err, len(latest))
				}
				if !linked(name) {
					t.Errorf("%s after repair is not latest's file", name)
				}
			}
			if notes, err := re.Repair(); err != nil || len(notes) != 0 {
				t.Errorf("second Repair found more to do: %q, %v", notes, err)
			}
		})
	}
}

// nanFrom makes every image NaN from epoch `from` (0-based) on.
type nanFrom struct {
	TrainData
	from int
}

type nanIter struct {
	BatchIter
	nan bool
}

func (d nanFrom) Epoch(ctx context.Context, e, from int) (BatchIter, error) {
	it, err := d.TrainData.Epoch(ctx, e, from)
	return nanIter{it, e >= d.from}, err
}

func (it nanIter) Next() (Batch, bool, error) {
	b, ok, err := it.BatchIter.Next()
	if it.nan {
		b.Images = slices.Clone(b.Images)
		for i := range b.Images {
			b.Images[i] = float32(math.NaN())
		}
	}
	return b, ok, err
}

// The NaN-loss stop named checkpoint_latest even in epoch 1, before any existed (issue 9,
// case 10): it names it only when it exists.
func TestNonFiniteLossNamesOnlyACheckpointThatExists(t *testing.T) {
	for _, from := range []int{0, 1} {
		dir := t.TempDir()
		tr := newTinyTrainer(t, dir, nanFrom{newMemData(2, 32, 2), from}, 2)
		err := tr.Run(context.Background())
		if !errors.Is(err, ErrNonFinite) {
			t.Fatalf("NaN from epoch %d: %v", from+1, err)
		}
		latest := filepath.Join(dir, LatestName)
		_, statErr := os.Stat(latest)
		names := strings.Contains(err.Error(), latest)
		if names != (statErr == nil) || (from == 0) == (statErr == nil) {
			t.Errorf("NaN from epoch %d: %q; latest exists: %v", from+1, err, statErr == nil)
		}
	}
}
