#version 450
// Max pooling with -inf padding; a NaN in a window wins, as in PyTorch.
// Oracle: ops/cpu/pool2d.go MaxPool2D.

#include "common.glsl"
#include "pool2d.glsl"

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

void main() {
	uint e;
	if (!gridIndex(e)) {
		return;
	}
	uint plane = p.OH * p.OW;
	uint nc = e / plane, r = e - nc * plane;
	uint item = p.n0 + nc / p.C, c = nc % p.C;
	int oy = int(r / p.OW), ox = int(r % p.OW);
	int y0, y1, x0, x1;
	float div;
	window(oy, ox, y0, y1, x0, x1, div);
	uint base = p.xoff + item * p.xstride + c * p.H * p.W;
	float m = uintBitsToFloat(0xff800000u); // -inf
	for (int iy = y0; iy < y1; iy++) {
		for (int ix = x0; ix < x1; ix++) {
			float v = x[base + uint(iy) * p.W + uint(ix)];
			if (v > m || isnan(v)) {
				m = v;
			}
		}
	}
	y[p.yoff + item * p.ystride + c * plane + r] = m;
}
