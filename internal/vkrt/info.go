package vkrt

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// DeviceType ranks devices: a lower value is preferred.
type DeviceType int

const (
	Discrete DeviceType = iota
	Integrated
	Virtual
	CPU
	OtherType
)

func (t DeviceType) String() string {
	return [...]string{"discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other"}[t]
}

// Heap is one memory heap of a device.
type Heap struct {
	Size        uint64
	DeviceLocal bool
}

// DeviceInfo is what chnet needs to know about a physical device to pick kernels and tile sizes.
type DeviceInfo struct {
	Index         int
	Name          string
	Type          DeviceType
	VendorID      uint32
	DeviceID      uint32
	Vendor        string
	APIVersion    uint32
	DriverVersion uint32
	DriverName    string
	DriverInfo    string

	Heaps []Heap
	// UMA: one memory type is both device-local and host-visible (lavapipe, integrated GPUs).
	UMA bool

	SubgroupSize       uint32
	MinSubgroupSize    uint32
	MaxSubgroupSize    uint32
	SubgroupArithmetic bool
	SubgroupSizeCtl    bool

	MaxSharedMemory          uint32
	MaxStorageBufferRange    uint64
	MaxWorkGroupCount        [3]uint32
	MaxWorkGroupSize         [3]uint32
	MaxWorkGroupInvocations  uint32
	MaxPushConstants         uint32
	MinStorageBufferAlign    uint64
	MaxMemoryAllocationSize  uint64
	MaxBufferSize            uint64
	MaxPushDescriptors       uint32
	MaxStorageBuffersInStage uint32

	Float16, Storage16, Int64 bool
	PushDescriptor            bool
	CoopMatNV                 bool
	CoopMatNVShapesF16        int
	CoopMatKHR                bool
	CoopMat2NV                bool
	// CoopMatNVShapes lists the device's VK_NV_cooperative_matrix shapes (first 32), as
	// vkGetPhysicalDeviceCooperativeMatrixPropertiesNV reports them.
	CoopMatNVShapes   []CoopMatShape
	VulkanMemoryModel bool
	TimestampCompute  bool
	TimestampPeriod   float32

	Extensions []string

	queueFamily int
	pd          vk.PhysicalDevice
}

// Devices lists the Vulkan devices of this machine, in the driver's order. A missing loader or
// driver is an error wrapping ErrUnavailable.
func Devices() ([]DeviceInfo, error) {
	in, err := newInstance(false)
	if err != nil {
		return nil, err
	}
	defer in.destroy()
	return in.devices()
}

