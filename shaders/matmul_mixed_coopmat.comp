#version 450
// Mixed-precision matrix product on tensor cores (GL_NV_cooperative_matrix: the form Debian 12's
// glslc compiles): d(fp32) = op(a)·op(b) with a, b fp16 and fp32 accumulation, the same contract
// as matmul_mixed.comp. ops/vk/mixed.go selects it only on a device listing the 16×16×16
// fp16·fp16+fp32 subgroup shape with subgroups of 32 (vkrt.DeviceInfo.HasCoopMatNV).
//
// A workgroup of 8 subgroups computes a 128×128 block of d, stepping K by 32: all invocations
// copy the next A (128×32) and B (32×128) tiles into shared memory, zero-padded at the edges, so
// any M, N, K work; each subgroup then multiplies its 32×64 part as 2×4 16×16 matrices. Results
// leave through a per-subgroup 16×16 fp32 staging tile with bounds checks. Shared strides are
// multiples of 16 bytes, as cooperative loads and stores require.
//
// EMULATE compiles the same kernel with the three cooperative-matrix operations done by scalar
// code (lane l of a 32-invocation group holds elements l + 32e of each 16×16 fragment, row-major)
// and workgroup barriers for subgroup ones, so lavapipe checks everything else — tiling, edges,
// shared layout, the way out — against the CPU (TestMatMulMixed/coopmat-emulated).
// CONV makes it the forward convolution (ops/vk Conv2DMixed, conv2d.comp's implicit GEMM per
// group: A the weight rows, B gathered from x as it is copied to shared memory, each
// invocation's B column fixed and decoded once; fp32 output with the bias; groups in z).
// Oracle: ops/cpu/matmul.go MatMul on the fp16-rounded inputs (ops/vk/mixed_test.go); with
// CONV, ops/cpu/conv2d.go Conv2D (ops/vk/conv2d_mixed_test.go).

#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : enable
#ifndef EMULATE
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

