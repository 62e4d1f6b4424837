#version 450
// Average pooling (count_include_pad and ceil_mode as PyTorch's avg_pool2d).
// Oracle: ops/cpu/pool2d.go AvgPool2D.

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
	int y0, y1, x0, x1;
	float div;
	window(int(r / p.OW), int(r % p.OW), y0, y1, x0, x1, div);
	uint base = p.xoff + item * p.xstride + c * p.H * p.W;
	float s = 0.0;
	for (int iy = y0; iy < y1; iy++) {
		for (int ix = x0; ix < x1; ix++) {
			s += x[base + uint(iy) * p.W + uint(ix)];
		}
	}
	y[p.yoff + item * p.ystride + c * plane + r] = s / div;
}