func (in *instance) devices() ([]DeviceInfo, error) {
	var n uint32
	if err := check(vk.EnumeratePhysicalDevices(in.handle, &n, nil), "vkEnumeratePhysicalDevices"); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("vkrt: the Vulkan loader found no device (is a driver/ICD installed?): %w", ErrUnavailable)
	}
	pds := make([]vk.PhysicalDevice, n)
	if err := check(vk.EnumeratePhysicalDevices(in.handle, &n, pds), "vkEnumeratePhysicalDevices"); err != nil {
		return nil, err
	}
	var out []DeviceInfo
	for i, pd := range pds[:n] {
		info, err := in.describe(i, pd)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func vendorName(id uint32) string {
	switch id {
	case 0x10DE:
		return "NVIDIA"
	case 0x1002:
		return "AMD"
	case 0x8086:
		return "Intel"
	case 0x13B5:
		return "ARM"
	case 0x5143:
		return "Qualcomm"
	case 0x106B:
		return "Apple"
	case 0x1010:
		return "Imagination"
	case 0x10005:
		return "Mesa"
	}
	return fmt.Sprintf("0x%04x", id)
}

func (in *instance) describe(index int, pd vk.PhysicalDevice) (DeviceInfo, error) {
	var p vk.PhysicalDeviceProperties
	vk.GetPhysicalDeviceProperties(pd, &p)
	p.Deref()
	p.Limits.Deref()
	lim := p.Limits
	info := DeviceInfo{
		Index:                    index,
		Name:                     cstr(p.DeviceName[:]),
		VendorID:                 p.VendorID,
		DeviceID:                 p.DeviceID,
		Vendor:                   vendorName(p.VendorID),
		APIVersion:               p.ApiVersion,
		DriverVersion:            p.DriverVersion,
		MaxSharedMemory:          lim.MaxComputeSharedMemorySize,
		MaxStorageBufferRange:    uint64(lim.MaxStorageBufferRange),
		MaxWorkGroupCount:        lim.MaxComputeWorkGroupCount,
		MaxWorkGroupSize:         lim.MaxComputeWorkGroupSize,
		MaxWorkGroupInvocations:  lim.MaxComputeWorkGroupInvocations,
		MaxPushConstants:         lim.MaxPushConstantsSize,
		MinStorageBufferAlign:    uint64(lim.MinStorageBufferOffsetAlignment),
		MaxStorageBuffersInStage: lim.MaxPerStageDescriptorStorageBuffers,
		TimestampCompute:         lim.TimestampComputeAndGraphics == vk.True,
		TimestampPeriod:          lim.TimestampPeriod,
		queueFamily:              -1,
		pd:                       pd,
	}
	switch p.DeviceType {
	case vk.PhysicalDeviceTypeDiscreteGpu:
		info.Type = Discrete
	case vk.PhysicalDeviceTypeIntegratedGpu:
		info.Type = Integrated
	case vk.PhysicalDeviceTypeVirtualGpu:
		info.Type = Virtual
	case vk.PhysicalDeviceTypeCpu:
		info.Type = CPU
	default:
		info.Type = OtherType
	}

	var mp vk.PhysicalDeviceMemoryProperties
	vk.GetPhysicalDeviceMemoryProperties(pd, &mp)
	mp.Deref()
	for i := uint32(0); i < mp.MemoryHeapCount; i++ {
		h := mp.MemoryHeaps[i]
		h.Deref()
		info.Heaps = append(info.Heaps, Heap{Size: uint64(h.Size), DeviceLocal: h.Flags&vk.MemoryHeapFlags(vk.MemoryHeapDeviceLocalBit) != 0})
	}
	for i := uint32(0); i < mp.MemoryTypeCount; i++ {
		t := mp.MemoryTypes[i]
		t.Deref()
		f := vk.MemoryPropertyFlagBits(t.PropertyFlags)
		if f&vk.MemoryPropertyDeviceLocalBit != 0 && f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0 {
			if int(t.HeapIndex) < len(info.Heaps) && info.Heaps[t.HeapIndex].Size >= 256<<20 {
				info.UMA = true // a small device-local+host-visible heap (NVIDIA's BAR) is not UMA
			}
		}
	}

	var nq uint32
	vk.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, nil)
	qs := make([]vk.QueueFamilyProperties, nq)
	vk.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, qs)
	// Prefer a compute queue family without graphics (dedicated async compute), else any.
	for i := range qs[:nq] {
		qs[i].Deref()
		fl := vk.QueueFlagBits(qs[i].QueueFlags)
		if fl&vk.QueueComputeBit == 0 {
			continue
		}
		if info.queueFamily < 0 || fl&vk.QueueGraphicsBit == 0 && vk.QueueFlagBits(qs[info.queueFamily].QueueFlags)&vk.QueueGraphicsBit != 0 {
			info.queueFamily = i
		}
	}

	extBuf := (*C.char)(C.malloc(1 << 16))
	defer C.free(unsafe.Pointer(extBuf))
	cpd := C.VkPhysicalDevice(unsafe.Pointer(pd))
	if r := C.chn_device_extensions(in.ci, cpd, extBuf, 1<<16); r != C.VK_SUCCESS {
		return info, check(vk.Result(r), "vkEnumerateDeviceExtensionProperties(%s)", info.Name)
	}
	exts := C.GoString(extBuf)
	info.Extensions = strings.Fields(exts)
	sort.Strings(info.Extensions)

	var caps C.chn_caps
	caps.api_version = C.uint32_t(min(p.ApiVersion, vk.MakeVersion(1, 3, 0)))
	C.chn_query_caps(in.ci, cpd, extBuf, &caps)
	info.DriverName = C.GoString(&caps.driver_name[0])
	info.DriverInfo = C.GoString(&caps.driver_info[0])
	info.SubgroupSize = uint32(caps.subgroup_size)
	info.MinSubgroupSize = uint32(caps.min_subgroup_size)
	info.MaxSubgroupSize = uint32(caps.max_subgroup_size)
	const subgroupArithmetic, stageCompute = 1 << 2, 1 << 5
	info.SubgroupArithmetic = caps.subgroup_ops&subgroupArithmetic != 0 && caps.subgroup_stages&stageCompute != 0
	info.SubgroupSizeCtl = caps.subgroup_size_control != 0 && caps.compute_full_subgroups != 0
	info.MaxPushDescriptors = uint32(caps.max_push_descriptors)
	info.MaxMemoryAllocationSize = uint64(caps.max_memory_allocation_size)
	info.MaxBufferSize = uint64(caps.max_buffer_size)
	info.Float16 = caps.shader_float16 != 0
	info.Storage16 = caps.storage_buffer16 != 0
	info.Int64 = caps.shader_int64 != 0
	info.PushDescriptor = caps.push_descriptor != 0
	info.CoopMatNV = caps.coopmat_nv != 0
	info.CoopMatNVShapesF16 = int(caps.coopmat_nv_f16_shapes)
	info.CoopMatKHR = caps.coopmat_khr != 0
	info.CoopMat2NV = caps.coopmat2_nv != 0
	info.VulkanMemoryModel = caps.vulkan_memory_model != 0
	for i := 0; i < int(caps.coopmat_nv_nshapes); i++ {
		s := caps.coopmat_nv_shapes[i]
		info.CoopMatNVShapes = append(info.CoopMatNVShapes, CoopMatShape{
			M: int(s.m), N: int(s.n), K: int(s.k),
			A: componentType(uint32(s.a)), B: componentType(uint32(s.b)), C: componentType(uint32(s.c)), D: componentType(uint32(s.d)),
			Subgroup: s.scope == 3, // VK_SCOPE_SUBGROUP_NV
		})
	}
	if info.MaxMemoryAllocationSize == 0 {
		info.MaxMemoryAllocationSize = 1 << 30 // the spec's guaranteed minimum
	}
	return info, nil
}

