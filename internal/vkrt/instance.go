// Package vkrt is chnet's Vulkan runtime: device discovery and capabilities, an arena of large
// buffers handing out sub-ranges, compute kernels (SPIR-V + specialization constants → cached
// pipelines), and a recorder that batches dispatches into command buffers with barriers only
// where buffer ranges conflict.
//
// Its nouns follow Kompute (Device, Buffer, Kernel, and the recording inside Device) and its
// mechanics ggml-vulkan (one set layout per binding count, push constants for shapes, barriers
// on read/write hazards, submission when the host needs data). vulkan-go does the setup calls;
// a small C shim (shim.c) does what vulkan-go lacks or would do slowly per dispatch.
package vkrt

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// load opens the Vulkan loader once per process and hands its vkGetInstanceProcAddr to
// vulkan-go, whose own loader looks only for the unversioned libvulkan.so.
func load() error {
	loadOnce.Do(func() {
		var buf [512]C.char
		if C.chn_load(&buf[0], C.size_t(len(buf))) != 0 {
			loadErr = fmt.Errorf("vkrt: %s: %w", C.GoString(&buf[0]), ErrUnavailable)
			return
		}
		vk.SetGetInstanceProcAddr(C.chn_gipa())
		if err := vk.Init(); err != nil {
			loadErr = fmt.Errorf("vkrt: initialise vulkan-go: %v: %w", err, ErrUnavailable)
		}
	})
	return loadErr
}

// instance is a VkInstance with the shim's instance-level entry points.
type instance struct {
	handle     vk.Instance
	ci         *C.chn_instance
	validation bool
}

const validationLayer = "VK_LAYER_KHRONOS_validation"

// newInstance creates an instance for Vulkan 1.3 (devices report their own, lower, version).
// With validation, the Khronos layer runs with synchronization validation and a debug messenger
// collects its messages.
func newInstance(validation bool) (*instance, error) {
	if err := load(); err != nil {
		return nil, err
	}
	var layers, exts []string
	var pNext unsafe.Pointer
	if validation {
		if !hasInstanceLayer(validationLayer) {
			return nil, fmt.Errorf("vkrt: %w", ErrNoValidationLayer)
		}
		layers = append(layers, validationLayer+"\x00")
		exts = append(exts, "VK_EXT_debug_utils\x00", "VK_EXT_validation_features\x00")
		pNext = C.chn_validation_features()
	}
	app := vk.ApplicationInfo{
		SType:            vk.StructureTypeApplicationInfo,
		PApplicationName: "chnet\x00",
		PEngineName:      "chnet\x00",
		ApiVersion:       vk.MakeVersion(1, 3, 0),
	}
	info := vk.InstanceCreateInfo{
		SType:                   vk.StructureTypeInstanceCreateInfo,
		PNext:                   pNext,
		PApplicationInfo:        &app,
		EnabledLayerCount:       uint32(len(layers)),
		PpEnabledLayerNames:     layers,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	var h vk.Instance
	if r := vk.CreateInstance(&info, nil, &h); r != vk.Success {
		err := check(r, "vkCreateInstance")
		if r == vk.ErrorIncompatibleDriver {
			return nil, fmt.Errorf("%w (no Vulkan 1.1+ driver: %w)", err, ErrUnavailable)
		}
		return nil, err
	}
	if err := vk.InitInstance(h); err != nil {
		vk.DestroyInstance(h, nil)
		return nil, fmt.Errorf("vkrt: load instance functions: %v", err)
	}
	in := &instance{handle: h, validation: validation}
	in.ci = C.chn_instance_new(C.VkInstance(unsafe.Pointer(h)))
	if in.ci == nil {
		vk.DestroyInstance(h, nil)
		return nil, fmt.Errorf("vkrt: out of host memory")
	}
	if validation {
		if r := C.chn_debug_install(in.ci); r != C.VK_SUCCESS {
			in.destroy()
			return nil, check(vk.Result(r), "vkCreateDebugUtilsMessengerEXT")
		}
	}
	return in, nil
}

func (in *instance) destroy() {
	if in.ci != nil {
		C.chn_instance_free(in.ci)
		in.ci = nil
	}
	if in.handle != nil {
		vk.DestroyInstance(in.handle, nil)
		in.handle = nil
	}
}

// debugMessages returns and clears what the validation layer reported: the error count, the
// warning count and the text.
func (in *instance) debugMessages() (errs, warnings int, text string) {
	if in.ci == nil {
		return 0, 0, ""
	}
	buf := (*C.char)(C.malloc(1 << 18))
	defer C.free(unsafe.Pointer(buf))
	var w C.int
	e := C.chn_debug_take(in.ci, buf, 1<<18, &w)
	return int(e), int(w), C.GoString(buf)
}

func hasInstanceLayer(name string) bool {
	var n uint32
	if vk.EnumerateInstanceLayerProperties(&n, nil) != vk.Success || n == 0 {
		return false
	}
	props := make([]vk.LayerProperties, n)
	if vk.EnumerateInstanceLayerProperties(&n, props) < 0 {
		return false
	}
	for i := range props[:n] {
		props[i].Deref()
		if cstr(props[i].LayerName[:]) == name {
			return true
		}
	}
	return false
}

// cstr converts a NUL-terminated fixed-size char array from vulkan-go.
func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
