#version 450
// Bilinear resizing's gradient as a gather: each input element sums wy·wx·gy over the output
// taps that read it. The host's tables list, per input index of each axis, the (output index,
// weight) pairs in the order the CPU scatters them, so every element adds the same products in
// the same order as ops/cpu, without atomics.
// Oracle: ops/cpu/resize_bilinear.go ResizeBilinearGrad.
//
// Table layout per axis (float words; integers as bit patterns): start[in+1] offsets into the
// pair list, then pairs (d, w).

#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer T { float tab[]; };

layout(push_constant) uniform Push {
	uint xoff, xstride, yoff, ystride; // x: gx (input-sized), y: gy (output-sized)
	uint C, H, W, OH, OW;
	uint tyoff, txoff;
	uint n0, count;
} p;

void main() {
	uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (e >= p.count) {
		return;
	}
	uint plane = p.H * p.W;
	uint nc = e / plane, r = e - nc * plane;
	uint item = p.n0 + nc / p.C, c = nc % p.C;
	uint iy = r / p.W, ix = r % p.W;
	uint ys = floatBitsToUint(tab[p.tyoff + iy]), ye = floatBitsToUint(tab[p.tyoff + iy + 1]);
	uint xs = floatBitsToUint(tab[p.txoff + ix]), xe = floatBitsToUint(tab[p.txoff + ix + 1]);
	uint ylist = p.tyoff + p.H + 1, xlist = p.txoff + p.W + 1;
	uint gb = p.yoff + item * p.ystride + c * p.OH * p.OW;
	float acc = 0.0;
	for (uint a = ys; a < ye; a++) {
		uint dy = floatBitsToUint(tab[ylist + 2 * a]);
		float wy = tab[ylist + 2 * a + 1];
		for (uint b = xs; b < xe; b++) {
			uint dx = floatBitsToUint(tab[xlist + 2 * b]);
			float wx = tab[xlist + 2 * b + 1];
			acc += (wy * wx) * gy[gb + dy * p.OW + dx];
		}
	}
	gx[p.xoff + item * p.xstride + c * plane + r] = acc;
}
