package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/chnet/chnet/tensor"
)

// OfficialSizes are the per-batch multi-scale sizes of the official collate (reference.md §1.2).
var OfficialSizes = []int{224, 256, 288, 320, 352}

// rngStream separates the loader's random stream from other users of the same seed (weight
// init, splits), so changing one never shifts another.
const rngStream = 0x6c6f61646572 // "loader"

// Config is a loader's whole behaviour; TrainConfig and EvalConfig give the official settings.
type Config struct {
	BatchSize int    // samples per batch; the last batch of an epoch may be smaller
	Seed      uint64 // shuffling and augmentation
	BaseSize  int    // every sample is first resized to BaseSize² (official 352) and cached there
	Sizes     []int  // one drawn per batch; every sample of the batch is resized to it
	Shuffle   bool
	Augment   bool    // flip with FlipProb and rotation uniform in [−MaxAngle, MaxAngle)
	FlipProb  float64 // official 0.5
	MaxAngle  float64 // official 10 degrees
	Stats     Stats   // normalisation; zero means ImageNetStats
	Limits    Limits  // per-file decoding limits
	Workers   int     // goroutines decoding and augmenting; 0 means GOMAXPROCS
	Prefetch  int     // batches built ahead of the consumer; 0 means 2·Workers
	NoCache   bool    // decode every epoch instead of keeping base-size samples in memory
}

// TrainConfig is the official training pipeline: shuffled epochs, flip + rotation, per-batch
// multi-scale {224, …, 352}, base size 352, ImageNet statistics.
func TrainConfig(batch int, seed uint64) Config {
	return Config{BatchSize: batch, Seed: seed, BaseSize: 352, Sizes: OfficialSizes,
		Shuffle: true, Augment: true, FlipProb: 0.5, MaxAngle: 10, Stats: ImageNetStats}
}

// EvalConfig is the same preprocessing without randomness, at 352 and in dataset order.
func EvalConfig(batch int) Config {
	return Config{BatchSize: batch, BaseSize: 352, Sizes: []int{352}, Stats: ImageNetStats}
}

func (c *Config) fill() error {
	if c.BaseSize == 0 {
		c.BaseSize = 352
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{c.BaseSize}
	}
	if c.Stats == (Stats{}) {
		c.Stats = ImageNetStats
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 2 * c.Workers
	}
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("data: batch size must be at least 1, got %d", c.BatchSize)
	case c.BaseSize < 1:
		return fmt.Errorf("data: base size must be positive, got %d", c.BaseSize)
	case c.Augment && !(c.FlipProb >= 0 && c.FlipProb <= 1):
		return fmt.Errorf("data: flip probability must be in [0, 1], got %v", c.FlipProb)
	case c.Augment && !(c.MaxAngle >= 0 && c.MaxAngle <= 180):
		return fmt.Errorf("data: max rotation must be in [0, 180] degrees, got %v", c.MaxAngle)
	}
	for _, s := range c.Sizes {
		if s < 1 {
			return fmt.Errorf("data: batch sizes must be positive, got %v", c.Sizes)
		}
	}
	c.Sizes = slices.Clone(c.Sizes)
	return c.Stats.validate()
}

// Loader turns a dataset into batches. It is safe to run one epoch at a time.
type Loader struct {
	cfg   Config
	pairs []Pair
	table *[3][256]float32

	mu    []sync.Mutex // one per sample: two epochs never decode the same file twice at once
	cache []*base
	bytes atomic.Int64
}

// NewLoader checks cfg and prepares an empty cache.
func NewLoader(ds *Dataset, cfg Config) (*Loader, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if ds == nil || len(ds.Pairs) == 0 {
		return nil, errors.New("data: empty dataset")
	}
	l := &Loader{cfg: cfg, pairs: slices.Clone(ds.Pairs), table: cfg.Stats.table()}
	l.mu = make([]sync.Mutex, len(l.pairs))
	l.cache = make([]*base, len(l.pairs))
	return l, nil
}

