#version 450
// The weight gradient of conv2d as a GEMM per group whose reduction runs over every output
// pixel of every image: dW[m][n] = Σ_k A[m][k]·B[k][n] with M = O/groups, N = C/groups·KH·KW,
// K = images·OH·OW, A = dY's channel rows and B gathered from x. K is long and M·N small, so K
// is split (split-K): workgroup z = group·splits + s sums its slice into partial s. With FIXUP
// set, the last workgroup of each output tile to finish (a per-tile counter) adds the tile's
// partials in split order and writes dW; else a second kernel (reduce_sum_cols) adds them in
// the same order. Deterministic either way: the same float32 sums.
// CONV1X1 (1x1, stride 1, no padding) reads x's channel planes directly.
// HALF (mixed precision, ops/vk Conv2DGradWeightMixed): x and dY are fp16 buffers, widened to
// fp32 as they are loaded; partials, their sum and dW stay fp32.
// Oracle: ops/cpu/conv2d.go Conv2DGradWeight.

#ifdef HALF
#extension GL_EXT_shader_16bit_storage : require
#endif

#include "common.glsl"
#include "conv_gemm.glsl"

layout(std430, binding = 0) writeonly buffer Out { float outv[]; }; // dW, or the partials
// The fix-up's partials and per-tile counters (unused without it). The counters are zero
// between dispatches: the last workgroup of a tile resets its own.
layout(std430, binding = 1) coherent buffer Part { float part[]; };
#ifdef HALF
// ---- fp16 storage (mixed precision) ----
#ifdef SUM_INPUT
#error HALF has no SUM_INPUT form
#endif
layout(std430, binding = 2) readonly buffer X { float16_t x[]; };
layout(std430, binding = 3) readonly buffer GY { float16_t gy[]; };
// ---- end fp16 storage ----
#else
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer GY { float gy[]; };
#endif
layout(std430, binding = 4) coherent buffer Cnt { uint cnt[]; };
#ifdef SUM_INPUT
// ---- The input is the sum x + x2 of two tensors of one layout (conv2d.comp SUM_INPUT), at
// offset boff (unused here otherwise). ----
layout(std430, binding = 5) readonly buffer X2 { float x2[]; };
float loadX(uint i) { return x[i] + x2[i - p.xoff + p.boff]; }
// ---- end SUM_INPUT ----
#else
float loadX(uint i) { return float(x[i]); }
#endif

shared bool lastOfTile;

uint M, N, K, OHW, HW, m0, n0, g;
// This invocation loads column kk = tid % BK of every K tile; (img, pix) track k = k0 + kk
// incrementally, so the loop divides only by OW.
uint kImg, kPix;
uint bC[BLOADS];
int bDy[BLOADS], bDx[BLOADS];
bool bOK[BLOADS];

void loadTiles(uint k0) {
	uint tid = gl_LocalInvocationID.x;
	bool kOK = k0 + tid % BK < min(K, (gl_WorkGroupID.z % p.splits + 1) * p.kPer);
	uint oy = kPix / p.OW, ox = kPix - oy * p.OW;
	uint img = p.n0 + kImg;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		uint m = m0 + tid / BK + r * (WG / BK);
		ra[r] = (kOK && m < M) ? float(gy[p.yoff + img * p.ystride + (g * p.Og + m) * OHW + kPix]) : 0.0;
	}
	uint xb = p.xoff + img * p.xstride + g * p.Cg * HW;
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		float v = 0.0;
		if (kOK && bOK[r]) {
#ifdef CONV1X1
			v = loadX(xb + bC[r] * HW + kPix);
#else
			int iy = int(oy) * S - p.pad + bDy[r], ix = int(ox) * S - p.pad + bDx[r];
			if (iy >= 0 && iy < int(p.H) && ix >= 0 && ix < int(p.W)) {
				v = loadX(xb + bC[r] * HW + uint(iy) * p.W + uint(ix));
			}
#endif
		}
		rb[r] = v;
	}
	// Advance this invocation's k by one tile. No loop: lavapipe ends a shader's loops after
	// 65535 iterations in all (gallivm LP_MAX_TGSI_LOOP_ITERATIONS), so every loop counts.
	kPix += BK;
	if (kPix >= OHW) {
		kImg += kPix / OHW;
		kPix = kPix % OHW;
	}
}

