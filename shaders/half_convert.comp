#version 450
// Conversions between fp32 tensors and fp16 buffers (ops/vk/mixed.go), in integer arithmetic so
// the result is the same on every device: OpFConvert's rounding and fp16 denormal handling are
// implementation-defined in Vulkan, round-to-nearest-even here is not. fp16 values are packed
// two per uint (element 2i in the low half), so these kernels need no 16-bit feature at all.
// Oracle: github.com/x448/float16 Fromfloat32 / Float32 (ops/vk/mixed_test.go).
//
// TO_HALF: h[i] = fp16(f[off + i]), rounded to nearest even; overflow gives ±inf, NaN stays a
// quiet NaN with the top payload bits. TO_FLOAT: f[off + i] = float(h[i]) (exact; NaNs quiet).

layout(local_size_x = 64) in;

#ifdef TO_HALF
layout(std430, binding = 0) writeonly buffer H { uint h[]; };
layout(std430, binding = 1) readonly buffer F { uint f[]; };
#else
layout(std430, binding = 0) writeonly buffer F { uint f[]; };
layout(std430, binding = 1) readonly buffer H { uint h[]; };
#endif

layout(push_constant) uniform Push {
	uint off; // of the fp32 tensor, in elements relative to its binding
	uint n;   // elements
} p;

#include "half.glsl"

// toFloat widens the fp16 bit pattern x to fp32 bits, exactly.
uint toFloat(uint x) {
	uint sign = (x & 0x8000u) << 16;
	uint e = (x >> 10) & 0x1fu;
	uint m = x & 0x3ffu;
	if (e == 0x1fu) {
		return sign | (m != 0u ? 0x7fc00000u : 0x7f800000u) | (m << 13); // NaNs come out quiet
	}
	if (e == 0u) {
		if (m == 0u) {
			return sign;
		}
		int ex = 1; // normalise the subnormal
		while ((m & 0x400u) == 0u) {
			m <<= 1;
			ex--;
		}
		return sign | (uint(ex + 112) << 23) | ((m & 0x3ffu) << 13);
	}
	return sign | ((e + 112u) << 23) | (m << 13);
}

void main() {
	uint pairs = (p.n + 1u) / 2u;
	uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	for (uint i = gl_GlobalInvocationID.x; i < pairs; i += stride) {
		uint e = 2u * i;
#ifdef TO_HALF
		uint lo = toHalf(f[p.off + e]);
		uint hi = e + 1u < p.n ? toHalf(f[p.off + e + 1u]) : 0u;
		h[i] = lo | (hi << 16);
#else
		uint v = h[i];
		f[p.off + e] = toFloat(v & 0xffffu);
		if (e + 1u < p.n) {
			f[p.off + e + 1u] = toFloat(v >> 16);
		}
#endif
	}
}
