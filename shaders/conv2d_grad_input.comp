#version 450
// The input gradient of conv2d as the transposed implicit GEMM per group:
// dX[m][n] = Σ_k A[m][k]·B[k][n] with M = C/groups input channels, N = images·H·W input pixels,
// K = O/groups·KH·KW, A[m][(o,ky,kx)] = W[o][m][ky][kx], and B gathering dY at
// oy = (iy + pad − ky·dil)/stride (zero where that is not a whole in-range row; likewise ox).
// CONV1X1 (1x1, stride 1, no padding) is dX = Wᵀ·dY per image.
// HALF (mixed precision, ops/vk Conv2DGradInputMixed): dY and W are fp16 buffers, widened to
// fp32 as they are loaded; sums stay fp32. HALF_OUT stores dX in fp16, rounded to nearest even
// (half.glsl). The mixed kernels never accumulate (accum is 0).
// Oracle: ops/cpu/conv2d.go Conv2DGradInput.

#ifdef HALF
#extension GL_EXT_shader_16bit_storage : require
#endif

#include "common.glsl"
#include "conv_gemm.glsl"

#ifdef HALF
// ---- fp16 storage (mixed precision) ----
#include "half.glsl"
#ifdef HALF_OUT
layout(std430, binding = 0) writeonly buffer GX { uint16_t gx[]; };
void storeGX(uint i, float v) { gx[i] = uint16_t(toHalf(floatBitsToUint(v))); }
#else
layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
void storeGX(uint i, float v) { gx[i] = v; }
#endif
layout(std430, binding = 1) readonly buffer GY { float16_t gy[]; };
layout(std430, binding = 2) readonly buffer Wt { float16_t w[]; };
// ---- end fp16 storage ----
#else
layout(std430, binding = 0) buffer GX { float gx[]; }; // read too when accumulating
layout(std430, binding = 1) readonly buffer GY { float gy[]; };
layout(std430, binding = 2) readonly buffer Wt { float w[]; };
void storeGX(uint i, float v) { gx[i] = p.accum != 0u ? gx[i] + v : v; }
#endif

uint M, N, K, OHW, HW, m0, n0, g;
bool bOK;
uint yBase;
int ty0, tx0;

void loadTiles(uint k0) {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		uint m = m0 + l / BK, k = k0 + l % BK;
		float v = 0.0;
		if (m < M && k < K) {
			uint o = k / KHW, kyx = k - o * KHW;
			v = float(w[p.woff + (g * p.Og + o) * p.wRow + m * KHW + kyx]);
		}
		ra[r] = v;
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint k = k0 + tid / BN + r * (WG / BN);
		float v = 0.0;
		if (bOK && k < K) {
#ifdef CONV1X1
			v = float(gy[yBase + k * OHW]);
#else
			uint o = k / KHW, rem = k - o * KHW;
			uint ky = rem / KW, kx = rem - ky * KW;
			int ty = ty0 - int(ky) * p.dil, tx = tx0 - int(kx) * p.dil;
			if (ty >= 0 && tx >= 0 && ty % S == 0 && tx % S == 0) {
				uint oy = uint(ty / S), ox = uint(tx / S);
				if (oy < p.OH && ox < p.OW) {
					v = float(gy[yBase + o * OHW + oy * p.OW + ox]);
				}
			}
#endif
		}
		rb[r] = v;
	}
}

void storeTiles() {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		As[(l % BK) * ASTRIDE + l / BK] = ra[r];
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		Bs[(tid / BN + r * (WG / BN)) * BSTRIDE + tid % BN] = rb[r];
	}
}

void main() {
	uint tid = gl_LocalInvocationID.x;
	g = gl_WorkGroupID.z;
	OHW = p.OH * p.OW;
	HW = p.H * p.W;
	M = p.Cg;
	N = p.nimg * HW;
	K = p.Og * KHW;
	m0 = gl_WorkGroupID.y * BM;
	n0 = p.colOff + gl_WorkGroupID.x * BN;

	uint col = n0 + tid % BN;
	bOK = col < N;
	uint img = p.n0 + col / HW, pix = col % HW;
	uint iy = pix / p.W, ix = pix - iy * p.W;
	ty0 = int(iy) + p.pad;
	tx0 = int(ix) + p.pad;
	yBase = p.yoff + img * p.ystride + g * p.Og * OHW;
#ifdef CONV1X1
	yBase += pix;
#endif

	gemmLoop(0, K);

	uint tm = tmOf(tid), tn = tnOf(tid);
	[[unroll]] for (uint j = 0; j < TN; j++) {
		uint n = n0 + tn + j * (BN / TN);
		if (n >= N) {
			continue;
		}
		uint im = p.n0 + n / HW, px = n % HW;
		uint base = p.xoff + im * p.xstride + g * p.Cg * HW + px;
		[[unroll]] for (uint i = 0; i < TM; i++) {
			uint m = m0 + rowOf(tm, i);
			if (m < M) {
				storeGX(base + m * HW, acc[i * TN + j]);
			}
		}
	}
}
