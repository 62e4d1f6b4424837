#version 450
// The structure loss of F3Net/PraNet/CHNet on logits x [N 1 H W] against a soft mask: weight
// map w = 1 + 5·|box31(mask)/961 − mask| (count_include_pad), per-image sums, the batch loss
// and its gradient, in float32 with deterministic tree sums.
// Oracle: ops/cpu/loss.go (structureWeight, structureTerms, StructureLoss, StructureLossGrad).
//
// SL_BOX_ROWS: rows = the 31-wide horizontal box sum of the mask (zero outside).
// SL_WEIGHT:   w from the 31-tall vertical box sum of rows.
// SL_TERMS:    per (image, chunk of pixels) partial sums of bce, w·bce, w, σ·g·w, (σ+g)·w.
// SL_FINAL:    per image, its chunks in order; then the batch loss (one workgroup).
// SL_GRAD:     the gradient, per pixel, from the per-image sums and the incoming gradient.

#include "common.glsl"

layout(local_size_x_id = 0) in;

const int R = 15; // the 31x31 box's radius

uint gridIndex() {
	return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

#if defined(SL_BOX_ROWS) || defined(SL_WEIGHT)
layout(std430, binding = 0) writeonly buffer Out { float outv[]; };
layout(std430, binding = 1) readonly buffer Mask { float mask[]; };
#ifdef SL_WEIGHT
layout(std430, binding = 2) readonly buffer Rows { float rows[]; };
#endif
layout(push_constant) uniform Push {
	uint ooff, moff, mstride, roff;
	uint H, W, n0, count;
} p;

void main() {
	uint e = gridIndex();
	if (e >= p.count) {
		return;
	}
	uint hw = p.H * p.W;
	uint q = e / hw, r = e - q * hw, item = p.n0 + q;
	int y = int(r / p.W), x = int(r % p.W);
	uint mrow = p.moff + item * p.mstride;
	float s = 0.0;
#ifdef SL_BOX_ROWS
	for (int k = max(x - R, 0); k <= min(x + R, int(p.W) - 1); k++) {
		s += mask[mrow + uint(y) * p.W + uint(k)];
	}
	outv[p.ooff + item * hw + r] = s;
#else
	for (int k = max(y - R, 0); k <= min(y + R, int(p.H) - 1); k++) {
		s += rows[p.roff + item * hw + uint(k) * p.W + uint(x)];
	}
	outv[p.ooff + item * hw + r] = 1.0 + 5.0 * abs(s / 961.0 - mask[mrow + r]);
#endif
}
#endif

#ifdef SL_TERMS
layout(std430, binding = 0) writeonly buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Mask { float mask[]; };
layout(std430, binding = 3) readonly buffer Wt { float wt[]; };
layout(push_constant) uniform Push {
	uint xoff, xstride, moff, mstride;
	uint woff, HW, chunk, nchunks;
	uint n0, poff;
} p;

shared float sh[5][gl_WorkGroupSize.x];

void main() {
	uint t = gl_LocalInvocationID.x;
	uint jc = gl_WorkGroupID.x, item = p.n0 + gl_WorkGroupID.y;
	uint j0 = jc * p.chunk, j1 = min(j0 + p.chunk, p.HW);
	float acc[5] = float[5](0.0, 0.0, 0.0, 0.0, 0.0);
	for (uint j = j0 + t; j < j1; j += gl_WorkGroupSize.x) {
		float xv = x[p.xoff + item * p.xstride + j];
		float g = mask[p.moff + item * p.mstride + j];
		float w = wt[p.woff + item * p.HW + j];
		float l = bce_f(xv, g);
		float s = sigmoid_f(xv);
		acc[0] += l;
		acc[1] += w * l;
		acc[2] += w;
		acc[3] += s * g * w;
		acc[4] += (s + g) * w;
	}
	for (int k = 0; k < 5; k++) {
		sh[k][t] = acc[k];
	}
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			for (int k = 0; k < 5; k++) {
				sh[k][t] += sh[k][t + s];
			}
		}
		barrier();
	}
	if (t == 0) {
		for (int k = 0; k < 5; k++) {
			part[p.poff + (item * p.nchunks + jc) * 5 + k] = sh[k][0];
		}
	}
}
#endif

#ifdef SL_FINAL
layout(std430, binding = 0) writeonly buffer Loss { float loss[]; };
layout(std430, binding = 1) buffer Terms { float terms[]; };
layout(std430, binding = 2) readonly buffer Part { float part[]; };
layout(push_constant) uniform Push {
	uint N, nchunks, weighted, lossoff;
	uint toff, poff;
	float numel;
} p;

void main() {
	uint t = gl_LocalInvocationID.x;
	for (uint n = t; n < p.N; n += gl_WorkGroupSize.x) {
		for (int k = 0; k < 5; k++) {
			float s = 0.0;
			for (uint c = 0; c < p.nchunks; c++) {
				s += part[p.poff + (n * p.nchunks + c) * 5 + k];
			}
			terms[p.toff + n * 5 + k] = s;
		}
	}
	barrier();
	if (t == 0) {
		float all = 0.0, l = 0.0;
		for (uint n = 0; n < p.N; n++) {
			uint b = p.toff + n * 5;
			float bce = terms[b], wbce = terms[b + 1], wsum = terms[b + 2], inter = terms[b + 3], uni = terms[b + 4];
			float wiou = 1.0 - (inter + 1.0) / (uni - inter + 1.0);
			all += bce;
			l += (p.weighted != 0 ? wbce / wsum + wiou : wiou) / float(p.N);
		}
		if (p.weighted == 0) {
			l += all / p.numel;
		}
		loss[p.lossoff] = l;
	}
}
#endif

#ifdef SL_GRAD
layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Mask { float mask[]; };
layout(std430, binding = 3) readonly buffer Wt { float wt[]; };
layout(std430, binding = 4) readonly buffer Terms { float terms[]; };
layout(std430, binding = 5) readonly buffer GL { float gl[]; };
layout(push_constant) uniform Push {
	uint gxoff, gxstride, xoff, xstride;
	uint moff, mstride, woff, toff;
	uint gloff, HW, n0, count;
	uint weighted, N;
	float numel;
} p;

void main() {
	uint e = gridIndex();
	if (e >= p.count) {
		return;
	}
	uint q = e / p.HW, j = e - q * p.HW, item = p.n0 + q;
	uint b = p.toff + item * 5;
	float wsum = terms[b + 2], inter = terms[b + 3], uni = terms[b + 4];
	float d = uni - inter + 1.0;
	float a = (inter + 1.0) / (d * d), c = (uni + 2.0) / (d * d);
	float s = sigmoid_f(x[p.xoff + item * p.xstride + j]);
	float g = mask[p.moff + item * p.mstride + j];
	float w = wt[p.woff + item * p.HW + j];
	float grad = s * (1.0 - s) * w * (a - c * g);
	if (p.weighted != 0) {
		grad += w * (s - g) / wsum;
	} else {
		grad += (s - g) * float(p.N) / p.numel;
	}
	gx[p.gxoff + item * p.gxstride + j] = grad * (gl[p.gloff] / float(p.N));
}
#endif
