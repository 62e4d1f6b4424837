package data

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthDir writes n synthetic w×h samples and lists them.
func synthDir(t testing.TB, n, w, h int) *Dataset {
	t.Helper()
	dir := t.TempDir()
	if err := WriteSynthetic(dir, n, w, h, 7); err != nil {
		t.Fatal(err)
	}
	ds, _, err := List(dir, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// smallTrain is the official recipe scaled down so tests stay fast on two cores.
func smallTrain(batch int, seed uint64) Config {
	c := TrainConfig(batch, seed)
	c.BaseSize, c.Sizes = 32, []int{16, 24, 32}
	return c
}

func collect(t *testing.T, l *Loader, st State, batches int) ([]*Batch, State) {
	t.Helper()
	it, err := l.Epoch(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []*Batch
	for len(out) < batches || batches < 0 {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out, it.State()
}

// run collects whole epochs from the start.
func run(t *testing.T, l *Loader, epochs int) []*Batch {
	st := l.Start()
	var all []*Batch
	for e := 0; e < epochs; e++ {
		bs, next := collect(t, l, st, -1)
		all = append(all, bs...)
		st = next
	}
	return all
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func equalBatches(t *testing.T, what string, got, want []*Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d batches, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Epoch != w.Epoch || g.Index != w.Index || g.N != w.N || g.Size != w.Size || !slices.Equal(g.Names, w.Names) {
			t.Fatalf("%s: batch %d is (e%d b%d n%d s%d %v), want (e%d b%d n%d s%d %v)", what, i,
				g.Epoch, g.Index, g.N, g.Size, g.Names, w.Epoch, w.Index, w.N, w.Size, w.Names)
		}
		if !sameBits(g.Images, w.Images) || !sameBits(g.Masks, w.Masks) {
			t.Fatalf("%s: batch %d pixels differ", what, i)
		}
	}
}

func TestLoaderDeterministic(t *testing.T) {
	ds := synthDir(t, 11, 48, 40)
	variants := []struct {
		name              string
		workers, prefetch int
		noCache           bool
	}{
		{"1_worker", 1, 1, false},
		{"4_workers", 4, 3, false},
		{"4_workers_no_cache", 4, 8, true},
	}
	var ref []*Batch
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cfg := smallTrain(4, 42)
			cfg.Workers, cfg.Prefetch, cfg.NoCache = v.workers, v.prefetch, v.noCache
			l, err := NewLoader(ds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, l, 2)
			if ref == nil {
				ref = got
				return
			}
			equalBatches(t, v.name+" vs 1 worker", got, ref)
		})
	}
	t.Run("other_seed_differs", func(t *testing.T) {
		l, err := NewLoader(ds, smallTrain(4, 43))
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, l, 1)
		if slices.Equal(got[0].Names, ref[0].Names) && sameBits(got[0].Images, ref[0].Images) {
			t.Fatal("seeds 42 and 43 gave the same first batch")
		}
	})
	t.Run("epochs_differ", func(t *testing.T) {
		if sameBits(ref[0].Images, ref[3].Images) {
			t.Fatal("epoch 1 repeated epoch 0's first batch")
		}
	})
}

func TestLoaderBatches(t *testing.T) {
	ds := synthDir(t, 11, 48, 40)
	l, err := NewLoader(ds, smallTrain(4, 1))
	if err != nil {
		t.Fatal(err)
	}
	if l.Batches() != 3 {
		t.Fatalf("Batches = %d, want 3 (4+4+3, last kept)", l.Batches())
	}
	all := run(t, l, 3)
	sizes := map[int]bool{}
	for e := 0; e < 3; e++ {
		var names []string
		for i, b := range all[3*e : 3*e+3] {
			wantN := 4
			if i == 2 {
				wantN = 3
			}
			if b.N != wantN || b.Epoch != e || b.Index != i {
				t.Fatalf("epoch %d batch %d: N %d epoch %d index %d", e, i, b.N, b.Epoch, b.Index)
			}
			if !slices.Contains(l.Config().Sizes, b.Size) {
				t.Fatalf("size %d not in %v", b.Size, l.Config().Sizes)
			}
			sizes[b.Size] = true
			if len(b.Images) != b.N*3*b.Size*b.Size || len(b.Masks) != b.N*b.Size*b.Size {
				t.Fatalf("layout: %d images %d masks for N=%d S=%d", len(b.Images), len(b.Masks), b.N, b.Size)
			}
			for _, v := range b.Masks {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("mask value %v outside [0,1]", v)
				}
			}
			names = append(names, b.Names...)
		}
		slices.Sort(names)
		if !slices.Equal(names, ds.Names()) {
			t.Fatalf("epoch %d did not see every sample once: %v", e, names)
		}
	}
	if len(sizes) < 2 {
		t.Errorf("9 batches all drew the same size: %v", sizes)
	}
	if slices.Equal(all[0].Names, all[3].Names) && slices.Equal(all[3].Names, all[6].Names) {
		t.Error("three epochs in the same order: not shuffled")
	}
	if want := int64(11 * 4 * 32 * 32); l.CacheBytes() != want {
		t.Errorf("CacheBytes = %d, want %d", l.CacheBytes(), want)
	}
}

