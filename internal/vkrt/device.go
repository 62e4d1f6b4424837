package vkrt

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// MaxBindings is the most storage buffers one kernel binds (batch norm's fused gradient sums
// bind ten; desktop GPUs and lavapipe allow far more per stage).
const MaxBindings = C.CHN_MAX_BINDINGS

// MaxPush is the push-constant block size every pipeline layout declares: the portable minimum
// of maxPushConstantsSize, so one layout per binding count serves every kernel.
const MaxPush = C.CHN_MAX_PUSH

// Options configure Open.
type Options struct {
	// Device is an index or a name substring (see Choose); empty picks the best device.
	Device string
	// Validation runs the Khronos validation layer with synchronization validation; messages
	// are collected (ValidationMessages).
	Validation bool
	// Timeout bounds each wait for submitted work; 0 means $CHNET_VK_TIMEOUT (a Go duration)
	// or 2 minutes. A wait that runs out becomes ErrTimeout naming the last kernels.
	Timeout time.Duration
	// NoPushDescriptor uses pooled descriptor sets even where VK_KHR_push_descriptor exists.
	NoPushDescriptor bool
	// MaxDispatchesPerSubmit closes and submits a command buffer after this many dispatches
	// (0: 256), so the GPU starts while the host keeps recording.
	MaxDispatchesPerSubmit int
	// DebugNoBarriers records no hazard barriers at all. Results are then wrong; it exists so a
	// test can show that synchronization validation catches missing barriers.
	DebugNoBarriers bool
	// Bisecting aids for a result suspected of a synchronisation or reuse bug: if it changes under
	// one of them, look for a missing barrier or a range reused too early; if it does not, the
	// recorder and the arena are not the cause. DebugBarrierEach records a full barrier before
	// every command; DebugSyncEach submits and waits after every command; DebugNoReuse never hands
	// out a freed range again (device memory only grows: short runs). $CHNET_VK_DEBUG, a
	// comma-separated list of "barrier", "sync" and "noreuse", turns them on in any program or test.
	DebugBarrierEach, DebugSyncEach, DebugNoReuse bool
}

// debugEnv adds the switches named in $CHNET_VK_DEBUG to opts.
func (opts *Options) debugEnv() error {
	v := os.Getenv("CHNET_VK_DEBUG")
	if v == "" {
		return nil
	}
	for _, w := range strings.Split(v, ",") {
		switch strings.TrimSpace(w) {
		case "barrier":
			opts.DebugBarrierEach = true
		case "sync":
			opts.DebugSyncEach = true
		case "noreuse":
			opts.DebugNoReuse = true
		case "":
		default:
			return fmt.Errorf("vkrt: CHNET_VK_DEBUG=%s: unknown switch %q (have barrier, sync, noreuse)", v, w)
		}
	}
	return nil
}

// Stats counts what the recorder did, for tests, benchmarks and `chnet bench plan`.
type Stats struct {
	Dispatches, Barriers, Submits, Copies int
	// HostWaits counts the times the host blocked on the device: a Sync or Download with work in
	// flight, a Pending read, or a command buffer reused before it had finished.
	HostWaits int
	// Replays counts replayed captures; their commands are counted as executed (Dispatches,
	// Barriers, Kernels) but the host recorded none of them (Recorded counts those it did).
	Replays, Recorded int
	// Kernels holds per-kernel counts by kernel name.
	Kernels map[string]KernelStats
}

// KernelStats is what one kernel's dispatches cost: how many, the bytes of their bindings (for
// memory-bound kernels, what they read and write), and the multiply-adds the caller declared
// (compute-bound kernels: convolutions, matrix products).
type KernelStats struct {
	Calls int
	Bytes int64
	MACs  int64
}

// clone copies s with its own Kernels map.
func (s Stats) clone() Stats {
	out := s
	out.Kernels = make(map[string]KernelStats, len(s.Kernels))
	for k, v := range s.Kernels {
		out.Kernels[k] = v
	}
	return out
}

// add adds the executed commands of o (a capture's) to s.
func (s *Stats) add(o Stats) {
	s.Dispatches += o.Dispatches
	s.Barriers += o.Barriers
	s.Copies += o.Copies
	if s.Kernels == nil {
		s.Kernels = map[string]KernelStats{}
	}
	for name, k := range o.Kernels {
		t := s.Kernels[name]
		t.Calls += k.Calls
		t.Bytes += k.Bytes
		t.MACs += k.MACs
		s.Kernels[name] = t
	}
}

