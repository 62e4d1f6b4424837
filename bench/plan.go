package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
)

// PlanConfig is one step to count: a network, batch, size and mode.
type PlanConfig struct {
	Model       zoo.Spec
	Batch, Size int
	Train       bool
	// Warmup steps run first so pipelines, resize tables and arena blocks exist and a training
	// step is in flight, as in the trainer's steady state (at least 2).
	Warmup int
}

// PlanResult is what one steady-state step costs on a Vulkan device, as its recorder and
// allocator count it (`chnet bench plan`).
type PlanResult struct {
	Mode    string   `json:"mode"`
	Model   zoo.Spec `json:"model"`
	Device  string   `json:"device"`
	Batch   int      `json:"batch"`
	Size    int      `json:"size"`
	Planned bool     `json:"planned"` // counted on a planning device (nothing executed)

	Dispatches int `json:"dispatches"`
	Barriers   int `json:"barriers"`
	Submits    int `json:"submits"`
	Copies     int `json:"copies"`
	HostWaits  int `json:"host_waits"`
	// Recorded counts the dispatches the host recorded in the step; the rest were replayed
	// from a capture (Replays of them).
	Recorded int `json:"recorded_dispatches"`
	Replays  int `json:"replays"`
	// MemoryBoundBytes sums the binding sizes of every dispatch of a kernel without
	// multiply-adds: for those (elementwise, batch norm, pooling, resize, reductions, SGD) the
	// bytes they read and write.
	MemoryBoundBytes int64 `json:"memory_bound_bytes"`
	// MACs are the useful multiply-adds of convolutions and matrix products.
	MACs int64 `json:"macs"`
	// PeakMemory is the allocator's high-water mark of device bytes handed out during the step
	// (parameters, optimiser state and batch included); Reserved is the arena's blocks then.
	PeakMemory int64         `json:"peak_memory_bytes"`
	Reserved   int64         `json:"reserved_memory_bytes"`
	Kernels    []KernelCount `json:"kernels"`
}

// KernelCount is one kernel's share of a step.
type KernelCount struct {
	Name  string `json:"name"`
	Calls int    `json:"calls"`
	Bytes int64  `json:"bytes"`
	MACs  int64  `json:"macs"`
}

// MeasurePlan runs cfg.Warmup steps and then one counted step of the network on b, which must
// be a Vulkan backend: a planning one (ops/vk.OpenPlan) to count a step without running it, or
// a real device, whose counts are the same.
func MeasurePlan(b ops.Backend, cfg PlanConfig) (*PlanResult, error) {
	vb, ok := b.(interface{ Device() *vkrt.Device })
	if !ok {
		return nil, fmt.Errorf("bench plan: the %s backend has no Vulkan recorder to count", b.Name())
	}
	if cfg.Batch < 1 || cfg.Size < 32 {
		return nil, fmt.Errorf("bench plan: batch %d, size %d out of range", cfg.Batch, cfg.Size)
	}
	cfg.Warmup = max(cfg.Warmup, 2)
	d := vb.Device()
	w, err := newWorkload(b, cfg.Model, cfg.Batch, cfg.Size, cfg.Train)
	if err != nil {
		return nil, err
	}
	defer w.release()
	for i := 0; i < cfg.Warmup; i++ {
		if err := w.step(); err != nil {
			return nil, fmt.Errorf("bench plan: warm-up step %d: %w", i+1, err)
		}
	}
	d.ResetMemoryPeak()
	before := d.Stats()
	if err := w.step(); err != nil {
		return nil, fmt.Errorf("bench plan: step: %w", err)
	}
	st := d.Stats().Sub(before)
	peak, reserved := d.MemoryPeak()
	if err := w.drain(); err != nil {
		return nil, err
	}
	res := &PlanResult{Mode: "infer", Model: cfg.Model, Device: d.Info.Name, Batch: cfg.Batch, Size: cfg.Size, Planned: d.Planning(),
		Dispatches: st.Dispatches, Barriers: st.Barriers, Submits: st.Submits, Copies: st.Copies, HostWaits: st.HostWaits,
		Recorded: st.Recorded, Replays: st.Replays,
		PeakMemory: peak, Reserved: reserved}
	if cfg.Train {
		res.Mode = "train"
	}
	for name, k := range st.Kernels {
		res.Kernels = append(res.Kernels, KernelCount{Name: name, Calls: k.Calls, Bytes: k.Bytes, MACs: k.MACs})
		if k.MACs > 0 {
			res.MACs += k.MACs
		} else {
			res.MemoryBoundBytes += k.Bytes
		}
	}
	sort.Slice(res.Kernels, func(i, j int) bool {
		a, b := res.Kernels[i], res.Kernels[j]
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		return a.Name < b.Name
	})
	return res, nil
}

// String is the plan as a short report.
func (r *PlanResult) String() string {
	var b strings.Builder
	kind := "device"
	if r.Planned {
		kind = "planned, nothing executed"
	}
	fmt.Fprintf(&b, "%s %s b%d %dx%d on %s (%s), one steady-state step:\n", r.Mode, r.Model.Arch, r.Batch, r.Size, r.Size, r.Device, kind)
	fmt.Fprintf(&b, "  dispatches %d, barriers %d, submits %d, copies %d, host waits %d\n", r.Dispatches, r.Barriers, r.Submits, r.Copies, r.HostWaits)
	fmt.Fprintf(&b, "  dispatches recorded by the host %d (%d replays of captured steps)\n", r.Recorded, r.Replays)
	fmt.Fprintf(&b, "  memory-bound traffic %.2f GB, multiply-adds %.1f G\n", float64(r.MemoryBoundBytes)/1e9, float64(r.MACs)/1e9)
	fmt.Fprintf(&b, "  peak device memory %.2f GiB in use (%.2f GiB reserved)\n", float64(r.PeakMemory)/(1<<30), float64(r.Reserved)/(1<<30))
	fmt.Fprintf(&b, "  %-26s %7s %12s %12s\n", "kernel", "calls", "GB", "GMAC")
	for _, k := range r.Kernels {
		fmt.Fprintf(&b, "  %-26s %7d %12.3f %12.3f\n", k.Name, k.Calls, float64(k.Bytes)/1e9, float64(k.MACs)/1e9)
	}
	return b.String()
}