// TestLoaderResume: stopping after k batches, saving the state as JSON and resuming in a fresh
// loader (empty cache, different worker count) yields exactly the uninterrupted batches.
func TestLoaderResume(t *testing.T) {
	ds := synthDir(t, 13, 40, 40)
	cfg := smallTrain(3, 9)
	ref, err := NewLoader(ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, ref, 2) // 5 + 5 batches
	for _, stopAt := range []int{1, 2, 4, 5} {
		a, _ := NewLoader(ds, cfg)
		got, st := collect(t, a, a.Start(), stopAt)
		b64, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b64, &back); err != nil {
			t.Fatal(err)
		}
		cfg2 := cfg
		cfg2.Workers = 3
		b, _ := NewLoader(ds, cfg2)
		for len(got) < len(want) {
			more, next := collect(t, b, back, -1)
			got = append(got, more...)
			back = next
		}
		equalBatches(t, "resumed", got, want)
	}
	// The trainer's adapter reaches the same batches through (epoch, from).
	td := TrainData{ref}
	it, err := td.Epoch(context.Background(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for i := 7; ; i++ {
		b, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if i != 10 {
				t.Fatalf("adapter ended after batch %d", i)
			}
			break
		}
		if !sameBits(b.Images, want[i].Images) || !sameBits(b.Masks, want[i].Masks) || b.N != want[i].N || b.Size != want[i].Size {
			t.Fatalf("adapter batch %d differs", i)
		}
	}
}

