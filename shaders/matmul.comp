#version 450
// Batched matrix product dst[i] = op(a[i])·op(b[i]) with op an optional transpose (specialization
// constants TA, TB); a rank-2 operand is shared by every item (batch stride 0).
// Oracle: ops/cpu/matmul.go MatMul.

#include "common.glsl"
#include "gemm.glsl"

layout(constant_id = 10) const uint TA = 0;
layout(constant_id = 11) const uint TB = 0;

layout(std430, binding = 0) writeonly buffer D { float d[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };

layout(push_constant) uniform Push {
	uint doff, dstride, aoff, astride, boff, bstride; // a stride of 0: a shared matrix
	uint M, N, K;
	uint i0; // first batch item of this dispatch
} p;

uint m0, n0, item;

void loadTiles(uint k0) {
	uint tid = gl_LocalInvocationID.x;
	uint abase = p.aoff + item * p.astride, bbase = p.boff + item * p.bstride;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		uint m = m0 + l / BK, k = k0 + l % BK;
		ra[r] = (m < p.M && k < p.K) ? a[abase + (TA != 0 ? k * p.M + m : m * p.K + k)] : 0.0;
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint k = k0 + tid / BN + r * (WG / BN), n = n0 + tid % BN;
		rb[r] = (n < p.N && k < p.K) ? b[bbase + (TB != 0 ? n * p.K + k : k * p.N + n)] : 0.0;
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
	item = p.i0 + gl_WorkGroupID.z;
	m0 = gl_WorkGroupID.y * BM;
	n0 = gl_WorkGroupID.x * BN;
	gemmLoop(0, p.K);
	uint tm = tmOf(tid), tn = tnOf(tid);
	uint base = p.doff + item * p.dstride;
	[[unroll]] for (uint i = 0; i < TM; i++) {
		uint m = m0 + rowOf(tm, i);
		if (m >= p.M) {
			continue;
		}
		[[unroll]] for (uint j = 0; j < TN; j++) {
			uint n = n0 + tn + j * (BN / TN);
			if (n < p.N) {
				d[base + m * p.N + n] = acc[i * TN + j];
			}
		}
	}
}