// Sub returns the counts of s since an earlier snapshot.
func (s Stats) Sub(before Stats) Stats {
	out := Stats{Dispatches: s.Dispatches - before.Dispatches, Barriers: s.Barriers - before.Barriers,
		Submits: s.Submits - before.Submits, Copies: s.Copies - before.Copies, HostWaits: s.HostWaits - before.HostWaits,
		Replays: s.Replays - before.Replays, Recorded: s.Recorded - before.Recorded,
		Kernels: map[string]KernelStats{}}
	for name, k := range s.Kernels {
		b := before.Kernels[name]
		if d := (KernelStats{k.Calls - b.Calls, k.Bytes - b.Bytes, k.MACs - b.MACs}); d != (KernelStats{}) {
			out.Kernels[name] = d
		}
	}
	return out
}

// Device is an open logical device with its arena, kernels and recorder. Its methods are safe
// for concurrent use, though kernels are recorded in call order.
type Device struct {
	Info DeviceInfo

	in       *instance
	cd       *C.chn_device
	dev      vk.Device
	memHeap  []uint32
	cmdPool  vk.CommandPool
	setLays  [MaxBindings + 1]C.VkDescriptorSetLayout
	pipeLays [MaxBindings + 1]C.VkPipelineLayout
	push     bool

	// plan: a device that records and allocates by the same code but creates no Vulkan objects
	// and executes nothing (OpenPlan).
	plan bool

	mu       sync.Mutex
	arena    *arena
	staging  *arena
	modules  map[string]C.VkShaderModule
	kernels  map[string]*Kernel
	frames   []*frame // every command buffer created: at most maxFrames besides captures'
	rec      *frame   // the one being recorded, if any
	idle     []*frame // finished and ready to record
	inflight []*frame // submitted, in submission order
	track    tracker
	err      error
	timeout  time.Duration
	perSub   int
	noBar    bool
	barEach  bool
	syncEach bool
	stats    Stats
	closed   bool
	// profiling: dispatches write timestamps (StartProfile); profile sums them by kernel.
	profiling bool
	profile   map[string]*KernelTime
	// capture is the capture being recorded (BeginCapture); keptFrames are frames held by
	// captures; barrierNext makes the next command start with a full barrier (after a replay,
	// whose accesses the hazard tracker never saw).
	capture     *captureState
	keptFrames  int
	barrierNext bool
	// workspace is the captures' shared reservation (capture.go), captures how many live,
	// workspaceGen a count of failed captures: a capture from an older one cannot replay.
	workspace    []*Buffer
	captures     int
	workspaceGen int
}

// defaultPerSubmit is Options.MaxDispatchesPerSubmit's default.
const defaultPerSubmit = 256

// maxFrames bounds the command buffers in flight: the host records ahead of the device until
// this many are submitted and unfinished, then waits for the oldest.
const maxFrames = 16

// Open creates a logical device on the chosen physical device.
func Open(opts Options) (*Device, error) {
	if err := opts.debugEnv(); err != nil {
		return nil, err
	}
	in, err := newInstance(opts.Validation)
	if err != nil {
		return nil, err
	}
	devs, err := in.devices()
	if err != nil {
		in.destroy()
		return nil, err
	}
	info, err := Choose(devs, opts.Device)
	if err != nil {
		in.destroy()
		return nil, err
	}
	if info.MaxStorageBuffersInStage < MaxBindings {
		in.destroy()
		return nil, fmt.Errorf("vkrt: %s allows %d storage buffers per shader stage; the kernels bind up to %d", info.Name, info.MaxStorageBuffersInStage, MaxBindings)
	}
	d := &Device{Info: info, in: in, modules: map[string]C.VkShaderModule{}, kernels: map[string]*Kernel{}}
	d.timeout = opts.Timeout
	if d.timeout == 0 {
		d.timeout = 2 * time.Minute
		if s := os.Getenv("CHNET_VK_TIMEOUT"); s != "" {
			if t, err := time.ParseDuration(s); err == nil && t > 0 {
				d.timeout = t
			}
		}
	}
	d.perSub = opts.MaxDispatchesPerSubmit
	if d.perSub <= 0 {
		d.perSub = defaultPerSubmit
	}
	d.noBar = opts.DebugNoBarriers
	d.barEach, d.syncEach = opts.DebugBarrierEach, opts.DebugSyncEach
	d.push = info.PushDescriptor && info.MaxPushDescriptors >= MaxBindings && !opts.NoPushDescriptor
	if err := d.init(); err != nil {
		d.Close()
		return nil, err
	}
	d.arena.noReuse = opts.DebugNoReuse
	return d, nil
}

