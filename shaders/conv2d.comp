#version 450
// 2-D convolution (cross-correlation, NCHW, weight [O C/groups KH KW]) as an implicit GEMM per
// group: C[m][n] = Σ_k A[m][k]·B[k][n] with M = O/groups output channels, N = images·OH·OW
// output pixels, K = C/groups·KH·KW, A the weight rows and B gathered from x on the fly.
// CONV1X1 (1x1, stride 1, no padding) reads B as a plain matrix: x's channel planes.
// CONV_ACT adds the epilogue of ops.ConvAct (inference's conv with its batch norm folded in):
// after the bias, add a residual (ACT bit 2) and take max(·, 0) (ACT bit 1).
// HALF (mixed precision, ops/vk Conv2DMixed): x and w are fp16 buffers, widened to fp32 as they
// are loaded into the shared tiles; sums and bias stay fp32, so only the inputs' rounding
// differs from the fp32 kernel. HALF_OUT also stores y in fp16, rounded to nearest even
// (half.glsl): the same bits as ToHalf of the fp32-output kernel's result.
// Oracle: ops/cpu/conv2d.go Conv2D.

#ifdef HALF
#extension GL_EXT_shader_16bit_storage : require
#endif

#include "common.glsl"
#include "conv_gemm.glsl"

#ifdef HALF
// ---- fp16 storage (mixed precision) ----
#if defined(SUM_INPUT) || defined(BN_STATS) || defined(CONV_ACT)
#error HALF has no SUM_INPUT, BN_STATS or CONV_ACT form
#endif
#include "half.glsl"
#ifdef HALF_OUT
layout(std430, binding = 0) writeonly buffer Y { uint16_t y[]; };
void storeY(uint i, float v) { y[i] = uint16_t(toHalf(floatBitsToUint(v))); }
#else
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
void storeY(uint i, float v) { y[i] = v; }
#endif
layout(std430, binding = 1) readonly buffer X { float16_t x[]; };
layout(std430, binding = 2) readonly buffer Wt { float16_t w[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
float loadX(uint i) { return float(x[i]); }
// ---- end fp16 storage ----
#else
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { float w[]; };
#ifdef SUM_INPUT
// ---- The input is the sum x + x2 of two tensors of one layout (Res2Net's sp + spx[i]), added
// as it is loaded: no pass writing the sum. x2 takes the bias's binding and offset (no bias). ----
layout(std430, binding = 3) readonly buffer X2 { float x2[]; };
float loadX(uint i) { return x[i] + x2[i - p.xoff + p.boff]; }
// ---- end SUM_INPUT ----
#else
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
float loadX(uint i) { return x[i]; }
#endif
void storeY(uint i, float v) { y[i] = v; }
#endif

#ifdef BN_STATS
// ---- Batch-norm statistics of the output, gathered in the epilogue (training: conv → BN). ----
// Each workgroup reduces its tile's columns per output channel to a Welford triple (count,
// mean, M2: per invocation over its TN columns, then Chan's merge across the invocations of a
// row, in order) and stores it as the tile's partial. The last column tile of a row block to
// finish (a counter per row block, left zero again) merges each channel's partials in tile
// order, as batch_norm2d.comp BN_STATS merges its chunks, and writes mean, 1/sqrt(var+eps) and
// the running statistics. One dispatch covers the whole output (the host checks), groups 1, no
// bias. The forward push fields this variant leaves unused carry its offsets:
#define P_COFF p.kPer
#define P_MOFF p.splits
#define P_IOFF p.sOff
#define P_RMOFF p.sTotal
#define P_RVOFF p.accum
#define P_EPS uintBitsToFloat(p.fixup)
#define P_MOMENTUM uintBitsToFloat(p.cntOff)
layout(std430, binding = 4) coherent buffer Part { float part[]; };
layout(std430, binding = 5) coherent buffer Count { uint counter[]; };
layout(std430, binding = 6) writeonly buffer Mean { float outMean[]; };
layout(std430, binding = 7) writeonly buffer Inv { float outInv[]; };
layout(std430, binding = 8) buffer RM { float rm[]; };
layout(std430, binding = 9) buffer RV { float rv[]; };

shared float sn[WG];
shared float sm[WG];
shared float sq[WG];
shared bool lastTile;

// chan merges triple (nb, mb, qb) into (n, mean, q).
void chan(inout float n, inout float mean, inout float q, float nb, float mb, float qb) {
	if (nb > 0.0) {
		float nn = n + nb, delta = mb - mean;
		mean += delta * (nb / nn);
		q += qb + delta * delta * (n * nb / nn);
		n = nn;
	}
}

void bnStats(uint M, uint N, uint m0, uint n0) {
	uint tid = gl_LocalInvocationID.x;
	uint tm = tmOf(tid), tn = tnOf(tid);
	uint tiles = gl_NumWorkGroups.x, tile = gl_WorkGroupID.x;
	[[unroll]] for (uint i = 0; i < TM; i++) {
		float n = 0.0, mean = 0.0, q = 0.0;
		[[unroll]] for (uint j = 0; j < TN; j++) {
			if (n0 + tn + j * (BN / TN) < N) {
				float v = acc[i * TN + j];
				n += 1.0;
				float d = v - mean;
				mean += d / n;
				q += d * (v - mean);
			}
		}
		sn[tid] = n;
		sm[tid] = mean;
		sq[tid] = q;
		barrier();
		uint m = m0 + rowOf(tm, i);
		if (tn == 0 && m < M) {
			for (uint k = 1; k < BN / TN; k++) {
				chan(n, mean, q, sn[tid + k], sm[tid + k], sq[tid + k]);
			}
			uint at = 3 * (m * tiles + tile);
			part[at] = n;
			part[at + 1] = mean;
			part[at + 2] = q;
			// Publish the partial before the tile is counted.
			memoryBarrierBuffer();
		}
		barrier();
	}
	if (tid == 0) {
		lastTile = atomicAdd(counter[P_COFF + gl_WorkGroupID.y], 1u) == tiles - 1u;
	}
	barrier();
	if (!lastTile) {
		return;
	}
	memoryBarrierBuffer();
	if (tid == 0) {
		counter[P_COFF + gl_WorkGroupID.y] = 0u;
	}
	for (uint r = tid; r < BM; r += WG) {
		uint m = m0 + r;
		if (m >= M) {
			break;
		}
		float n = 0.0, mean = 0.0, q = 0.0;
		for (uint k = 0; k < tiles; k++) {
			uint at = 3 * (m * tiles + k);
			chan(n, mean, q, part[at], part[at + 1], part[at + 2]);
		}
		float var = q / n;
		outMean[P_MOFF + m] = mean;
		outInv[P_IOFF + m] = 1.0 / sqrt(var + P_EPS);
		float mom = P_MOMENTUM;
		rm[P_RMOFF + m] = (1.0 - mom) * rm[P_RMOFF + m] + mom * mean;
		rv[P_RVOFF + m] = (1.0 - mom) * rv[P_RVOFF + m] + mom * (var * (n / (n - 1.0)));
	}
}
// ---- end BN_STATS ----
#endif

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
		ra[r] = (m < M && k < K) ? float(w[p.woff + (g * p.Og + m) * p.wRow + k]) : 0.0;
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint k = k0 + tid / BN + r * (WG / BN);
		float v = 0.0;
		if (bOK && k < K) {
#ifdef CONV1X1
			v = loadX(xBase + k * HW);
#else
			uint c = k / KHW, rem = k - c * KHW;
			uint ky = rem / KW, kx = rem - ky * KW;
			int iy = iy0 + int(ky) * p.dil, ix = ix0 + int(kx) * p.dil;
			if (iy >= 0 && iy < int(p.H) && ix >= 0 && ix < int(p.W)) {
				v = loadX(xBase + c * HW + uint(iy) * p.W + uint(ix));
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
#ifndef SUM_INPUT
				if (p.hasBias != 0) {
					v += bias[p.boff + g * p.Og + m];
				}
#endif
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
				storeY(base + m * OHW, v);
			}
		}
	}
#ifdef BN_STATS
	bnStats(M, N, m0, n0);
#endif
}
