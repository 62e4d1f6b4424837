package vkrt

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// OpenPlan returns a planning device: it takes every decision a device with info's capabilities
// takes on the host — kernels and their bindings, hazard barriers, submissions, host waits, arena
// allocations — by the same code, but creates no Vulkan object and executes nothing. Downloads
// read zeros. Its Stats and MemoryPeak are what a real device would count for the same calls,
// which is how `chnet bench plan` sees a training step at sizes and on GPUs this machine lacks.
func OpenPlan(info DeviceInfo, opts Options) (*Device, error) {
	if err := opts.debugEnv(); err != nil {
		return nil, err
	}
	if len(info.Heaps) == 0 || info.MaxStorageBufferRange == 0 || info.MaxWorkGroupCount[0] == 0 {
		return nil, fmt.Errorf("vkrt: plan: device profile %q lacks heaps or limits", info.Name)
	}
	d := &Device{Info: info, plan: true, kernels: map[string]*Kernel{}}
	d.timeout = time.Minute
	d.perSub = opts.MaxDispatchesPerSubmit
	if d.perSub <= 0 {
		d.perSub = defaultPerSubmit
	}
	d.noBar = opts.DebugNoBarriers
	d.barEach, d.syncEach = opts.DebugBarrierEach, opts.DebugSyncEach
	d.push = info.PushDescriptor && info.MaxPushDescriptors >= MaxBindings && !opts.NoPushDescriptor
	// The device arena on the first device-local heap, staging on a host heap if there is one.
	devHeap, hostHeap := 0, 0
	for i, h := range info.Heaps {
		if h.DeviceLocal && !info.Heaps[devHeap].DeviceLocal {
			devHeap = i
		}
		if !h.DeviceLocal && hostHeap == devHeap {
			hostHeap = i
		}
	}
	d.memHeap = []uint32{uint32(devHeap), uint32(hostHeap)}
	d.arena = d.newArena("device", 0, false, 256<<20)
	d.staging = d.newArena("staging", 1, true, 64<<20)
	d.arena.noReuse = opts.DebugNoReuse
	d.track.init()
	return d, nil
}

// Profiles are the device descriptions OpenPlan is usually given, by name.
var Profiles = map[string]DeviceInfo{
	// NVIDIA H100 80GB through the NVIDIA Vulkan driver, as measured on the lent machine
	// (shared/docs/gpu.md; engine-notes.md §7): subgroup 32, 48 KiB shared memory, 4 GiB
	// storage-buffer range, push descriptors.
	"h100": {
		Name: "NVIDIA H100 80GB HBM3 (plan profile)", Type: Discrete, VendorID: 0x10DE, Vendor: "NVIDIA",
		APIVersion:   1<<22 | 3<<12,
		Heaps:        []Heap{{Size: 80 << 30, DeviceLocal: true}, {Size: 64 << 30}},
		SubgroupSize: 32, MinSubgroupSize: 32, MaxSubgroupSize: 32, SubgroupArithmetic: true, SubgroupSizeCtl: true,
		MaxSharedMemory: 48 << 10, MaxStorageBufferRange: 1<<32 - 1,
		MaxWorkGroupCount: [3]uint32{1<<31 - 1, 65535, 65535}, MaxWorkGroupSize: [3]uint32{1024, 1024, 64},
		MaxWorkGroupInvocations: 1024, MaxPushConstants: 256, MinStorageBufferAlign: 16,
		MaxMemoryAllocationSize: 4 << 30, MaxBufferSize: 1 << 40, MaxPushDescriptors: 32, MaxStorageBuffersInStage: 1 << 20,
		Float16: true, Storage16: true, Int64: true, PushDescriptor: true, CoopMatNV: true, CoopMatKHR: true, CoopMat2NV: true,
		TimestampCompute: true, TimestampPeriod: 1,
	},
	// Mesa lavapipe 22.3 on the CI machine (engine-notes.md §0.4): a CPU device with a 128 MiB
	// storage-buffer range and one 2 GiB UMA heap.
	"lavapipe": {
		Name: "llvmpipe (plan profile)", Type: CPU, VendorID: 0x10005, Vendor: "Mesa",
		APIVersion: 1<<22 | 3<<12 | 230,
		Heaps:      []Heap{{Size: 2 << 30, DeviceLocal: true}}, UMA: true,
		SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8, SubgroupArithmetic: true, SubgroupSizeCtl: true,
		MaxSharedMemory: 32 << 10, MaxStorageBufferRange: 128 << 20,
		MaxWorkGroupCount: [3]uint32{65535, 65535, 65535}, MaxWorkGroupSize: [3]uint32{1024, 1024, 1024},
		MaxWorkGroupInvocations: 1024, MaxPushConstants: 128, MinStorageBufferAlign: 16,
		MaxMemoryAllocationSize: 2 << 30, MaxBufferSize: 1<<32 - 1, MaxPushDescriptors: 32, MaxStorageBuffersInStage: 1 << 20,
		Float16: true, Storage16: true, Int64: true, PushDescriptor: true,
		TimestampCompute: true, TimestampPeriod: 1,
	},
}

// Profile returns the named profile (see Profiles).
func Profile(name string) (DeviceInfo, error) {
	p, ok := Profiles[strings.ToLower(name)]
	if !ok {
		names := make([]string, 0, len(Profiles))
		for n := range Profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return DeviceInfo{}, fmt.Errorf("vkrt: no device profile %q (have %s)", name, strings.Join(names, ", "))
	}
	return p, nil
}
