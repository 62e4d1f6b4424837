#version 450
// 2-D convolution (cross-correlation, NCHW, weight [O C/groups KH KW]) as an implicit GEMM per
// group: C[m][n] = Σ_k A[m][k]·B[k][n] with M = O/groups output channels, N = images·OH·OW
// output pixels, K = C/groups·KH·KW, A the weight rows and B gathered from x on the fly.
// CONV1X1 (1x1, stride 1, no padding) reads B as a plain matrix: x's channel planes.
// CONV_ACT adds the epilogue of ops.ConvAct (inference's conv with its batch norm folded in):
// after the bias, add a residual (ACT bit 2) and take max(·, 0) (ACT bit 1).
// Oracle: ops/cpu/conv2d.go Conv2D.

#include "common.glsl"
#include "conv_gemm.glsl"

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { float w[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#ifdef CONV_ACT
// --- eval epilogue (ops.ConvAct): its binding and constant ---
layout(std430, binding = 4) readonly buffer Res { float res[]; };
layout(constant_id = 10) const uint ACT = 0; // 1: ReLU, 2: residual
// --- end eval epilogue ---
#endif

uint M, N, K, OHW, HW, m0, n0, g;
// This invocation's B column: fixed for the whole K loop, so it is decoded once.
uint bCol;
bool bOK;
uint xBase;
int iy0, ix0;

void loadTiles(uint k0) {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint l = tid + r * WG;
		uint m = m0 + l / BK, k = k0 + l % BK;
		ra[r] = (m < M && k < K) ? w[p.woff + (g * p.Og + m) * p.wRow + k] : 0.0;
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint k = k0 + tid / BN + r * (WG / BN);
		float v = 0.0;
		if (bOK && k < K) {
#ifdef CONV1X1
			v = x[xBase + k * HW];
#else
			uint c = k / KHW, rem = k - c * KHW;
			uint ky = rem / KW, kx = rem - ky * KW;
			int iy = iy0 + int(ky) * p.dil, ix = ix0 + int(kx) * p.dil;
			if (iy >= 0 && iy < int(p.H) && ix >= 0 && ix < int(p.W)) {
				v = x[xBase + c * HW + uint(iy) * p.W + uint(ix)];
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
	M = p.Og;
	N = p.nimg * OHW;
	K = p.Cg * KHW;
	m0 = gl_WorkGroupID.y * BM;
	n0 = p.colOff + gl_WorkGroupID.x * BN;

	bCol = n0 + tid % BN;
	bOK = bCol < N;
	uint img = p.n0 + bCol / OHW, pix = bCol % OHW;
	uint oy = pix / p.OW, ox = pix - oy * p.OW;
	iy0 = int(oy) * S - p.pad;
	ix0 = int(ox) * S - p.pad;
	xBase = p.xoff + img * p.xstride + g * p.Cg * HW;
#ifdef CONV1X1
	xBase += pix;
#endif

	gemmLoop(0, K);

	uint tm = tmOf(tid), tn = tnOf(tid);
	[[unroll]] for (uint j = 0; j < TN; j++) {
		uint n = n0 + tn + j * (BN / TN);
		if (n >= N) {
			continue;
		}
		uint im = p.n0 + n / OHW, px = n % OHW;
		uint base = p.yoff + im * p.ystride + g * p.Og * OHW + px;
		[[unroll]] for (uint i = 0; i < TM; i++) {
			uint m = m0 + rowOf(tm, i);
			if (m < M) {
				float v = acc[i * TN + j];
				if (p.hasBias != 0) {
					v += bias[p.boff + g * p.Og + m];
				}
#ifdef CONV_ACT
				// --- eval epilogue ---
				if ((ACT & 2u) != 0u) {
					v += res[p.roff + im * p.rstride + (g * p.Og + m) * OHW + px];
				}
				if ((ACT & 1u) != 0u) {
					v = max(v, 0.0);
				}
				// --- end eval epilogue ---
#endif
				y[base + m * OHW] = v;
			}
		}
	}
}
