#version 450
// Bilinear resizing (PyTorch's upsample_bilinear2d, no antialiasing) with per-axis tap tables
// computed on the host exactly as the CPU computes them (float32 source coordinates), so both
// backends pick the same source pixels and weights.
// Oracle: ops/cpu/resize_bilinear.go ResizeBilinear, bilinearTaps.
//
// Table layout (float words; indices stored as bit patterns): for each axis, per output index
// d: i0, i1, w0, w1. The Y table starts at tyoff, the X table at txoff.

#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Y { float y[]; }; // read too when accumulating
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer T { float tab[]; };

layout(push_constant) uniform Push {
	uint yoff, ystride, xoff, xstride;
	uint C, H, W, OH, OW;
	uint tyoff, txoff;
	uint n0, count;
	uint accum, relu; // add to y's values (ResizeBilinearAdd), then max(·, 0)
} p;

void main() {
	uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (e >= p.count) {
		return;
	}
	uint plane = p.OH * p.OW;
	uint nc = e / plane, r = e - nc * plane;
	uint item = p.n0 + nc / p.C, c = nc % p.C;
	uint oy = r / p.OW, ox = r % p.OW;
	uint ty = p.tyoff + 4 * oy, tx = p.txoff + 4 * ox;
	uint y0 = floatBitsToUint(tab[ty]), y1 = floatBitsToUint(tab[ty + 1]);
	uint x0 = floatBitsToUint(tab[tx]), x1 = floatBitsToUint(tab[tx + 1]);
	float wy0 = tab[ty + 2], wy1 = tab[ty + 3], wx0 = tab[tx + 2], wx1 = tab[tx + 3];
	uint base = p.xoff + item * p.xstride + c * p.H * p.W;
	uint r0 = base + y0 * p.W, r1 = base + y1 * p.W;
	float v = wy0 * (wx0 * x[r0 + x0] + wx1 * x[r0 + x1]) + wy1 * (wx0 * x[r1 + x0] + wx1 * x[r1 + x1]);
	uint at = p.yoff + item * p.ystride + c * plane + r;
	if (p.accum != 0u) {
		v = y[at] + v;
	}
	if (p.relu != 0u) {
		v = max(v, 0.0);
	}
	y[at] = v;
}