func (d *Device) init() error {
	req := C.chn_device_req{queue_family: C.uint32_t(d.Info.queueFamily), api_version: C.uint32_t(min(d.Info.APIVersion, vk.MakeVersion(1, 3, 0)))}
	if d.push {
		req.push_descriptor = 1
	}
	if d.Info.Float16 && d.Info.Storage16 {
		req.float16_storage = 1
	}
	if d.Info.SubgroupSizeCtl {
		req.subgroup_size_control = 1
	}
	if d.Info.HasCoopMatNV(16, 16, 16) {
		req.coopmat_nv = 1 // the mixed-precision GEMM's tensor-core path (ops/vk/mixed.go)
	}
	var cd *C.chn_device
	r := C.chn_device_create(d.in.ci, C.VkPhysicalDevice(unsafe.Pointer(d.Info.pd)), &req, &cd)
	if r != C.VK_SUCCESS && req.coopmat_nv != 0 {
		// The tensor-core path is new and not yet run on every driver: a device that refuses it
		// still serves everything else (and the scalar mixed-precision kernel).
		req.coopmat_nv = 0
		d.Info.CoopMatNV = false
		r = C.chn_device_create(d.in.ci, C.VkPhysicalDevice(unsafe.Pointer(d.Info.pd)), &req, &cd)
	}
	if r != C.VK_SUCCESS {
		return check(vk.Result(r), "vkCreateDevice(%s)", d.Info.Name)
	}
	d.cd = cd
	d.dev = vk.Device(unsafe.Pointer(C.chn_device_handle(cd)))

	// Memory types: device-local for the arena (host-visible too on UMA, which costs nothing
	// there), host-visible coherent (cached if possible, for read-back) for staging.
	var mp vk.PhysicalDeviceMemoryProperties
	vk.GetPhysicalDeviceMemoryProperties(d.Info.pd, &mp)
	mp.Deref()
	devType, hostType := -1, -1
	hostScore := -1
	for i := uint32(0); i < mp.MemoryTypeCount; i++ {
		t := mp.MemoryTypes[i]
		t.Deref()
		d.memHeap = append(d.memHeap, t.HeapIndex)
		f := vk.MemoryPropertyFlagBits(t.PropertyFlags)
		if f&vk.MemoryPropertyDeviceLocalBit != 0 && devType < 0 {
			devType = int(i)
		}
		if f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0 {
			score := 0
			if f&vk.MemoryPropertyHostCachedBit != 0 {
				score += 2
			}
			if f&vk.MemoryPropertyDeviceLocalBit == 0 || d.Info.UMA {
				score++ // keep scarce device-local BAR memory for tensors
			}
			if score > hostScore {
				hostType, hostScore = int(i), score
			}
		}
	}
	if hostType < 0 {
		return fmt.Errorf("vkrt: %s has no host-visible coherent memory", d.Info.Name)
	}
	if devType < 0 {
		devType = hostType
	}
	d.arena = d.newArena("device", uint32(devType), false, 256<<20)
	d.staging = d.newArena("staging", uint32(hostType), true, 64<<20)

	// One set layout and one pipeline layout per binding count; every layout declares the full
	// 128-byte push block so kernels differ only in their pipelines.
	push := C.int(0)
	if d.push {
		push = 1
	}
	if r := C.chn_create_layouts(d.cd, push, (*C.VkDescriptorSetLayout)(unsafe.Pointer(&d.setLays[0])), (*C.VkPipelineLayout)(unsafe.Pointer(&d.pipeLays[0]))); r != C.VK_SUCCESS {
		return check(vk.Result(r), "create descriptor set and pipeline layouts")
	}

	cpinfo := vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: uint32(d.Info.queueFamily),
	}
	// Out-parameters are locals: cgo rejects pointers into Go structs that hold Go pointers.
	var pool vk.CommandPool
	if err := check(vk.CreateCommandPool(d.dev, &cpinfo, nil, &pool), "vkCreateCommandPool"); err != nil {
		return err
	}
	d.cmdPool = pool
	d.track.init()
	return nil
}

// newFrame creates a command buffer with its fence (and descriptor pool without push
// descriptors); a planning device's frames hold no Vulkan objects.
func (d *Device) newFrame() (*frame, error) {
	f := &frame{}
	if d.plan {
		return f, nil
	}
	ainfo := vk.CommandBufferAllocateInfo{
		SType:              vk.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        d.cmdPool,
		Level:              vk.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}
	cbs := make([]vk.CommandBuffer, 1)
	if err := check(vk.AllocateCommandBuffers(d.dev, &ainfo, cbs), "vkAllocateCommandBuffers"); err != nil {
		return nil, err
	}
	f.cb = C.VkCommandBuffer(unsafe.Pointer(cbs[0]))
	finfo := vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
	var fence vk.Fence
	if err := check(vk.CreateFence(d.dev, &finfo, nil, &fence), "vkCreateFence"); err != nil {
		vk.FreeCommandBuffers(d.dev, d.cmdPool, 1, cbs)
		return nil, err
	}
	f.fence = fence
	if !d.push {
		f.pool = C.chn_pool_new(d.cd, (*C.VkDescriptorSetLayout)(unsafe.Pointer(&d.setLays[0])))
		if f.pool == nil {
			vk.DestroyFence(d.dev, fence, nil)
			vk.FreeCommandBuffers(d.dev, d.cmdPool, 1, cbs)
			return nil, fmt.Errorf("vkrt: out of host memory")
		}
	}
	return f, nil
}

