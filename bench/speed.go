package bench

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
)

// SpeedConfig is one speed measurement: a network, batch and size, warm-up and timed steps.
type SpeedConfig struct {
	Model          zoo.Spec
	Batch, Size    int
	Warmup, Repeat int
	Train          bool // a full training step (forward, loss, backward, SGD) or inference
	// Profile adds, after the timed steps, Repeat more steps timed per kernel with GPU
	// timestamps (Vulkan only).
	Profile bool
}

// SpeedResult is what `chnet bench speed` reports (and prints as JSON).
type SpeedResult struct {
	Mode        string    `json:"mode"` // "train" or "infer"
	Model       zoo.Spec  `json:"model"`
	Backend     string    `json:"backend"`
	Device      string    `json:"device"`
	Batch       int       `json:"batch"`
	Size        int       `json:"size"`
	Steps       []float64 `json:"step_ms"` // every timed step
	MedianMs    float64   `json:"median_ms"`
	MinMs       float64   `json:"min_ms"`
	MaxMs       float64   `json:"max_ms"`
	ImagesPerS  float64   `json:"images_per_s"` // at the median
	PeakMemory  int64     `json:"peak_memory_bytes"`
	MemoryWhere string    `json:"peak_memory_of"` // what PeakMemory measures
	// PeakInUse is the Vulkan arena's high-water mark of bytes handed out (0 on the CPU).
	PeakInUse int64        `json:"peak_memory_in_use_bytes,omitempty"`
	Profile   []ProfileRow `json:"profile,omitempty"`
	Time      string       `json:"time"`
}

// ProfileRow is one kernel's GPU time per step (bench speed --profile): calls, milliseconds,
// share of the step's kernel time, and its rate — GFLOP/s (2 per multiply-add) for kernels that
// declare multiply-adds, else GB/s of the bytes they bind.
type ProfileRow struct {
	Name   string  `json:"name"`
	Calls  float64 `json:"calls_per_step"`
	Ms     float64 `json:"ms_per_step"`
	Share  float64 `json:"share"`
	GFLOPs float64 `json:"gflop_per_s,omitempty"`
	GBs    float64 `json:"gb_per_s,omitempty"`
}

// MeasureSpeed builds the network with random weights on b and times steps on random inputs
// (values do not change the work). An inference ends with its result on the host. Training
// runs as the trainer does, one step in flight: each timed iteration records a step and waits
// for the previous one's loss, so in the steady state it lasts one step of device time (the
// first step is always untimed, so there is a previous one).
func MeasureSpeed(b ops.Backend, cfg SpeedConfig) (*SpeedResult, error) {
	if cfg.Batch < 1 || cfg.Size < 32 || cfg.Repeat < 1 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("bench speed: batch %d, size %d, repeat %d, warm-up %d out of range", cfg.Batch, cfg.Size, cfg.Repeat, cfg.Warmup)
	}
	if cfg.Train {
		cfg.Warmup = max(cfg.Warmup, 1)
	}
	w, err := newWorkload(b, cfg.Model, cfg.Batch, cfg.Size, cfg.Train)
	if err != nil {
		return nil, err
	}
	defer w.release()
	res := &SpeedResult{Mode: "infer", Model: cfg.Model, Backend: b.Name(), Device: deviceName(b), Batch: cfg.Batch, Size: cfg.Size, Time: time.Now().Format(time.RFC3339)}
	if cfg.Train {
		res.Mode = "train"
	}
	peak := newPeakMemory(b)
	for i := 0; i < cfg.Warmup+cfg.Repeat; i++ {
		start := time.Now()
		if err := w.step(); err != nil {
			return nil, fmt.Errorf("bench speed: step %d: %w", i+1, err)
		}
		ms := float64(time.Since(start).Microseconds()) / 1000
		peak.sample()
		if i >= cfg.Warmup {
			res.Steps = append(res.Steps, ms)
		}
	}
	if err := w.drain(); err != nil {
		return nil, err
	}
	if cfg.Profile {
		if res.Profile, err = profileSteps(b, w, cfg.Repeat); err != nil {
			return nil, err
		}
	}
	if d, ok := b.(interface{ Device() *vkrt.Device }); ok {
		res.PeakInUse, _ = d.Device().MemoryPeak()
	}
	sorted := append([]float64(nil), res.Steps...)
	sort.Float64s(sorted)
	res.MinMs, res.MaxMs = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		res.MedianMs = sorted[n/2]
	} else {
		res.MedianMs = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	res.ImagesPerS = float64(cfg.Batch) / (res.MedianMs / 1000)
	res.PeakMemory, res.MemoryWhere = peak.peak, peak.where
	return res, nil
}

