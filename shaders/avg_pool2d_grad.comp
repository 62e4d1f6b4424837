#version 450
// Average pooling's gradient as a gather: each input element sums gy/divisor over the windows
// that contain it, in the CPU's scatter order (deterministic, no atomics).
// Oracle: ops/cpu/pool2d.go AvgPool2DGrad.

#include "common.glsl"
#include "pool2d.glsl"

layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };

void main() {
	uint e;
	if (!gridIndex(e)) {
		return;
	}
	uint plane = p.H * p.W;
	uint nc = e / plane, r = e - nc * plane;
	uint item = p.n0 + nc / p.C, c = nc % p.C;
	int iy = int(r / p.W), ix = int(r % p.W);
	uint gb = p.yoff + item * p.ystride + c * p.OH * p.OW;
	int oy0, oy1, ox0, ox1;
	covering(iy, int(p.OH), oy0, oy1);
	covering(ix, int(p.OW), ox0, ox1);
	float acc = 0.0;
	for (int oy = oy0; oy <= oy1; oy++) {
		for (int ox = ox0; ox <= ox1; ox++) {
			int y0, y1, x0, x1;
			float div;
			window(oy, ox, y0, y1, x0, x1, div);
			acc += gy[gb + uint(oy) * p.OW + uint(ox)] / div;
		}
	}
	gx[p.xoff + item * p.xstride + c * plane + r] = acc;
}