// CoopMatShape is one cooperative-matrix product a device offers: D(M×N) = A(M×K)·B(K×N) + C,
// with the components' types ("f16", "f32", "s8", ...).
type CoopMatShape struct {
	M, N, K    int
	A, B, C, D string
	Subgroup   bool // subgroup scope (the only scope chnet's shaders use)
}

func (s CoopMatShape) String() string {
	scope := ""
	if !s.Subgroup {
		scope = " (not subgroup scope)"
	}
	return fmt.Sprintf("%dx%dx%d %s*%s+%s->%s%s", s.M, s.N, s.K, s.A, s.B, s.C, s.D, scope)
}

// componentType names a VkComponentTypeNV.
func componentType(t uint32) string {
	names := []string{"f16", "f32", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type%d", t)
}

// HasCoopMatNV reports whether the device can run a VK_NV_cooperative_matrix shader of shape
// m×n×k with fp16 A and B and fp32 C and D at subgroup scope (and the features such a shader
// needs: fp16 arithmetic and storage, the Vulkan memory model device.go enables with it).
func (d DeviceInfo) HasCoopMatNV(m, n, k int) bool {
	if !d.CoopMatNV || !d.Float16 || !d.Storage16 || !d.VulkanMemoryModel {
		return false
	}
	for _, s := range d.CoopMatNVShapes {
		if s.M == m && s.N == n && s.K == k && s.A == "f16" && s.B == "f16" && s.C == "f32" && s.D == "f32" && s.Subgroup {
			return true
		}
	}
	return false
}

// Precision names what the device offers for mixed-precision GEMMs, for one-line summaries:
// "fp16 + NV cooperative matrix", "fp16", or "fp32 only".
func (d DeviceInfo) Precision() string {
	switch {
	case d.HasCoopMatNV(16, 16, 16):
		return "fp16 + NV cooperative matrix"
	case d.Float16 && d.Storage16:
		return "fp16"
	}
	return "fp32 only"
}

// VersionString formats a packed Vulkan version.
func VersionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v>>22, (v>>12)&0x3ff, v&0xfff)
}

// LocalMemory is the size of the largest device-local heap.
func (d DeviceInfo) LocalMemory() uint64 {
	var m uint64
	for _, h := range d.Heaps {
		if h.DeviceLocal && h.Size > m {
			m = h.Size
		}
	}
	return m
}