// profileSteps runs n more steps with every dispatch timed and returns the per-step table.
func profileSteps(b ops.Backend, w *workload, n int) ([]ProfileRow, error) {
	vb, ok := b.(interface{ Device() *vkrt.Device })
	if !ok {
		return nil, fmt.Errorf("bench speed --profile: the %s backend has no GPU timestamps", b.Name())
	}
	d := vb.Device()
	if err := d.StartProfile(); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := w.step(); err != nil {
			d.StopProfile()
			return nil, fmt.Errorf("bench speed: profiled step %d: %w", i+1, err)
		}
	}
	if err := w.drain(); err != nil {
		d.StopProfile()
		return nil, err
	}
	times, err := d.StopProfile()
	if err != nil {
		return nil, err
	}
	var total float64
	for _, k := range times {
		total += k.Ns
	}
	rows := make([]ProfileRow, 0, len(times))
	for _, k := range times {
		r := ProfileRow{Name: k.Name, Calls: float64(k.Calls) / float64(n), Ms: k.Ns / 1e6 / float64(n)}
		if total > 0 {
			r.Share = k.Ns / total
		}
		if k.Ns > 0 {
			if k.MACs > 0 {
				r.GFLOPs = 2 * float64(k.MACs) / k.Ns
			} else {
				r.GBs = float64(k.Bytes) / k.Ns
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// workload is what bench measures: a step, run repeatedly, and drain, which waits for any step
// still in flight.
type workload struct {
	step, drain func() error
	// close frees the network, optimiser and batch, so that what a device holds after a
	// measurement does not depend on when the garbage collector frees them.
	close func()
}

// release waits for the device (an error then was reported by the step or drain that met it)
// and frees everything the workload made.
func (w *workload) release() {
	_ = w.drain()
	w.close()
}

// newWorkload builds the network with random weights on b, on a fixed random batch (values do
// not change the work). Its step is one inference, or one training step (forward, loss,
// backward, SGD) as the trainer runs them: recorded, then the previous step's loss read while
// this one runs.
func newWorkload(b ops.Backend, spec zoo.Spec, batch, size int, training bool) (*workload, error) {
	m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, spec)
	if err != nil {
		return nil, err
	}
	rng := tensor.NewRNG(1, 0)
	img := make([]float32, batch*3*size*size)
	for i := range img {
		img[i] = float32(rng.Normal())
	}
	mask := make([]float32, batch*size*size)
	for i := range mask {
		if rng.Float64() < 0.2 {
			mask[i] = 1
		}
	}
	x, err := ops.FromHost(b, img, batch, 3, size, size)
	if err != nil {
		return nil, err
	}
	y, err := ops.FromHost(b, mask, batch, 1, size, size)
	if err != nil {
		return nil, err
	}
	if !training {
		b.Release(y.Storage()) // inference needs no mask
		nn.SetTraining(m, false)
		return &workload{
			step: func() error {
				_, err := train.Predict(b, m, x)
				return err
			},
			drain: b.Sync,
			close: func() {
				nn.Release(b, m)
				b.Release(x.Storage())
			},
		}, nil
	}
	nn.SetTraining(m, true)
	// The official optimiser, at a small learning rate so random data cannot diverge.
	opt, err := train.NewSGD(b, m, ops.SGDParams{LR: 1e-4, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	if err != nil {
		return nil, err
	}
	var prev *train.PendingLoss
	settle := func() error {
		if prev == nil {
			return nil
		}
		_, err := prev.Wait()
		prev = nil
		return err
	}
	return &workload{
		step: func() error {
			p, err := train.StepAsync(b, m, opt, x, y, ops.StructureLossOfficial)
			if serr := settle(); serr != nil {
				return serr
			}
			prev = p
			return err
		},
		drain: func() error {
			if err := settle(); err != nil {
				return err
			}
			opt.ReleaseReplays() // their workspaces would count against later measurements
			return b.Sync()
		},
		close: func() {
			opt.Release()
			nn.Release(b, m) // what the optimiser does not hold: batch-norm statistics
			b.Release(x.Storage())
			b.Release(y.Storage())
		},
	}, nil
}

func deviceName(b ops.Backend) string {
	if d, ok := b.(interface{ Device() *vkrt.Device }); ok {
		return d.Device().Info.Name
	}
	return fmt.Sprintf("%s, %d cores", cpuModel(), runtime.NumCPU())
}

// cpuModel reads the processor name from /proc/cpuinfo where there is one.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// peakMemory tracks the largest memory footprint seen: the device arena's reserved bytes on
// Vulkan, the process's peak resident set (VmHWM) on the CPU.
type peakMemory struct {
	b     ops.Backend
	peak  int64
	where string
}

func newPeakMemory(b ops.Backend) *peakMemory {
	p := &peakMemory{b: b, where: "process peak resident memory (VmHWM)"}
	if _, ok := b.(interface{ Device() *vkrt.Device }); ok {
		p.where = "device memory reserved by the arena"
	}
	return p
}

func (p *peakMemory) sample() {
	if d, ok := p.b.(interface{ Device() *vkrt.Device }); ok {
		_, reserved := d.Device().MemoryInUse()
		p.peak = max(p.peak, reserved)
		return
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				p.peak = max(p.peak, kb*1024)
			}
		}
	}
}
