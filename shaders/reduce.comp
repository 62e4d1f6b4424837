#version 450
// Sums over batch-strided tensors, in float32, deterministic: a fixed assignment of elements to
// workgroups and a fixed tree order, so a result does not depend on scheduling.
// Oracle: ops/cpu/reduce.go (Sum; the CPU accumulates in float64).
//
// SUM_CHUNKS: stage one. Output o sums x[off + a*stride + (o % C)*L + j] over items a and
// positions j < L; the (a, j) space is cut into chunks, one workgroup each, writing partial sums
// part[o*nchunks + chunk]. AxesAll is C=1, L=C·H·W; AxesNHW is o = channel, L=H·W; AxesHW
// (mode 1) has one item per output, a = o / C.
// SUM_ROWS: stage two, one workgroup per output: out[o] = scale·Σ_k in[o*so + k*sk] (long rows).
// SUM_COLS: stage two, one invocation per output, summing k in order (short rows, many outputs:
// the split-K reduction of conv2d_grad_weight).

#include "common.glsl"

layout(local_size_x_id = 0) in;

#ifdef SUM_CHUNKS
layout(std430, binding = 0) writeonly buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

layout(push_constant) uniform Push {
	uint off, stride, L, C;
	uint aPer, jchunks, chunk, nchunks;
	uint a0, a1; // items of this dispatch (modes 0)
	uint o0;     // first output of this dispatch (mode 1)
	uint mode;
	uint poff;
} p;
#else
layout(std430, binding = 0) writeonly buffer Out { float outv[]; };
layout(std430, binding = 1) readonly buffer In { float inv[]; };

layout(push_constant) uniform Push {
	uint ioff, so, sk, count;
	uint ooff, outputs;
	float scale;
} p;
#endif

shared float tree[gl_WorkGroupSize.x];

// reduce_tree sums v over the workgroup; invocation 0 gets the total. The workgroup size must
// be a power of two (the host picks 256 or 64).
float reduce_tree(float v) {
	uint t = gl_LocalInvocationID.x;
	tree[t] = v;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			tree[t] += tree[t + s];
		}
		barrier();
	}
	return tree[0];
}

void main() {
	uint t = gl_LocalInvocationID.x;
#ifdef SUM_CHUNKS
	uint jc = gl_WorkGroupID.x;
	uint o = p.o0 + gl_WorkGroupID.y;
	uint ab = gl_WorkGroupID.z + (p.mode == 1 ? 0 : p.a0 / p.aPer);
	uint aBegin = p.mode == 1 ? o / p.C : ab * p.aPer;
	uint aEnd = p.mode == 1 ? aBegin + 1 : min(aBegin + p.aPer, p.a1);
	uint j0 = jc * p.chunk;
	uint j1 = min(j0 + p.chunk, p.L);
	uint base = p.off + (o % p.C) * p.L;
	float acc = 0.0;
	for (uint a = aBegin; a < aEnd; a++) {
		uint row = base + a * p.stride;
		for (uint j = j0 + t; j < j1; j += gl_WorkGroupSize.x) {
			acc += x[row + j];
		}
	}
	float s = reduce_tree(acc);
	if (t == 0) {
		uint chunkID = p.mode == 1 ? jc : ab * p.jchunks + jc;
		part[p.poff + o * p.nchunks + chunkID] = s;
	}
#elif defined(SUM_ROWS)
	uint o = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
	if (o >= p.outputs) {
		return; // uniform across the workgroup: no barrier is skipped by part of it
	}
	float acc = 0.0;
	for (uint k = t; k < p.count; k += gl_WorkGroupSize.x) {
		acc += inv[p.ioff + o * p.so + k * p.sk];
	}
	float s = reduce_tree(acc);
	if (t == 0) {
		outv[p.ooff + o] = s * p.scale;
	}
#else // SUM_COLS
	uint o = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (o >= p.outputs) {
		return;
	}
	float acc = 0.0;
	for (uint k = 0; k < p.count; k++) {
		acc += inv[p.ioff + o * p.so + k * p.sk];
	}
	outv[p.ooff + o] = acc * p.scale;
#endif
}
