#version 450
// Batch normalisation, training and eval, in two kernels, with the block's tail fused.
// Oracle: ops/cpu/batch_norm2d.go BatchNormTrain, BatchNormEval.
//
// BN_STATS: per (channel, chunk of the N×H×W values) a Welford triple (count, mean, M2), merged
// across the workgroup with Chan's formula: one pass over x that, unlike Σx² − (Σx)², keeps its
// precision when the mean is large against the spread (activations after a ReLU). The last
// workgroup of a channel to finish (a per-channel atomic counter, which it resets to zero for the
// next call) merges the channel's chunks in order, writes mean and 1/sqrt(var+eps) and updates
// the running statistics (running_var from the unbiased variance, as PyTorch does): no separate
// kernel, and the same merge order, so the same bits, as one.
// BN_APPLY: y = act(x·scale + shift + residual) with the batch statistics (eval: the running
// ones), the residual and the ReLU optional.

#include "common.glsl"

layout(local_size_x_id = 0) in;

#ifdef BN_STATS
layout(std430, binding = 0) coherent buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) coherent buffer Count { uint counter[]; };
layout(std430, binding = 3) writeonly buffer Mean { float outMean[]; };
layout(std430, binding = 4) writeonly buffer Inv { float outInv[]; };
layout(std430, binding = 5) buffer RM { float rm[]; };
layout(std430, binding = 6) buffer RV { float rv[]; };
layout(push_constant) uniform Push {
	uint off, stride, L, C;
	uint aPer, jchunks, chunk, nchunks;
	uint a0, a1, poff, coff;
	uint moff, ioff, rmoff, rvoff;
	float count, eps, momentum;
} p;

shared float sn[gl_WorkGroupSize.x];
shared float sm[gl_WorkGroupSize.x];
shared float sq[gl_WorkGroupSize.x];
shared bool last;

void main() {
	uint t = gl_LocalInvocationID.x;
	uint jc = gl_WorkGroupID.x, c = gl_WorkGroupID.y;
	uint ab = gl_WorkGroupID.z + p.a0 / p.aPer;
	uint aBegin = ab * p.aPer, aEnd = min(aBegin + p.aPer, p.a1);
	uint j0 = jc * p.chunk, j1 = min(j0 + p.chunk, p.L);
	float n = 0.0, mean = 0.0, m2 = 0.0;
	for (uint a = aBegin; a < aEnd; a++) {
		uint row = p.off + a * p.stride + c * p.L;
		for (uint j = j0 + t; j < j1; j += gl_WorkGroupSize.x) {
			float v = x[row + j];
			n += 1.0;
			float d = v - mean;
			mean += d / n;
			m2 += d * (v - mean);
		}
	}
	sn[t] = n;
	sm[t] = mean;
	sq[t] = m2;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			float na = sn[t], nb = sn[t + s], nn = na + nb;
			if (nb > 0.0) {
				float delta = sm[t + s] - sm[t];
				sm[t] += delta * (nb / nn);
				sq[t] += sq[t + s] + delta * delta * (na * nb / nn);
				sn[t] = nn;
			}
		}
		barrier();
	}
	if (t == 0) {
		uint i = p.poff + 3 * (c * p.nchunks + ab * p.jchunks + jc);
		part[i] = sn[0];
		part[i + 1] = sm[0];
		part[i + 2] = sq[0];
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
	float cn = 0.0, mu = 0.0, q = 0.0;
	for (uint k = 0; k < p.nchunks; k++) {
		uint i = p.poff + 3 * (c * p.nchunks + k);
		float nb = part[i];
		if (nb > 0.0) {
			float nn = cn + nb, delta = part[i + 1] - mu;
			mu += delta * (nb / nn);
			q += part[i + 2] + delta * delta * (cn * nb / nn);
			cn = nn;
		}
	}
	float var = q / p.count;
	outMean[p.moff + c] = mu;
	outInv[p.ioff + c] = 1.0 / sqrt(var + p.eps);
	rm[p.rmoff + c] = (1.0 - p.momentum) * rm[p.rmoff + c] + p.momentum * mu;
	rv[p.rvoff + c] = (1.0 - p.momentum) * rv[p.rvoff + c] + p.momentum * (var * (p.count / (p.count - 1.0)));
}
#endif

#ifdef BN_APPLY
const uint EVAL = 1u, RESIDUAL = 2u, RELU = 4u;

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer M { float mv[]; };  // batch mean, or running mean
layout(std430, binding = 3) readonly buffer S { float sv[]; };  // 1/std, or running variance
layout(std430, binding = 4) readonly buffer G { float gamma[]; };
layout(std430, binding = 5) readonly buffer B { float beta[]; };
layout(std430, binding = 6) readonly buffer R { float res[]; }; // unread without RESIDUAL
layout(push_constant) uniform Push {
	uint yoff, ystride, xoff, xstride;
	uint C, HW, n0, count;
	uint moff, soff, goff, boff;
	uint roff, rstride, flags;
	float eps;
} p;

void main() {
	uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (e >= p.count) {
		return;
	}
	uint inner = p.C * p.HW;
	uint q = e / inner, r = e - q * inner, item = p.n0 + q, c = r / p.HW;
	float is = (p.flags & EVAL) != 0 ? 1.0 / sqrt(sv[p.soff + c] + p.eps) : sv[p.soff + c];
	float scale = is * gamma[p.goff + c];
	float shift = beta[p.boff + c] - mv[p.moff + c] * scale;
	float v = x[p.xoff + item * p.xstride + r] * scale + shift;
	if ((p.flags & RESIDUAL) != 0) {
		v += res[p.roff + item * p.rstride + r];
	}
	if ((p.flags & RELU) != 0) {
		v = max(v, 0.0);
	}
	y[p.yoff + item * p.ystride + r] = v;
}
#endif
