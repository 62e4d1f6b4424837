#version 450
// Layer normalisation over the last dimension (D values per row) and its gradient.
// LN: per row (one workgroup), the mean and a second-pass variance, y = x̂·gamma + beta.
// LN_GRAD_ROWS: per row, gx = invStd·(g − mean(g) − x̂·mean(g·x̂)) with g = gy·gamma.
// LN_GRAD_COLS: per (column, chunk of 64 rows), partial sums of gy·x̂ and gy for the gamma and
// beta gradients, added in order afterwards (reduce_sum_cols).
// Oracle: ops/cpu/layer_norm.go LayerNorm, LayerNormGrad.

#include "common.glsl"

#ifndef LN_GRAD_COLS
#include "rows.glsl"
#else
layout(local_size_x_id = 0) in;
#endif

#ifdef LN
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) readonly buffer Bt { float beta[]; };
layout(std430, binding = 4) writeonly buffer Mu { float mean[]; };
layout(std430, binding = 5) writeonly buffer Is { float inv[]; };
#endif
#ifdef LN_GRAD_ROWS
layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer G { float gamma[]; };
layout(std430, binding = 4) readonly buffer Mu { float mean[]; };
layout(std430, binding = 5) readonly buffer Is { float inv[]; };
#endif
#ifdef LN_GRAD_COLS
layout(std430, binding = 0) writeonly buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer Mu { float mean[]; };
layout(std430, binding = 4) readonly buffer Is { float inv[]; };
#endif

layout(push_constant) uniform Push {
	uint rows, d, perItem, chunk;
	uint ooff, ostride, xoff, xstride, gyoff, gystride; // o: y or gx
	uint goff, boff, moff, ioff;
	float eps;
} p;

#ifdef LN_GRAD_COLS
void main() {
	uint i = gl_GlobalInvocationID.x, c = gl_WorkGroupID.y;
	if (i >= p.d) {
		return;
	}
	float pg = 0.0, pb = 0.0;
	for (uint r = c * p.chunk; r < min((c + 1) * p.chunk, p.rows); r++) {
		uint item = r / p.perItem, j = r % p.perItem;
		float g = gy[p.gyoff + item * p.gystride + j * p.d + i];
		float xh = (x[p.xoff + item * p.xstride + j * p.d + i] - mean[p.moff + r]) * inv[p.ioff + r];
		pg += g * xh;
		pb += g;
	}
	part[2 * (c * p.d + i)] = pg;
	part[2 * (c * p.d + i) + 1] = pb;
}
#else
void main() {
	uint r;
	if (!rowIndex(p.rows, r)) {
		return;
	}
	uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
	uint item = r / p.perItem, j = r % p.perItem;
	uint ob = p.ooff + item * p.ostride + j * p.d;
	uint xb = p.xoff + item * p.xstride + j * p.d;
#ifdef LN
	float s = 0.0;
	for (uint i = t; i < p.d; i += wg) {
		s += x[xb + i];
	}
	float m = reduce_sum(s) / float(p.d);
	float ss = 0.0;
	for (uint i = t; i < p.d; i += wg) {
		float dv = x[xb + i] - m;
		ss += dv * dv;
	}
	float is = 1.0 / sqrt(reduce_sum(ss) / float(p.d) + p.eps);
	if (t == 0) {
		mean[p.moff + r] = m;
		inv[p.ioff + r] = is;
	}
	for (uint i = t; i < p.d; i += wg) {
		y[ob + i] = (x[xb + i] - m) * is * gamma[p.goff + i] + beta[p.boff + i];
	}
#else // LN_GRAD_ROWS
	uint gb = p.gyoff + item * p.gystride + j * p.d;
	float m = mean[p.moff + r], is = inv[p.ioff + r];
	float sg = 0.0, sgx = 0.0;
	for (uint i = t; i < p.d; i += wg) {
		float g = gy[gb + i] * gamma[p.goff + i];
		sg += g;
		sgx += g * (x[xb + i] - m) * is;
	}
	float meanG = reduce_sum(sg) / float(p.d);
	float meanGX = reduce_sum(sgx) / float(p.d);
	for (uint i = t; i < p.d; i += wg) {
		float g = gy[gb + i] * gamma[p.goff + i];
		float xh = (x[xb + i] - m) * is;
		gx[ob + i] = is * (g - meanG - xh * meanGX);
	}
#endif
}
#endif
