package vkrt

import "testing"

// TestHasCoopMatNV checks the tensor-core path is chosen only with every feature it needs and
// an fp16×fp16→fp32 subgroup shape of the size asked for.
func TestHasCoopMatNV(t *testing.T) {
	h100 := DeviceInfo{CoopMatNV: true, Float16: true, Storage16: true, VulkanMemoryModel: true,
		CoopMatNVShapes: []CoopMatShape{
			{M: 16, N: 8, K: 16, A: "f16", B: "f16", C: "f32", D: "f32", Subgroup: true},
			{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f16", D: "f16", Subgroup: true},
			{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f32", D: "f32", Subgroup: true},
		}}
	noF32 := h100
	noF32.CoopMatNVShapes = h100.CoopMatNVShapes[:2]
	noVMM := h100
	noVMM.VulkanMemoryModel = false
	noExt := h100
	noExt.CoopMatNV = false
	lavapipe := DeviceInfo{Float16: true, Storage16: true, VulkanMemoryModel: true}
	for _, c := range []struct {
		name      string
		d         DeviceInfo
		want      bool
		precision string
	}{
		{"h100", h100, true, "fp16 + NV cooperative matrix"},
		{"fp16 accumulation only", noF32, false, "fp16"},
		{"no memory model", noVMM, false, "fp16"},
		{"no extension", noExt, false, "fp16"},
		{"lavapipe", lavapipe, false, "fp16"},
		{"fp32 device", DeviceInfo{}, false, "fp32 only"},
	} {
		if got := c.d.HasCoopMatNV(16, 16, 16); got != c.want {
			t.Errorf("%s: HasCoopMatNV(16,16,16) = %v, want %v", c.name, got, c.want)
		}
		if got := c.d.Precision(); got != c.precision {
			t.Errorf("%s: Precision() = %q, want %q", c.name, got, c.precision)
		}
	}
	if got := h100.CoopMatNVShapes[0].String(); got != "16x8x16 f16*f16+f32->f32" {
		t.Errorf("shape string %q", got)
	}
}
