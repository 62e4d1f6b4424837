#version 450
// Max pooling's gradient as a gather: each input element sums the output gradients of the
// windows whose first maximum (row-major; a NaN stops the scan) it is, recomputed from x, in the
// order the CPU scatters them, so no atomics are needed and the result is deterministic.
// Oracle: ops/cpu/pool2d.go MaxPool2DGrad.

#include "common.glsl"
#include "pool2d.glsl"

layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };

void main() {
	uint e;
	if (!gridIndex(e)) {
		return;
	}
	uint plane = p.H * p.W;
	uint nc = e / plane, r = e - nc * plane;
	uint item = p.n0 + nc / p.C, c = nc % p.C;
	int iy = int(r / p.W), ix = int(r % p.W);
	int me = iy * int(p.W) + ix;
	uint xb = p.foff + item * p.fstride + c * plane;
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
			int best = -1;
			float m = uintBitsToFloat(0xff800000u);
			for (int yy = y0; yy < y1; yy++) {
				for (int xx = x0; xx < x1; xx++) {
					float v = x[xb + uint(yy) * p.W + uint(xx)];
					if (v > m || isnan(v) || best < 0) {
						best = yy * int(p.W) + xx;
						m = v;
						if (isnan(v)) {
							yy = y1; // a NaN wins and ends the scan
							break;
						}
					}
				}
			}
			if (best == me) {
				acc += gy[gb + uint(oy) * p.OW + uint(ox)];
			}
		}
	}
	gx[p.xoff + item * p.xstride + c * plane + r] = acc;
}