func TestLoaderStateMismatch(t *testing.T) {
	ds := synthDir(t, 5, 16, 16)
	l, _ := NewLoader(ds, smallTrain(2, 1))
	other, _ := NewLoader(ds, smallTrain(2, 2))
	st := l.Start()
	cases := []struct {
		name string
		st   State
		want string
	}{
		{"other_seed", other.Start(), "another --seed"},
		{"other_batch_size", State{Samples: 5, BatchSize: 3}, "batches of 3"},
		{"batch_past_end", State{Batch: 3, RNG: st.RNG, Samples: 5, BatchSize: 2}, "batch 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Epoch(context.Background(), tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestEvalPipeline checks the no-augmentation path against the steps written out here:
// resize raw RGB to the base size, round to bytes, normalise in float64; masks resized as 0/1.
func TestEvalPipeline(t *testing.T) {
	ds := synthDir(t, 3, 45, 37)
	for _, out := range []int{32, 20} {
		cfg := EvalConfig(2)
		cfg.BaseSize, cfg.Sizes, cfg.Stats = 32, []int{out}, TrainScriptStats
		l, err := NewLoader(ds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := collect(t, l, l.Start(), 1)
		for j, name := range b[0].Names {
			if name != ds.Pairs[j].Name {
				t.Fatalf("eval order %v", b[0].Names)
			}
			img, m, err := LoadPair(ds.Pairs[j], Limits{})
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]float32, 3*32*32)
			if err := Resize(raw, 32, 32, planarFloat(img), img.W, img.H, 3); err != nil {
				t.Fatal(err)
			}
			base := make([]float32, 3*32*32)
			for i, v := range raw {
				c := i / (32 * 32)
				q := math.RoundToEven(math.Min(math.Max(float64(v), 0), 255))
				base[i] = float32((q - TrainScriptStats.Mean[c]) / TrainScriptStats.Std[c])
			}
			want := make([]float32, 3*out*out)
			if err := Resize(want, out, out, base, 32, 32, 3); err != nil {
				t.Fatal(err)
			}
			if !sameBits(b[0].Images[j*3*out*out:(j+1)*3*out*out], want) {
				t.Fatalf("size %d sample %d: image differs from the written-out pipeline", out, j)
			}
			mf := make([]float32, len(m.Pix))
			for i, v := range m.Pix {
				mf[i] = float32(v)
			}
			mb := make([]float32, 32*32)
			Resize(mb, 32, 32, mf, m.W, m.H, 1)
			for i, v := range mb {
				mb[i] = float32(math.RoundToEven(float64(v*255))) / 255
			}
			wantM := make([]float32, out*out)
			Resize(wantM, out, out, mb, 32, 32, 1)
			if !sameBits(b[0].Masks[j*out*out:(j+1)*out*out], wantM) {
				t.Fatalf("size %d sample %d: mask differs", out, j)
			}
		}
	}
}

// TestAugment checks flip and rotation against their definitions on a small base sample.
func TestAugment(t *testing.T) {
	const s = 8
	b := &base{img: make([]uint8, 3*s*s), mask: make([]uint8, s*s)}
	for i := range b.img {
		b.img[i] = uint8(i * 7)
	}
	for i := range b.mask {
		b.mask[i] = uint8(255 * btoi(i%s < 3))
	}
	tab := ImageNetStats.table()
	ws := newWorkspace(s)
	plain := func(a Aug) ([]float32, []float32) {
		img, mask := make([]float32, 3*s*s), make([]float32, s*s)
		if err := augment(b, s, tab, a, s, img, mask, ws); err != nil {
			t.Fatal(err)
		}
		return img, mask
	}
	id, idM := plain(Aug{})
	for c := 0; c < 3; c++ {
		for i := 0; i < s*s; i++ {
			if want := float32((float64(b.img[c*s*s+i]) - ImageNetStats.Mean[c]) / ImageNetStats.Std[c]); id[c*s*s+i] != want {
				t.Fatalf("normalised [%d,%d] = %v, want %v", c, i, id[c*s*s+i], want)
			}
		}
	}
	fl, flM := plain(Aug{Flip: true})
	for c := 0; c < 3; c++ {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				if fl[(c*s+y)*s+x] != id[(c*s+y)*s+s-1-x] {
					t.Fatalf("flip: [%d,%d,%d]", c, y, x)
				}
			}
		}
	}
	if flM[0] != 0 || flM[s-1] != 1 || idM[0] != 1 {
		t.Fatalf("mask flip: %v / %v", idM[:s], flM[:s])
	}
	// Rotation by 90° about the centre (4, 4) maps columns to rows exactly (OpenCV rotates
	// counter-clockwise on screen: dst(x, y) = src(s − y, x) here, with zeros where s − y = 8).
	rot, rotM := plain(Aug{Rotate: true, Angle: 90})
	for y := 0; y < s; y++ {
		for x := 0; x < s; x++ {
			sx, sy := s-y, x
			want := float32(0)
			if sx < s {
				want = id[sy*s+sx]
			}
			if math.Abs(float64(rot[y*s+x]-want)) > 1e-6 {
				t.Fatalf("rot90 [%d,%d] = %v, want %v", y, x, rot[y*s+x], want)
			}
		}
	}
	if rotM[0] != 0 { // source column 8 is outside: mask border is 0
		t.Fatalf("rotated mask border %v", rotM[0])
	}
}

