package train

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/nn"
)

// checkpointSeeds are the checkpoints of a short tinyNet run (latest mid-epoch and finished,
// best, final), with their training state edited into what no run can be in.
func checkpointSeeds(f *testing.F) [][]byte {
	dir := f.TempDir()
	data := newMemData(4, 8, 2)
	tr := newTinyTrainer(f, dir, data, 2)
	tr.Val = &rising{}
	var seeds [][]byte
	tr.Hook = func(_ context.Context, p string) {
		if b, err := os.ReadFile(filepath.Join(dir, LatestName)); err == nil && p == "step" {
			seeds = append(seeds, b)
		}
	}
	if err := tr.Run(context.Background()); err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{LatestName, BestName, FinalName} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	good := seeds[len(seeds)-1]
	sf, err := safetensors.Parse(good)
	if err != nil {
		f.Fatal(err)
	}
	for _, st := range []string{`{"epoch":-1}`, `{"epoch":9}`, `{"epoch":2,"step":3}`, `{"epoch":1,"finished":true}`,
		`{"epoch":1,"has_best":true,"best_epoch":5}`, `{"epoch":1,"step":-4}`, `[]`} {
		meta := map[string]string{}
		for k, v := range sf.Metadata {
			meta[k] = v
		}
		meta["train_state"] = st
		var b bytes.Buffer
		if err := safetensors.Encode(&b, sf.Tensors, meta); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	return seeds
}

// FuzzCheckpoint: what --resume, test and predict read from a checkpoint — tensors, momentum,
// counters, the training state — never panics whatever the file holds, and a state that is
// accepted is one a run of its length can be in.
func FuzzCheckpoint(f *testing.F) {
	badinput.Corpus(f, "FuzzCheckpoint", checkpointSeeds(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := safetensors.Parse(b)
		if err != nil {
			return
		}
		ck, err := fromFile("fuzz.safetensors", sf)
		if err != nil {
			return
		}
		for _, set := range []map[string]nn.HostTensor{ck.Model.Tensors, ck.Momentum} {
			for name, h := range set {
				n := 1
				for _, d := range h.Shape {
					n *= d
				}
				if n != len(h.Data) {
					t.Fatalf("%s: shape %v but %d values", name, h.Shape, len(h.Data))
				}
			}
		}
		if ck.TrainState == nil {
			return
		}
		var st State
		if json.Unmarshal(ck.TrainState, &st) != nil {
			return
		}
		if err := st.check(2); err != nil {
			return
		}
		if st.Epoch < 0 || st.Epoch > 2 || st.Step < 0 || (st.HasBest && st.BestEpoch > st.Epoch) {
			t.Fatalf("accepted state %+v", st)
		}
	})
}

// FuzzReadRecords: metrics.jsonl is read on every resume and rewritten (TruncateRecords);
// whatever it holds, reading never panics and what is read can be written back.
func FuzzReadRecords(f *testing.F) {
	rec := func(e int, val bool) []byte {
		r := EpochRecord{Epoch: e, LR: 0.01, TrainLoss: 0.5, Steps: 2, Images: 4, Seconds: 1, ImagesPerSec: 4, Time: "2026-01-01T00:00:00Z"}
		if val {
			r.Val, r.Best = map[string]float64{"dice": 0.5, "loss": 0.3}, true
		}
		b, _ := json.Marshal(r)
		return append(b, '\n')
	}
	two := append(rec(1, true), rec(2, false)...)
	badinput.Corpus(f, "FuzzReadRecords", [][]byte{two, two[:len(two)-7], append(two, "{\"epoch\":"...), []byte("\n\n"),
		[]byte("{\"epoch\":1}\nnot json\n{\"epoch\":2}\n")})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := readRecords(bytes.NewReader(b), "metrics.jsonl")
		if err != nil {
			return
		}
		for _, r := range rs {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("record %+v read but cannot be written back: %v", r, err)
			}
		}
	})
}