// Config returns the effective configuration (defaults filled in).
func (l *Loader) Config() Config { return l.cfg }

// Len is the number of samples; Batches the number of batches per epoch (last one partial, as
// PyTorch's DataLoader without drop_last).
func (l *Loader) Len() int     { return len(l.pairs) }
func (l *Loader) Batches() int { return (len(l.pairs) + l.cfg.BatchSize - 1) / l.cfg.BatchSize }

// CacheBytes is the memory held by cached samples: 4·BaseSize² bytes each (352: 484 KiB).
func (l *Loader) CacheBytes() int64 { return l.bytes.Load() }

// sample returns sample i at the base size, from the cache or by decoding it.
func (l *Loader) sample(i int) (*base, error) {
	if l.cfg.NoCache {
		return l.load(i)
	}
	l.mu[i].Lock()
	defer l.mu[i].Unlock()
	if b := l.cache[i]; b != nil {
		return b, nil
	}
	b, err := l.load(i)
	if err != nil {
		return nil, err // not cached: the file may be fixed and the run resumed
	}
	l.cache[i] = b
	l.bytes.Add(b.bytes())
	return b, nil
}

func (l *Loader) load(i int) (*base, error) {
	p := l.pairs[i]
	img, m, err := LoadPair(p, l.cfg.Limits)
	if err != nil {
		return nil, err
	}
	b, err := toBase(img, m, l.cfg.BaseSize)
	if err != nil {
		return nil, fileErr(p.Image, err)
	}
	return b, nil
}