void storeTiles() {
	uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0; r < ALOADS; r++) {
		As[(tid % BK) * ASTRIDE + tid / BK + r * (WG / BK)] = ra[r];
	}
	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		Bs[(tid % BK) * BSTRIDE + tid / BK + r * (WG / BK)] = rb[r];
	}
}

void main() {
	uint tid = gl_LocalInvocationID.x;
	uint s = gl_WorkGroupID.z % p.splits;
	g = gl_WorkGroupID.z / p.splits;
	OHW = p.OH * p.OW;
	HW = p.H * p.W;
	M = p.Og;
	N = p.Cg * KHW;
	K = p.nimg * OHW;
	m0 = gl_WorkGroupID.y * BM;
	n0 = gl_WorkGroupID.x * BN;

	[[unroll]] for (uint r = 0; r < BLOADS; r++) {
		uint n = n0 + tid / BK + r * (WG / BK);
		bOK[r] = n < N;
		uint c = n / KHW, rem = n - c * KHW;
		uint ky = rem / KW;
		bC[r] = c;
		bDy[r] = int(ky) * p.dil;
		bDx[r] = int(rem - ky * KW) * p.dil;
	}
	uint kBegin = s * p.kPer, kEnd = min(K, kBegin + p.kPer);
	uint k = kBegin + tid % BK;
	kImg = k / OHW;
	kPix = k - kImg * OHW;

	gemmLoop(kBegin, kEnd);

	uint tm = tmOf(tid), tn = tnOf(tid);
	uint slot = (p.C / p.Cg) * p.Og * N; // weights of all groups
	if (p.fixup == 0u) {
		// Partial s of this dispatch lands in slot sOff+s of sTotal (dense: wRow = N); with one
		// slot in all, dW, whose rows may be strided (a weight's slice).
		uint base = p.woff + (p.sOff + s) * slot + g * p.Og * p.wRow;
		[[unroll]] for (uint i = 0; i < TM; i++) {
			uint m = m0 + rowOf(tm, i);
			if (m >= M) {
				continue;
			}
			[[unroll]] for (uint j = 0; j < TN; j++) {
				uint n = n0 + tn + j * (BN / TN);
				if (n < N) {
					outv[base + m * p.wRow + n] = acc[i * TN + j];
				}
			}
		}
		return;
	}

	// Fix-up: publish this partial, count the tile's finished workgroups, and let the last one
	// add the partials in split order (as reduce_sum_cols does) into dW.
	uint gbase = g * p.Og * N;
	[[unroll]] for (uint i = 0; i < TM; i++) {
		uint m = m0 + rowOf(tm, i);
		[[unroll]] for (uint j = 0; j < TN; j++) {
			uint n = n0 + tn + j * (BN / TN);
			if (m < M && n < N) {
				part[s * slot + gbase + m * N + n] = acc[i * TN + j];
			}
		}
	}
	memoryBarrierBuffer();
	barrier();
	uint tile = p.cntOff + (g * gl_NumWorkGroups.y + gl_WorkGroupID.y) * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	if (tid == 0u) {
		lastOfTile = atomicAdd(cnt[tile], 1u) == p.splits - 1u;
	}
	barrier();
	if (!lastOfTile) {
		return;
	}
	memoryBarrierBuffer();
	[[unroll]] for (uint i = 0; i < TM; i++) {
		uint m = m0 + rowOf(tm, i);
		[[unroll]] for (uint j = 0; j < TN; j++) {
			uint n = n0 + tn + j * (BN / TN);
			if (m < M && n < N) {
				float sum = 0.0;
				for (uint t = 0u; t < p.splits; t++) {
					sum += part[t * slot + gbase + m * N + n];
				}
				outv[p.woff + (g * p.Og + m) * p.wRow + n] = sum;
			}
		}
	}
	if (tid == 0u) {
		cnt[tile] = 0u;
	}
}