// PushDescriptors reports whether dispatches push their descriptors (VK_KHR_push_descriptor)
// rather than allocating pooled sets.
func (d *Device) PushDescriptors() bool { return d.push }

// Stats returns the recorder's counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats.clone()
}

// Planning reports whether the device only plans (OpenPlan): it records and allocates but
// executes nothing, and downloads read zeros.
func (d *Device) Planning() bool { return d.plan }

// MemoryInUse reports the device arena's bytes handed out and reserved (its blocks' total).
func (d *Device) MemoryInUse() (inUse, reserved int64) {
	d.arena.mu.Lock()
	defer d.arena.mu.Unlock()
	return d.arena.inUse, d.arena.total()
}

// MemoryPeak reports the most device-arena bytes handed out at once, and reserved at once,
// since the device opened or the last ResetMemoryPeak.
func (d *Device) MemoryPeak() (inUse, reserved int64) {
	d.arena.mu.Lock()
	defer d.arena.mu.Unlock()
	return d.arena.peakInUse, d.arena.peakTotal
}

// ResetMemoryPeak starts a new peak measurement from the current use.
func (d *Device) ResetMemoryPeak() {
	d.arena.mu.Lock()
	defer d.arena.mu.Unlock()
	d.arena.peakInUse, d.arena.peakTotal = d.arena.inUse, d.arena.total()
}

// BindAlign is the alignment of a binding's offset (minStorageBufferOffsetAlignment).
func (d *Device) BindAlign() int64 { return max(int64(d.Info.MinStorageBufferAlign), 4) }

// MaxRange is the largest byte range one binding may cover (maxStorageBufferRange).
func (d *Device) MaxRange() int64 { return int64(d.Info.MaxStorageBufferRange) }

// Err returns the device's sticky error (a lost device, a timeout), if any.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// ValidationMessages returns and clears what the validation layer reported since the last call.
func (d *Device) ValidationMessages() (errs, warnings int, text string) {
	if d.plan {
		return 0, 0, ""
	}
	return d.in.debugMessages()
}

// ProvokeValidationError makes one call the validation layer must report, to prove that
// messages arrive.
func (d *Device) ProvokeValidationError() {
	if !d.plan {
		C.chn_provoke_invalid(d.cd)
	}
}

// Alloc returns a device range of at least size bytes.
func (d *Device) Alloc(size int64) (*Buffer, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	b, err := d.arena.alloc(size)
	if err != nil && errors.Is(err, ErrOutOfDeviceMemory) {
		// Memory may be held by empty blocks; drain the queue, drop them and retry once.
		if serr := d.Sync(); serr != nil {
			return nil, serr
		}
		d.arena.trim()
		d.staging.trim()
		b, err = d.arena.alloc(size)
	}
	return b, err
}

// Free returns a range to the arena. Kernels recorded earlier may still read it: later writers
// are ordered after them by the recorder. Safe from any goroutine, and twice.
func (b *Buffer) Free() {
	if b != nil {
		b.a.free(b)
	}
}

// Close waits for submitted work and releases everything. After a timeout the device may still
// be executing, so its objects are leaked rather than destroyed under it.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	err := d.Sync()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.cd != nil && err != nil && errors.Is(err, ErrTimeout) {
		return err
	}
	if d.plan {
		return err
	}
	if d.cd != nil {
		vk.DeviceWaitIdle(d.dev)
		for _, k := range d.kernels {
			C.chn_destroy_pipeline(d.cd, k.pipeline)
		}
		for _, m := range d.modules {
			C.chn_destroy_module(d.cd, m)
		}
		for _, f := range d.frames {
			if f.pool != nil {
				C.chn_pool_free(f.pool)
			}
			vk.DestroyFence(d.dev, f.fence, nil)
			if f.qpool != nil {
				vk.DestroyQueryPool(d.dev, f.qpool, nil)
			}
		}
		if d.cmdPool != nil {
			vk.DestroyCommandPool(d.dev, d.cmdPool, nil)
		}
		C.chn_destroy_layouts(d.cd, (*C.VkDescriptorSetLayout)(unsafe.Pointer(&d.setLays[0])), (*C.VkPipelineLayout)(unsafe.Pointer(&d.pipeLays[0])))
		if d.arena != nil {
			d.arena.destroy()
			d.staging.destroy()
		}
		C.chn_device_destroy(d.cd)
		d.cd = nil
	}
	d.in.destroy()
	return err
}
