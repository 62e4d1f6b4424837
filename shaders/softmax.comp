#version 450
// Softmax over the last dimension and its gradient, one workgroup per row.
// SOFTMAX: dst = exp(x − max)/Σ exp(x − max). SOFTMAX_GRAD: gx = y·(gy − Σ gy·y); the row's dot
// product is complete before gx is written, so gx may alias gy.
// Oracle: ops/cpu/softmax.go Softmax, SoftmaxGrad (float64 sums there, float32 trees here).

#include "common.glsl"
#include "rows.glsl"

layout(std430, binding = 0) buffer Out { float o[]; };
layout(std430, binding = 1) readonly buffer In1 { float in1[]; }; // x, or gy
#ifdef SOFTMAX_GRAD
layout(std430, binding = 2) readonly buffer In2 { float in2[]; }; // y
#endif

layout(push_constant) uniform Push {
	uint rows, d, perItem;
	uint ooff, ostride, off1, stride1, off2, stride2;
} p;

void main() {
	uint r;
	if (!rowIndex(p.rows, r)) {
		return;
	}
	uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
	uint item = r / p.perItem, j = r % p.perItem;
	uint ob = p.ooff + item * p.ostride + j * p.d;
	uint b1 = p.off1 + item * p.stride1 + j * p.d;
#ifdef SOFTMAX
	float mx = uintBitsToFloat(0xff800000u);
	for (uint i = t; i < p.d; i += wg) {
		mx = max(mx, in1[b1 + i]);
	}
	mx = reduce_max(mx);
	float s = 0.0;
	for (uint i = t; i < p.d; i += wg) {
		float e = exp(in1[b1 + i] - mx);
		o[ob + i] = e;
		s += e;
	}
	float inv = 1.0 / reduce_sum(s);
	for (uint i = t; i < p.d; i += wg) {
		o[ob + i] *= inv;
	}
#else
	uint b2 = p.off2 + item * p.stride2 + j * p.d;
	float dot = 0.0;
	for (uint i = t; i < p.d; i += wg) {
		dot += in1[b1 + i] * in2[b2 + i];
	}
	dot = reduce_sum(dot);
	for (uint i = t; i < p.d; i += wg) {
		o[ob + i] = in2[b2 + i] * (in1[b1 + i] - dot);
	}
#endif
}