// Check decodes every sample (filling the cache), in parallel. Without skipBad, any failure is
// an error listing every bad file; with it, bad samples are removed from the loader and listed
// in the report. Call it before the first epoch: it changes Len.
func (l *Loader) Check(ctx context.Context, skipBad bool) (*Report, error) {
	errs := make([]error, len(l.pairs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.cfg.Workers)
	for i := range l.pairs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			_, errs[i] = l.sample(i)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep := &Report{}
	keep := l.pairs[:0:0]
	var keepIdx []int
	for i, err := range errs {
		if err != nil {
			rep.Bad = append(rep.Bad, err)
			continue
		}
		keep = append(keep, l.pairs[i])
		keepIdx = append(keepIdx, i)
	}
	rep.Pairs = len(keep)
	if len(rep.Bad) > 0 && !skipBad {
		return rep, fmt.Errorf("data: %d of %d samples cannot be used:\n%w",
			len(rep.Bad), len(l.pairs), errors.Join(rep.Bad...))
	}
	if len(keep) == 0 {
		return rep, errors.New("data: no usable samples")
	}
	if len(rep.Bad) > 0 {
		cache := make([]*base, len(keep))
		for j, i := range keepIdx {
			cache[j] = l.cache[i]
		}
		l.pairs, l.cache, l.mu = keep, cache, make([]sync.Mutex, len(keep))
	}
	return rep, nil
}

// Check decodes every pair of ds once without caching, for `chnet data check`: with skipBad it
// returns the dataset less the bad pairs, otherwise an error naming every bad file.
func Check(ctx context.Context, ds *Dataset, lim Limits, skipBad bool) (*Dataset, *Report, error) {
	cfg := EvalConfig(1)
	cfg.Limits, cfg.NoCache = lim, true
	l, err := NewLoader(ds, cfg)
	if err != nil {
		return nil, nil, err
	}
	rep, err := l.Check(ctx, skipBad)
	if err != nil {
		return nil, rep, err
	}
	return &Dataset{Dir: ds.Dir, Pairs: l.pairs}, rep, nil
}

// State is where a loader stands, for checkpoints: resuming from it yields exactly the batches
// an uninterrupted run would have produced next. It is plain JSON.
type State struct {
	Epoch int       `json:"epoch"`
	Batch int       `json:"batch"` // next batch to deliver within Epoch
	RNG   [2]uint64 `json:"rng"`   // generator state at the start of Epoch
	// The dataset shape the state belongs to, checked on resume.
	Samples   int `json:"samples"`
	BatchSize int `json:"batch_size"`
}

// epochRNG is the generator of one epoch. Each epoch has its own stream of the seed, so epoch
// e's batches depend only on (dataset, config, seed, e) — what train.TrainData asks for — and
// the saved RNG state doubles as a check that a resumed run uses the same seed.
func (l *Loader) epochRNG(epoch int) *tensor.RNG {
	return tensor.NewRNG(l.cfg.Seed, rngStream^uint64(epoch)*0x9e3779b97f4a7c15)
}

// StateAt is the state before batch `batch` of epoch `epoch`.
func (l *Loader) StateAt(epoch, batch int) State {
	return State{Epoch: epoch, Batch: batch, RNG: l.epochRNG(epoch).State(), Samples: len(l.pairs), BatchSize: l.cfg.BatchSize}
}

// Start is the state before the first epoch.
func (l *Loader) Start() State { return l.StateAt(0, 0) }

// plan is every random choice of one epoch, drawn up front from the epoch's generator in a
// fixed order on one goroutine, so workers only compute: batches are then bit-identical for any
// worker count or timing.
type plan struct {
	order []int // sample index per position
	sizes []int // output size per batch
	augs  []Aug // per position
}

// drawPlan consumes r in this order: permutation (if shuffling); then per batch the size index
// (if more than one size) followed by each sample's flip draw and angle draw (if augmenting).
func (l *Loader) drawPlan(r *tensor.RNG) plan {
	n, bs := len(l.pairs), l.cfg.BatchSize
	p := plan{augs: make([]Aug, n)}
	if l.cfg.Shuffle {
		p.order = r.Perm(n)
	} else {
		p.order = make([]int, n)
		for i := range p.order {
			p.order[i] = i
		}
	}
	for b := 0; b*bs < n; b++ {
		size := l.cfg.Sizes[0]
		if len(l.cfg.Sizes) > 1 {
			size = l.cfg.Sizes[r.Intn(len(l.cfg.Sizes))]
		}
		p.sizes = append(p.sizes, size)
		if !l.cfg.Augment {
			continue
		}
		for k := b * bs; k < min(n, (b+1)*bs); k++ {
			p.augs[k].Flip = r.Float64() < l.cfg.FlipProb
			p.augs[k].Angle = r.Uniform(-l.cfg.MaxAngle, l.cfg.MaxAngle)
			p.augs[k].Rotate = true
		}
	}
	return p
}

// Batch is one batch on the host, NCHW: Images [N,3,Size,Size], Masks [N,1,Size,Size] in [0,1].
type Batch struct {
	Epoch, Index int // epoch and batch number within it
	N, Size      int
	Images       []float32
	Masks        []float32
	Names        []string
}

type result struct {
	batch *Batch
	err   error
}

// Iterator delivers one epoch's batches in order, building up to Prefetch of them ahead.
type Iterator struct {
	l        *Loader
	epoch    int
	plan     plan
	next, nb int
	err      error // sticky, like flate's: once failed, always failed

	results []chan result
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	g       *errgroup.Group
	once    sync.Once
}

// Epoch starts delivering epoch st.Epoch from batch st.Batch. The caller must Close it (Next
// returning io.EOF closes it too). Cancelling ctx stops the workers.
func (l *Loader) Epoch(ctx context.Context, st State) (*Iterator, error) {
	if st.Samples != len(l.pairs) || st.BatchSize != l.cfg.BatchSize {
		return nil, fmt.Errorf("data: loader state is for %d samples in batches of %d, this loader has %d in batches of %d (dataset or --batch-size changed since the checkpoint)",
			st.Samples, st.BatchSize, len(l.pairs), l.cfg.BatchSize)
	}
	nb := l.Batches()
	if st.Batch < 0 || st.Batch >= nb || st.Epoch < 0 {
		return nil, fmt.Errorf("data: loader state at epoch %d batch %d, but an epoch has batches 0..%d", st.Epoch, st.Batch, nb-1)
	}
	r := l.epochRNG(st.Epoch)
	if r.State() != st.RNG {
		return nil, fmt.Errorf("data: loader state for epoch %d has RNG state %v, this loader's seed %d gives %v (was the run started with another --seed?)",
			st.Epoch, st.RNG, l.cfg.Seed, r.State())
	}
	it := &Iterator{l: l, epoch: st.Epoch, next: st.Batch, nb: nb}
	it.plan = l.drawPlan(r)
	it.results = make([]chan result, nb)
	for i := range it.results {
		it.results[i] = make(chan result, 1)
	}
	it.sem = make(chan struct{}, l.cfg.Prefetch)
	it.ctx, it.cancel = context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(it.ctx)
	it.g = g
	jobs := make(chan int)
	g.Go(func() error {
		defer close(jobs)
		for b := st.Batch; b < nb; b++ {
			select {
			case it.sem <- struct{}{}:
			case <-gctx.Done():
				return nil
			}
			select {
			case jobs <- b:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range min(l.cfg.Workers, nb-st.Batch) {
		g.Go(func() error {
			ws := newWorkspace(l.cfg.BaseSize)
			for b := range jobs {
				bt, err := it.build(gctx, b, ws)
				it.results[b] <- result{bt, err}
			}
			return nil
		})
	}
	return it, nil
}

func (it *Iterator) build(ctx context.Context, b int, ws *workspace) (*Batch, error) {
	l := it.l
	bs := l.cfg.BatchSize
	lo, hi := b*bs, min(len(l.pairs), (b+1)*bs)
	s := it.plan.sizes[b]
	n := hi - lo
	bt := &Batch{Epoch: it.epoch, Index: b, N: n, Size: s,
		Images: make([]float32, n*3*s*s), Masks: make([]float32, n*s*s), Names: make([]string, n)}
	for k := lo; k < hi; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i := it.plan.order[k]
		smp, err := l.sample(i)
		if err != nil {
			return nil, err
		}
		j := k - lo
		bt.Names[j] = l.pairs[i].Name
		img := bt.Images[j*3*s*s : (j+1)*3*s*s]
		mask := bt.Masks[j*s*s : (j+1)*s*s]
		if err := augment(smp, l.cfg.BaseSize, l.table, it.plan.augs[k], s, img, mask, ws); err != nil {
			return nil, fileErr(l.pairs[i].Image, err)
		}
	}
	return bt, nil
}

// Next returns the next batch, or io.EOF after the last one. An error is sticky.
func (it *Iterator) Next() (*Batch, error) {
	if it.err != nil {
		return nil, it.err
	}
	if it.next >= it.nb {
		it.Close()
		return nil, io.EOF
	}
	select {
	case r := <-it.results[it.next]:
		<-it.sem
		if r.err != nil {
			if ctxErr := it.ctx.Err(); ctxErr != nil && errors.Is(r.err, ctxErr) {
				r.err = ctxErr
			}
			it.err = r.err
			it.Close()
			return nil, r.err
		}
		it.next++
		return r.batch, nil
	case <-it.ctx.Done():
		it.err = it.ctx.Err()
		it.Close()
		return nil, it.err
	}
}

// State is the position after the last batch Next returned; after the last batch of an epoch
// it is the start of the next epoch.
func (it *Iterator) State() State {
	if it.next >= it.nb {
		return it.l.StateAt(it.epoch+1, 0)
	}
	return it.l.StateAt(it.epoch, it.next)
}

// Close stops the workers and waits for them. It is safe to call more than once.
func (it *Iterator) Close() error {
	it.once.Do(func() {
		it.cancel()
		_ = it.g.Wait()
	})
	return nil
}
