#version 450
// Batch normalisation's gradient, in two kernels, with a fused ReLU's gradient. With g the
// incoming gradient gy (masked where the forward output y ≤ 0 after a fused ReLU),
// x̂ = (x − mean)·invStd and M values per channel: gβ = Σg, gγ = Σg·x̂, and in training
// gx = γ·invStd·(g − gβ/M − x̂·gγ/M); with constant (eval) statistics gx = γ·invStd·g.
// Oracle: ops/cpu/batch_norm2d.go BatchNormGrad.
//
// BNG_SUMS: per (channel, chunk) the partial sums Σg and Σg·(x − mean); with a fused residual it
// also writes g, the residual's gradient. The last workgroup of a channel to finish (a
// per-channel atomic counter, reset to zero by it) sums the channel's chunks in order into gβ
// and gγ.
// BNG_APPLY: the input gradient, from gy (+ gy2) and y (masking) or from the residual's g.

#include "common.glsl"

layout(local_size_x_id = 0) in;

// SECOND: a second incoming gradient gy2 of the output (used twice), added to gy first.
const uint MASK = 1u, RESIDUAL = 2u, SECOND = 4u;

#ifdef BNG_SUMS
layout(std430, binding = 0) coherent buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer M { float mean[]; };
layout(std430, binding = 4) readonly buffer Y { float y[]; };     // unread without MASK
// The residual's gradient (written with RESIDUAL) or the second gradient (read with SECOND):
// never both, which keeps the kernel within 10 bindings.
layout(std430, binding = 5) buffer GR { float gr[]; };
layout(std430, binding = 6) coherent buffer Count { uint counter[]; };
layout(std430, binding = 7) writeonly buffer GG { float gg[]; };
layout(std430, binding = 8) writeonly buffer GB { float gb[]; };
layout(std430, binding = 9) readonly buffer I { float inv[]; };
layout(push_constant) uniform Push {
	uint gyoff, gystride, xoff, xstride;
	uint L, C, aPer, jchunks;
	uint chunk, nchunks, a0, a1;
	uint moff, poff, yoff, ystride;
	uint groff, grstride, flags, coff;
	uint ggoff, gboff, ioff;
} p;

shared float s1[gl_WorkGroupSize.x];
shared float s2[gl_WorkGroupSize.x];
shared bool last;

void main() {
	uint t = gl_LocalInvocationID.x;
	uint jc = gl_WorkGroupID.x, c = gl_WorkGroupID.y;
	uint ab = gl_WorkGroupID.z + p.a0 / p.aPer;
	uint aBegin = ab * p.aPer, aEnd = min(aBegin + p.aPer, p.a1);
	uint j0 = jc * p.chunk, j1 = min(j0 + p.chunk, p.L);
	float mu = mean[p.moff + c];
	float sg = 0.0, sgx = 0.0;
	for (uint a = aBegin; a < aEnd; a++) {
		uint gyr = p.gyoff + a * p.gystride + c * p.L;
		uint xr = p.xoff + a * p.xstride + c * p.L;
		uint yr = p.yoff + a * p.ystride + c * p.L;
		uint grr = p.groff + a * p.grstride + c * p.L;
		for (uint j = j0 + t; j < j1; j += gl_WorkGroupSize.x) {
			float g = gy[gyr + j];
			if ((p.flags & SECOND) != 0) {
				g += gr[grr + j];
			}
			if ((p.flags & MASK) != 0 && !(y[yr + j] > 0.0)) {
				g = 0.0;
			}
			if ((p.flags & RESIDUAL) != 0) {
				gr[grr + j] = g;
			}
			sg += g;
			sgx += g * (x[xr + j] - mu);
		}
	}
	s1[t] = sg;
	s2[t] = sgx;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			s1[t] += s1[t + s];
			s2[t] += s2[t + s];
		}
		barrier();
	}
	if (t == 0) {
		uint i = p.poff + 2 * (c * p.nchunks + ab * p.jchunks + jc);
		part[i] = s1[0];
		part[i + 1] = s2[0];
		// Publish the partial before counting it; the last counter sees every other's.
		memoryBarrierBuffer();
		last = atomicAdd(counter[p.coff + c], 1u) == p.nchunks - 1u;
	}
	barrier();
	if (t != 0 || !last) {
		return;
	}
	memoryBarrierBuffer();
	counter[p.coff + c] = 0u;
	float tg = 0.0, tgx = 0.0;
	for (uint k = 0; k < p.nchunks; k++) {
		uint i = p.poff + 2 * (c * p.nchunks + k);
		tg += part[i];
		tgx += part[i + 1];
	}
	gb[p.gboff + c] = tg;
	gg[p.ggoff + c] = tgx * inv[p.ioff + c];
}
#endif

#ifdef BNG_APPLY
layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };  // gy, or the residual's g
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer G { float gamma[]; };
layout(std430, binding = 4) readonly buffer M { float mean[]; };
layout(std430, binding = 5) readonly buffer I { float inv[]; };
layout(std430, binding = 6) readonly buffer GG { float gg[]; };
layout(std430, binding = 7) readonly buffer GB { float gb[]; };
layout(std430, binding = 8) readonly buffer Y { float y[]; };    // unread without MASK
layout(std430, binding = 9) readonly buffer GY2 { float gy2[]; }; // unread without SECOND
layout(push_constant) uniform Push {
	uint gxoff, gxstride, gyoff, gystride;
	uint xoff, xstride, C, HW;
	uint n0, count, goff, moff;
	uint ioff, ggoff, gboff, train;
	float M;
	uint yoff, ystride, flags;
	uint gy2off, gy2stride;
} p;

void main() {
	uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (e >= p.count) {
		return;
	}
	uint inner = p.C * p.HW;
	uint q = e / inner, r = e - q * inner, item = p.n0 + q, c = r / p.HW;
	float is = inv[p.ioff + c];
	float k = gamma[p.goff + c] * is;
	float g = gy[p.gyoff + item * p.gystride + r];
	if ((p.flags & SECOND) != 0) {
		g += gy2[p.gy2off + item * p.gy2stride + r];
	}
	if ((p.flags & MASK) != 0 && !(y[p.yoff + item * p.ystride + r] > 0.0)) {
		g = 0.0;
	}
	float v = k * g;
	if (p.train != 0) {
		float xhat = (x[p.xoff + item * p.xstride + r] - mean[p.moff + c]) * is;
		v = k * (g - gb[p.gboff + c] / p.M - xhat * (gg[p.ggoff + c] / p.M));
	}
	gx[p.gxoff + item * p.gxstride + r] = v;
}
#endif