func TestDrawPlanDistribution(t *testing.T) {
	l := &Loader{cfg: TrainConfig(16, 3), pairs: make([]Pair, 4000)}
	if err := l.cfg.fill(); err != nil {
		t.Fatal(err)
	}
	p := l.drawPlan(l.epochRNG(0))
	flips, lo, hi := 0, 0, 0
	for _, a := range p.augs {
		if !a.Rotate || a.Angle < -10 || a.Angle >= 10 {
			t.Fatalf("angle %v (rotate %v) outside [-10, 10)", a.Angle, a.Rotate)
		}
		flips += btoi(a.Flip)
		lo += btoi(a.Angle < -5)
		hi += btoi(a.Angle >= 5)
	}
	// Binomial(4000, 0.5) has σ ≈ 32; Binomial(4000, 0.25) σ ≈ 27: 5σ bounds.
	if flips < 1840 || flips > 2160 || lo < 865 || lo > 1135 || hi < 865 || hi > 1135 {
		t.Fatalf("flips %d, angles < -5: %d, ≥ 5: %d", flips, lo, hi)
	}
	count := map[int]int{}
	for _, s := range p.sizes {
		count[s]++
	}
	for _, s := range OfficialSizes {
		if count[s] < 20 { // 250 batches, 50 expected each
			t.Fatalf("size counts %v", count)
		}
	}
	sorted := slices.Sorted(slices.Values(p.order))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("order is not a permutation of 0..%d", len(sorted)-1)
		}
	}
}

func TestLoaderCancel(t *testing.T) {
	ds := synthDir(t, 12, 64, 64)
	before := runtime.NumGoroutine()
	cfg := smallTrain(1, 5)
	cfg.Workers, cfg.Prefetch = 2, 2
	l, _ := NewLoader(ds, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	it, err := l.Epoch(ctx, l.Start())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	var got error
	for i := 0; i < 12 && got == nil; i++ {
		_, got = it.Next()
	}
	if !errors.Is(got, context.Canceled) {
		t.Fatalf("after cancel: %v", got)
	}
	if _, err := it.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("error not sticky: %v", err)
	}
	it.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running (%d before)", n, before)
	}
}

func TestLoaderBadFiles(t *testing.T) {
	ds := synthDir(t, 6, 24, 24)
	bad := ds.Pairs[2].Image
	writeFile(t, bad, []byte("not a png"))
	cfg := smallTrain(2, 1)
	t.Run("next_names_the_file", func(t *testing.T) {
		l, _ := NewLoader(ds, cfg)
		it, _ := l.Epoch(context.Background(), l.Start())
		defer it.Close()
		var err error
		for err == nil {
			_, err = it.Next()
		}
		if err == io.EOF || !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("check_lists_every_bad_file", func(t *testing.T) {
		bad2 := ds.Pairs[4].Masks[0]
		good := encodePNG(t, grey(5, 5, func(x, y int) uint8 { return 0 }))
		writeFile(t, bad2, good) // wrong size for its 24×24 image
		defer writeFile(t, bad2, encodePNG(t, grey(24, 24, func(x, y int) uint8 { return 0 })))
		_, rep, err := Check(context.Background(), ds, Limits{}, false)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), bad2) || !strings.Contains(err.Error(), "2 of 6") {
			t.Fatalf("err = %v", err)
		}
		kept, rep, err := Check(context.Background(), ds, Limits{}, true)
		if err != nil || len(kept.Pairs) != 4 || len(rep.Bad) != 2 || rep.Pairs != 4 {
			t.Fatalf("skip: %v %+v", err, rep)
		}
		if !strings.Contains(rep.String(), "2 undecodable") {
			t.Fatalf("report: %s", rep)
		}
	})
	t.Run("loader_check_skip", func(t *testing.T) {
		l, _ := NewLoader(ds, cfg)
		rep, err := l.Check(context.Background(), true)
		if err != nil || l.Len() != 5 || len(rep.Bad) != 1 {
			t.Fatalf("%v len %d %+v", err, l.Len(), rep)
		}
		bs := run(t, l, 1)
		if len(bs) != 3 || l.CacheBytes() != 5*4*32*32 {
			t.Fatalf("%d batches, cache %d", len(bs), l.CacheBytes())
		}
	})
}

func TestConfigErrors(t *testing.T) {
	ds := &Dataset{Pairs: []Pair{{Name: "a"}}}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"batch_0", func(c *Config) { c.BatchSize = 0 }, "batch size"},
		{"size_0", func(c *Config) { c.Sizes = []int{224, 0} }, "positive"},
		{"flip_2", func(c *Config) { c.FlipProb = 2 }, "flip"},
		{"std_0", func(c *Config) { c.Stats.Std[1] = 0 }, "std"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := TrainConfig(4, 1)
			tc.edit(&c)
			if _, err := NewLoader(ds, c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := NewLoader(&Dataset{}, TrainConfig(4, 1)); err == nil {
		t.Fatal("empty dataset accepted")
	}
}
