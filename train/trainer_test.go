package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// memData is a deterministic in-memory TrainData: random blobs, reshuffled per epoch from
// (seed, epoch) only.
type memData struct {
	images, masks [][]float32
	batch, size   int
	seed          uint64
}

func newMemData(n, size, batch int) *memData {
	d := &memData{batch: batch, size: size, seed: 5}
	rng := tensor.NewRNG(9, 0)
	for i := 0; i < n; i++ {
		img, mask := make([]float32, 3*size*size), make([]float32, size*size)
		cy, cx, r := rng.Intn(size), rng.Intn(size), 4+rng.Intn(size/3)
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				in := (y-cy)*(y-cy)+(x-cx)*(x-cx) < r*r
				for c := 0; c < 3; c++ {
					v := float32(rng.Normal()) * 0.5
					if in {
						v += 1
					}
					img[(c*size+y)*size+x] = v
				}
				if in {
					mask[y*size+x] = 1
				}
			}
		}
		d.images, d.masks = append(d.images, img), append(d.masks, mask)
	}
	return d
}

func (d *memData) BatchesPerEpoch() int { return (len(d.images) + d.batch - 1) / d.batch }

type memIter struct {
	d     *memData
	order []int
	pos   int
}

func (d *memData) Epoch(_ context.Context, epoch, from int) (BatchIter, error) {
	// As the real loader does, a start past the last batch is refused.
	if from < 0 || from >= d.BatchesPerEpoch() {
		return nil, fmt.Errorf("loader state at epoch %d batch %d, but an epoch has batches 0..%d", epoch, from, d.BatchesPerEpoch()-1)
	}
	return &memIter{d: d, order: tensor.NewRNG(d.seed, uint64(epoch)).Perm(len(d.images)), pos: from * d.batch}, nil
}

func (it *memIter) Next() (Batch, bool, error) {
	if it.pos >= len(it.order) {
		return Batch{}, false, nil
	}
	end := min(it.pos+it.d.batch, len(it.order))
	b := Batch{N: end - it.pos, Size: it.d.size}
	for _, i := range it.order[it.pos:end] {
		b.Images = append(b.Images, it.d.images[i]...)
		b.Masks = append(b.Masks, it.d.masks[i]...)
	}
	it.pos = end
	return b, true, nil
}

func (it *memIter) Close() {}

// cancelAfter cancels a context once a given number of batches has been handed out.
type cancelAfter struct {
	TrainData
	n      int
	cancel context.CancelFunc
}

type countingIter struct {
	BatchIter
	c *cancelAfter
}

func (c *cancelAfter) Epoch(ctx context.Context, e, from int) (BatchIter, error) {
	it, err := c.TrainData.Epoch(ctx, e, from)
	return &countingIter{it, c}, err
}

func (it *countingIter) Next() (Batch, bool, error) {
	if it.c.n == 0 {
		it.c.cancel()
	}
	it.c.n--
	return it.BatchIter.Next()
}

func newTrainer(t *testing.T, dir string, data TrainData, epochs int) *Trainer {
	t.Helper()
	b := cpu.New()
	m, err := chnet.New(nn.Init{B: b, RNG: tensor.NewRNG(3, 0)}, chnet.Released())
	if err != nil {
		t.Fatal(err)
	}
	cfg := OfficialConfig(epochs)
	cfg.LR = 0.01
	opt, err := NewSGD(b, m, ops.SGDParams{Momentum: float32(cfg.Momentum), WeightDecay: float32(cfg.WeightDecay), Nesterov: cfg.Nesterov})
	if err != nil {
		t.Fatal(err)
	}
	return &Trainer{B: b, Model: m, Opt: opt, Data: data, Cfg: cfg, Dir: dir, Log: io.Discard, Term: io.Discard}
}

func weights(t *testing.T, tr *Trainer) map[string][]float32 {
	st, err := nn.StateOf(tr.B, tr.Model)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for k, v := range st.Tensors {
		out[k] = v.Data
	}
	return out
}

// A run interrupted in the middle of an epoch and resumed from its checkpoint must end with
// exactly the weights (and running statistics) of an uninterrupted run.
func TestResumeAfterInterruptMatchesUninterrupted(t *testing.T) {
	data := newMemData(6, 32, 2) // 3 batches per epoch
	const epochs = 2

	full := newTrainer(t, t.TempDir(), data, epochs)
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := weights(t, full)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	first := newTrainer(t, dir, &cancelAfter{TrainData: data, n: 4, cancel: cancel}, epochs)
	if err := first.Run(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v", err)
	}
	if first.State.Epoch != 1 || first.State.Step != 1 {
		t.Fatalf("interrupted at epoch %d step %d, want epoch 1 (0-based) step 1", first.State.Epoch, first.State.Step)
	}
	second := newTrainer(t, dir, data, epochs)
	if err := second.Resume(filepath.Join(dir, LatestName)); err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := weights(t, second)
	for k, w := range want {
		g := got[k]
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", k, i, g[i], w[i])
			}
		}
	}
	rs, err := ReadRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil || len(rs) != epochs {
		t.Fatalf("metrics.jsonl: %d records (%v), want %d", len(rs), err, epochs)
	}
	if !second.State.Finished {
		t.Fatal("run not marked finished")
	}
	if err := second.Run(context.Background()); err == nil {
		t.Fatal("running a finished run again should be an error")
	}
}
