#version 450
// Mixed-precision matrix product d = op(a)·op(b): a and b in fp16 buffers, d in fp32, products
// accumulated in fp32. The tiling is gemm.glsl's (the fp32 matmul's): operands are widened to
// fp32 as they are loaded, so this runs on any device with 16-bit storage (lavapipe in CI) and
// differs from the fp32 kernel only in its inputs' rounding. Specialization constants TA, TB
// transpose a (stored K×M) and b (stored N×K). The tensor-core form is matmul_mixed_coopmat.comp.
// Oracle: ops/cpu/matmul.go MatMul on the fp16-rounded inputs (ops/vk/mixed_test.go).

#extension GL_EXT_shader_16bit_storage : require

#include "common.glsl"
#include "gemm.glsl"

layout(constant_id = 10) const uint TA = 0;
layout(constant_id = 11) const uint TB = 0;

layout(std430, binding = 0) writeonly buffer D { float d[]; };
layout(std430, binding = 1) readonly buffer A { float16_t a[]; };
layout(std430, binding = 2) readonly buffer B { float16_t b[]; };

layout(push_constant) uniform Push {
	uint doff; // d's offset in elements relative to its binding; a and b start at theirs
	uint M, N, K;
} p;

uint m0, n0;

void loadTiles(uint k0) {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		uint m = m0 + l / BK, k = k0 + l % BK;
		ra[r] = (m < p.M && k < p.K) ? float(a[TA != 0 ? k * p.M + m : m * p.K + k]) : 0.0;
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint k = k0 + tid / BN + r * (WG / BN), n = n0 + tid % BN;
		rb[r] = (n < p.N && k < p.K) ? float(b[TB != 0 ? n * p.K + k : k * p.N + n]) : 0.0;
	}
}

void storeTiles() {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		As[(l % BK) * ASTRIDE + l / BK] = ra[r];
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		Bs[(tid / BN + r * (WG / BN)) * BSTRIDE + tid % BN] = rb[r];
	}
}

void main() {
	uint tid = gl_LocalInvocationID.x;
	m0 = gl_WorkGroupID.y * BM;
	n0 = gl_WorkGroupID.x * BN;
	gemmLoop(0, p.K);
	uint tm = tmOf(tid), tn = tnOf(tid);
	[[unroll]] for (uint i = 0; i < TM; i++) {
		uint m = m0 + rowOf(tm, i);
		if (m >= p.M) {
			continue;
		}
		[[unroll]] for (uint j = 0; j < TN; j++) {
			uint n = n0 + tn + j * (BN / TN);
			if (n < p.N) {
				d[p.doff + m * p.N + n] = acc[i * TN + j];
			}
		}
	}
}