layout(local_size_x = 256) in;
#ifdef CONV
// ---- the forward convolution: conv2d.comp's bindings and push block ----
#include "conv_push.glsl"
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float16_t x[]; };
layout(std430, binding = 2) readonly buffer Wt { float16_t w[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
// ---- end CONV ----
#else
layout(constant_id = 10) const uint TA = 0;
layout(constant_id = 11) const uint TB = 0;

layout(std430, binding = 0) writeonly buffer D { float d[]; };
layout(std430, binding = 1) readonly buffer A { float16_t a[]; };
layout(std430, binding = 2) readonly buffer B { float16_t b[]; };

layout(push_constant) uniform Push {
	uint doff;
	uint M, N, K;
} p;
#endif

const uint WG = 256, BM = 128, BN = 128, BK = 32;
const uint WM = 32, WN = 64;              // per subgroup: 4 along M × 2 along N
const uint FM = WM / 16, FN = WN / 16;    // 16×16 fragments per subgroup
const uint ASTR = BK + 8, BSTR = BN + 8;  // halves; 80 and 272 bytes

shared float16_t As[BM * ASTR];
shared float16_t Bs[BK * BSTR];
shared float Cs[8 * 256];

#ifdef EMULATE
#define SUBGROUP (gl_LocalInvocationID.x / 32)
#define LANE (gl_LocalInvocationID.x % 32)
#define SUBGROUP_SIZE 32u
#define SUBGROUP_SYNC() barrier()
#else
#define SUBGROUP gl_SubgroupID
#define LANE gl_SubgroupInvocationID
#define SUBGROUP_SIZE gl_SubgroupSize
#define SUBGROUP_SYNC() subgroupMemoryBarrierShared(); subgroupBarrier()
#endif

uint M, N, K, m0, n0;

#ifdef CONV
// ---- the convolution's operands ----
uint g, OHW, HW;
// This invocation's B column is n0 + tid % BN in every K tile (WG is a multiple of BN): its
// image and output pixel are decoded once.
bool bOK;
uint xBase;
int iy0, ix0;

void initOperands() {
	uint tid = gl_LocalInvocationID.x;
	g = gl_WorkGroupID.z;
	OHW = p.OH * p.OW;
	HW = p.H * p.W;
	M = p.Og;
	N = p.nimg * OHW;
	K = p.Cg * KHW;
	n0 = p.colOff + gl_WorkGroupID.x * BN;
	uint col = n0 + tid % BN;
	bOK = col < N;
	uint img = p.n0 + col / OHW, pix = col % OHW;
	uint oy = pix / p.OW, ox = pix - oy * p.OW;
	iy0 = int(oy) * S - p.pad;
	ix0 = int(ox) * S - p.pad;
	xBase = p.xoff + img * p.xstride + g * p.Cg * HW;
}

float16_t loadA(uint m, uint k) {
	return w[p.woff + (g * p.Og + m) * p.wRow + k];
}

// loadB is B[k][n] for this invocation's column n (the caller checks k < K and bOK).
float16_t loadB(uint k, uint n) {
	uint c = k / KHW, rem = k - c * KHW;
	uint ky = rem / KW, kx = rem - ky * KW;
	int iy = iy0 + int(ky) * p.dil, ix = ix0 + int(kx) * p.dil;
	if (iy >= 0 && iy < int(p.H) && ix >= 0 && ix < int(p.W)) {
		return x[xBase + c * HW + uint(iy) * p.W + uint(ix)];
	}
	return float16_t(0.0);
}

void storeD(uint m, uint n, float v) {
	uint img = p.n0 + n / OHW, px = n % OHW;
	if (p.hasBias != 0u) {
		v += bias[p.boff + g * p.Og + m];
	}
	y[p.yoff + img * p.ystride + (g * p.Og + m) * OHW + px] = v;
}
// ---- end CONV ----
#else
void initOperands() {
	M = p.M;
	N = p.N;
	K = p.K;
	n0 = gl_WorkGroupID.x * BN;
}

float16_t loadA(uint m, uint k) {
	return a[TA != 0 ? k * p.M + m : m * p.K + k];
}

float16_t loadB(uint k, uint n) {
	return b[TB != 0 ? n * p.K + k : k * p.N + n];
}

void storeD(uint m, uint n, float v) {
	d[p.doff + m * p.N + n] = v;
}
#endif

void main() {
	uint tid = gl_LocalInvocationID.x;
	uint sg = SUBGROUP, lane = LANE;
	m0 = gl_WorkGroupID.y * BM;
	initOperands();
	uint wm = (sg / 2) * WM, wn = (sg % 2) * WN;

#ifdef EMULATE
	float acc[FM * FN][8];
	[[unroll]] for (uint i = 0; i < FM * FN; i++) {
		[[unroll]] for (uint e = 0; e < 8; e++) {
			acc[i][e] = 0.0;
		}
	}
#else
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[FM * FN];
	[[unroll]] for (uint i = 0; i < FM * FN; i++) {
		acc[i] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	}
#endif
	for (uint k0 = 0; k0 < K; k0 += BK) {
		[[unroll]] for (uint i = 0; i < BM * BK / WG; i++) {
			uint l = tid + i * WG;
			uint r = l / BK, c = l % BK;
			uint m = m0 + r, k = k0 + c;
			As[r * ASTR + c] = (m < M && k < K) ? loadA(m, k) : float16_t(0.0);
		}
		[[unroll]] for (uint i = 0; i < BK * BN / WG; i++) {
			uint l = tid + i * WG;
			uint r = l / BN, c = l % BN;
			uint k = k0 + r, n = n0 + c;
			Bs[r * BSTR + c] = (k < K && n < N) ? loadB(k, n) : float16_t(0.0);
		}
		barrier();
		[[unroll]] for (uint kk = 0; kk < BK; kk += 16) {
#ifdef EMULATE
			// Rolled loops: unrolled, this is thousands of instructions that take lavapipe
			// minutes to compile.
			[[dont_unroll]] for (uint i = 0; i < FM; i++) {
				[[dont_unroll]] for (uint j = 0; j < FN; j++) {
					[[dont_unroll]] for (uint e = 0; e < 8; e++) {
						uint r = (lane + 32 * e) / 16, c = (lane + 32 * e) % 16;
						float s = acc[i * FN + j][e];
						[[dont_unroll]] for (uint t = 0; t < 16; t++) {
							s = fma(float(As[(wm + i * 16 + r) * ASTR + kk + t]), float(Bs[(kk + t) * BSTR + wn + j * 16 + c]), s);
						}
						acc[i * FN + j][e] = s;
					}
				}
			}
#else
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fa[FM];
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fb[FN];
			[[unroll]] for (uint i = 0; i < FM; i++) {
				coopMatLoadNV(fa[i], As, (wm + i * 16) * ASTR + kk, ASTR, false);
			}
			[[unroll]] for (uint j = 0; j < FN; j++) {
				coopMatLoadNV(fb[j], Bs, kk * BSTR + wn + j * 16, BSTR, false);
			}
			[[unroll]] for (uint i = 0; i < FM; i++) {
				[[unroll]] for (uint j = 0; j < FN; j++) {
					acc[i * FN + j] = coopMatMulAddNV(fa[i], fb[j], acc[i * FN + j]);
				}
			}
#endif
		}
		barrier(); // everyone is done with these tiles before the next are stored
	}
	[[unroll]] for (uint i = 0; i < FM; i++) {
		[[unroll]] for (uint j = 0; j < FN; j++) {
#ifdef EMULATE
			[[unroll]] for (uint e = 0; e < 8; e++) {
				Cs[sg * 256 + lane + 32 * e] = acc[i * FN + j][e];
			}
#else
			coopMatStoreNV(acc[i * FN + j], Cs, sg * 256, 16, false);
#endif
			SUBGROUP_SYNC();
			for (uint e = lane; e < 256; e += SUBGROUP_SIZE) {
				uint m = m0 + wm + i * 16 + e / 16, n = n0 + wn + j * 16 + e % 16;
				if (m < M && n < N) {
					storeD(m, n, Cs[sg * 256 + e]);
				}
			}
			SUBGROUP_SYNC(); // the staging tile is read before the next fragment overwrites it
		}
	}
}
