package vkrt

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// KernelSpec describes a compute kernel: a SPIR-V module and the values of its specialization
// constants (constant_id i takes Spec[i]).
type KernelSpec struct {
	Name     string // shader variant, for errors and the cache ("conv2d", "elementwise_unary")
	SPIRV    []byte
	Bindings int // storage buffers at set 0, bindings 0..Bindings-1
	Spec     []uint32
}

// Kernel is a compute pipeline ready to dispatch.
type Kernel struct {
	Name     string
	Bindings int
	Spec     []uint32
	pipeline C.VkPipeline
	layout   C.VkPipelineLayout
}

func (s KernelSpec) key() string {
	var b strings.Builder
	b.WriteString(s.Name)
	for _, v := range s.Spec {
		fmt.Fprintf(&b, ",%d", v)
	}
	return b.String()
}

// Kernel returns the pipeline for s, creating it on first use (pipeline creation costs
// milliseconds to hundreds of milliseconds, so pipelines are cached per (shader, constants)).
func (d *Device) Kernel(s KernelSpec) (*Kernel, error) {
	key := s.key()
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.kernels[key]; ok {
		return k, nil
	}
	if d.err != nil {
		return nil, d.err
	}
	if s.Bindings < 0 || s.Bindings > MaxBindings {
		return nil, fmt.Errorf("vkrt: kernel %s: %d bindings, at most %d", s.Name, s.Bindings, MaxBindings)
	}
	if len(s.Spec) > 32 {
		return nil, fmt.Errorf("vkrt: kernel %s: %d specialization constants, at most 32", s.Name, len(s.Spec))
	}
	if d.plan {
		// Plans check the code but compile nothing.
		if len(s.SPIRV) < 20 || len(s.SPIRV)%4 != 0 || binary.LittleEndian.Uint32(s.SPIRV) != 0x07230203 {
			return nil, fmt.Errorf("vkrt: shader %s: %d bytes are not SPIR-V (regenerate with go generate ./shaders)", s.Name, len(s.SPIRV))
		}
		k := &Kernel{Name: s.Name, Bindings: s.Bindings, Spec: append([]uint32(nil), s.Spec...)}
		d.kernels[key] = k
		return k, nil
	}
	mod, err := d.module(s.Name, s.SPIRV)
	if err != nil {
		return nil, err
	}
	spec := append([]uint32{0}, s.Spec...) // never an empty slice: &spec[0] must exist
	var p C.VkPipeline
	r := C.chn_create_pipeline(d.cd, mod, d.pipeLays[s.Bindings], (*C.uint32_t)(unsafe.Pointer(&spec[min(1, len(s.Spec))])), C.uint32_t(len(s.Spec)), &p)
	if err := check(vk.Result(r), "create pipeline %s (constants %v)", s.Name, s.Spec); err != nil {
		return nil, err
	}
	k := &Kernel{Name: s.Name, Bindings: s.Bindings, Spec: append([]uint32(nil), s.Spec...), pipeline: p, layout: d.pipeLays[s.Bindings]}
	d.kernels[key] = k
	return k, nil
}

func (d *Device) module(name string, code []byte) (C.VkShaderModule, error) {
	if m, ok := d.modules[name]; ok {
		return m, nil
	}
	if len(code) < 20 || len(code)%4 != 0 || binary.LittleEndian.Uint32(code) != 0x07230203 {
		return nil, fmt.Errorf("vkrt: shader %s: %d bytes are not SPIR-V (regenerate with go generate ./shaders)", name, len(code))
	}
	words := make([]uint32, len(code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	var m C.VkShaderModule
	if err := check(vk.Result(C.chn_create_module(d.cd, (*C.uint32_t)(unsafe.Pointer(&words[0])), C.size_t(len(code)), &m)), "load shader %s", name); err != nil {
		return nil, err
	}
	d.modules[name] = m
	return m, nil
}