// Summary is one line for `chnet devices`.
func (d DeviceInfo) Summary() string {
	return fmt.Sprintf("%d: %s (%s, %s, Vulkan %s, %.1f GiB)", d.Index, d.Name, d.Type, d.Vendor,
		VersionString(d.APIVersion), float64(d.LocalMemory())/(1<<30))
}

// Describe lists every capability the backend uses, one per line.
func (d DeviceInfo) Describe() string {
	var b strings.Builder
	f := func(k string, v any) { fmt.Fprintf(&b, "  %-28s %v\n", k, v) }
	fmt.Fprintf(&b, "%s\n", d.Summary())
	f("vendor/device id", fmt.Sprintf("0x%04x/0x%04x", d.VendorID, d.DeviceID))
	f("driver", fmt.Sprintf("%s %s (version %d)", d.DriverName, d.DriverInfo, d.DriverVersion))
	for i, h := range d.Heaps {
		f(fmt.Sprintf("heap %d", i), fmt.Sprintf("%.2f GiB device-local=%v", float64(h.Size)/(1<<30), h.DeviceLocal))
	}
	f("UMA", d.UMA)
	f("subgroup size", fmt.Sprintf("%d (min %d, max %d, control %v, arithmetic %v)", d.SubgroupSize, d.MinSubgroupSize, d.MaxSubgroupSize, d.SubgroupSizeCtl, d.SubgroupArithmetic))
	f("max shared memory", d.MaxSharedMemory)
	f("maxStorageBufferRange", fmt.Sprintf("%d (%.0f MiB)", d.MaxStorageBufferRange, float64(d.MaxStorageBufferRange)/(1<<20)))
	f("maxMemoryAllocationSize", d.MaxMemoryAllocationSize)
	f("maxBufferSize", d.MaxBufferSize)
	f("minStorageBufferAlignment", d.MinStorageBufferAlign)
	f("max workgroup count", d.MaxWorkGroupCount)
	f("max workgroup size", fmt.Sprintf("%v (%d invocations)", d.MaxWorkGroupSize, d.MaxWorkGroupInvocations))
	f("push constants", d.MaxPushConstants)
	f("push descriptors", fmt.Sprintf("%v (max %d)", d.PushDescriptor, d.MaxPushDescriptors))
	f("fp16 / 16-bit storage / int64", fmt.Sprintf("%v / %v / %v", d.Float16, d.Storage16, d.Int64))
	f("cooperative matrix", fmt.Sprintf("NV %v (%d fp16 shapes), KHR %v, NV2 %v", d.CoopMatNV, d.CoopMatNVShapesF16, d.CoopMatKHR, d.CoopMat2NV))
	for _, s := range d.CoopMatNVShapes {
		f("  NV shape", s)
	}
	f("mixed-precision GEMM", d.Precision())
	f("timestamps", fmt.Sprintf("compute %v, period %g ns", d.TimestampCompute, d.TimestampPeriod))
	f("compute queue family", d.queueFamily)
	return b.String()
}

// Choose picks a device: want is an index ("1"), a case-insensitive name substring ("llvmpipe"),
// or empty for the best by type (discrete > integrated > virtual > CPU, then driver order).
// An empty want falls back to $CHNET_DEVICE.
func Choose(devs []DeviceInfo, want string) (DeviceInfo, error) {
	if want == "" {
		want = os.Getenv("CHNET_DEVICE")
	}
	var usable []DeviceInfo
	for _, d := range devs {
		if d.queueFamily >= 0 {
			usable = append(usable, d)
		}
	}
	list := func() string {
		var s []string
		for _, d := range devs {
			s = append(s, d.Summary())
		}
		return strings.Join(s, "; ")
	}
	if len(usable) == 0 {
		return DeviceInfo{}, fmt.Errorf("vkrt: no device with a compute queue (have %s): %w", list(), ErrUnavailable)
	}
	if want == "" {
		best := usable[0]
		for _, d := range usable[1:] {
			if d.Type < best.Type {
				best = d
			}
		}
		return best, nil
	}
	if i, err := strconv.Atoi(want); err == nil {
		for _, d := range usable {
			if d.Index == i {
				return d, nil
			}
		}
		return DeviceInfo{}, fmt.Errorf("vkrt: no usable device %d (have %s)", i, list())
	}
	for _, d := range usable {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(want)) {
			return d, nil
		}
	}
	return DeviceInfo{}, fmt.Errorf("vkrt: no device named like %q (have %s)", want, list())
}
