package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/chnet/chnet/bench"
	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
)

// Before a run allocates anything, its peak memory is estimated and a run that cannot fit is
// refused with the largest batch that would (issue 9, case 7: --size 2048 --batch-size 64 was
// taken by the OOM killer after 45 s with no message). The estimate is exact for tensors: the
// step runs on a backend that stores nothing but counts every allocation and release
// (bench.Footprint). To it come the data loader's cache and prefetched batches (host memory),
// and a margin for what tensors do not show: kernel scratch, arena fragmentation, the Go
// collector's headroom, which the memory limit set below keeps near 10%.
const (
	tensorMargin = 1.10
	fixedCost    = 256 << 20 // the binary, Go runtime, decoders, one full-size image in flight
)

// memoryLimits is what a run may use: host RAM and, on a Vulkan device, device memory.
type memoryLimits struct {
	host, device int64 // 0: unknown (no check)
	deviceName   string
}

// hostMemory is availableRAM; tests set it to give a run a known amount of memory.
var hostMemory = availableRAM

func limitsFor(b ops.Backend) memoryLimits {
	// What earlier work left (a finished run's data cache before its test) is returned to the
	// system first, so that it counts as available.
	debug.FreeOSMemory()
	l := memoryLimits{host: hostMemory()}
	if vb, ok := b.(interface{ Device() *vkrt.Device }); ok {
		d := vb.Device()
		for _, h := range d.Info.Heaps {
			if h.DeviceLocal {
				l.device = max(l.device, int64(h.Size))
			}
		}
		_, reserved := d.MemoryInUse()
		l.device -= reserved
		l.deviceName = d.Info.Name
	}
	return l
}

// keepHeapUnder makes the Go collector work harder as the process's memory nears what it holds
// now plus the host's available memory, instead of letting the heap reach twice the live data
// (Go's default), so that what the estimate admits does fit.
func keepHeapUnder(l memoryLimits) {
	if l.host > 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		debug.SetMemoryLimit(l.host + int64(ms.Sys-ms.HeapReleased))
	}
}

// availableRAM is the memory this process can still take: /proc/meminfo's MemAvailable, capped
// by the cgroup's limit less its usage (containers). 0 where unknown.
func availableRAM() int64 {
	avail := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					avail = kb << 10
				}
			}
		}
	}
	for _, c := range [][2]string{
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
		{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
	} {
		limit, lerr := readInt(c[0])
		used, uerr := readInt(c[1])
		if lerr == nil && uerr == nil && limit > 0 && limit < 1<<60 {
			if free := limit - used; avail == 0 || free < avail {
				avail = max(free, 0)
			}
		}
	}
	return avail
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// stepNeed is what a step needs at a batch: tensors on the device (the host for the CPU
// backend) and host memory for the data.
type stepNeed struct {
	tensors, data int64
	err           error // the step cannot be built at all (a tensor past the engine's limits)
}

// fitQuery is a batch of steps to check against memory, and how to name its flags.
type fitQuery struct {
	spec      zoo.Spec
	training  bool
	batch     int
	size      int
	what      string                // "--batch-size 64 at --size 2048", for messages
	batchFlag string                // the flag that sets the batch
	data      func(batch int) int64 // host bytes besides tensors
}

// checkFit refuses a step that cannot fit, naming the largest batch that would.
func checkFit(b ops.Backend, q fitQuery, log io.Writer) error {
	lim := limitsFor(b)
	keepHeapUnder(lim)
	if lim.host == 0 && lim.device == 0 {
		return nil
	}
	fp, err := bench.NewFootprint(q.spec, q.training)
	if err != nil {
		return err
	}
	need := func(batch int) stepNeed {
		peak, err := fp.Peak(batch, q.size)
		return stepNeed{tensors: int64(math.Ceil(float64(peak) * tensorMargin)), data: q.data(batch) + fixedCost, err: err}
	}
	fits := func(n stepNeed) bool {
		if n.err != nil {
			return false
		}
		if lim.device > 0 {
			return n.tensors <= lim.device && (lim.host == 0 || n.data <= lim.host)
		}
		return lim.host == 0 || n.tensors+n.data <= lim.host
	}
	n := need(q.batch)
	if fits(n) {
		where := "RAM"
		if lim.device > 0 {
			where = lim.deviceName
		}
		fmt.Fprintf(log, "memory: about %s for tensors and %s for data (%s)\n", gib(n.tensors), gib(n.data), where)
		return nil
	}
	// The peak grows with the batch: the largest batch that fits is found by bisection.
	lo, hi := 0, q.batch
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(need(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	var msg string
	switch {
	case n.err != nil:
		msg = fmt.Sprintf("%s cannot run: %v", q.what, n.err)
	case lim.device > 0 && n.tensors > lim.device:
		msg = fmt.Sprintf("%s needs about %s of device memory, %s has %s", q.what, gib(n.tensors), lim.deviceName, gib(lim.device))
	case lim.device > 0:
		msg = fmt.Sprintf("%s needs about %s of RAM for its data, %s available", q.what, gib(n.data), gib(lim.host))
	default:
		msg = fmt.Sprintf("%s needs about %s of RAM (tensors %s, data %s), %s available", q.what, gib(n.tensors+n.data), gib(n.tensors), gib(n.data), gib(lim.host))
	}
	if lo > 0 {
		return deviceErr(fmt.Errorf("%s; %s %d would fit", msg, q.batchFlag, lo))
	}
	if q.batchFlag == "" {
		return deviceErr(fmt.Errorf("%s", msg))
	}
	return deviceErr(fmt.Errorf("%s; even %s 1 would not fit: lower --size", msg, q.batchFlag))
}

// checkTrainMemory refuses a training run that cannot fit, naming the largest --batch-size
// that would.
func checkTrainMemory(b ops.Backend, rc runConfig, samples, workers int, log io.Writer) error {
	size := rc.Size
	for _, s := range rc.Sizes {
		size = max(size, s)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	what := fmt.Sprintf("--batch-size %d at --size %d", rc.BatchSize, size)
	if rc.Size != size {
		what = fmt.Sprintf("--batch-size %d at the largest of --sizes, %d", rc.BatchSize, size)
	}
	// The loader caches every sample at the base size (3+1 bytes a pixel) and builds up to
	// 2·workers batches ahead (16 bytes a pixel: image and mask as float32).
	cache := int64(samples) * 4 * int64(rc.Size) * int64(rc.Size)
	return checkFit(b, fitQuery{spec: rc.Model, training: true, batch: rc.BatchSize, size: size, what: what, batchFlag: "--batch-size",
		data: func(batch int) int64 { return cache + int64(2*workers)*int64(batch)*16*int64(size)*int64(size) }}, log)
}

// checkInferMemory refuses a prediction size that cannot fit; from names where size came from.
func checkInferMemory(b ops.Backend, spec zoo.Spec, size int, from string) error {
	return checkFit(b, fitQuery{spec: spec, batch: 1, size: size, what: fmt.Sprintf("%s: prediction at %d²", from, size),
		data: func(int) int64 { return 0 }}, io.Discard)
}
