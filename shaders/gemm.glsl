// Shared by the GEMM kernels (convolutions and matmul): a tiled fp32 GEMM whose operand tiles
// each kernel gathers itself (for convolutions straight from NCHW tensors: implicit GEMM, no
// im2col buffer).
//
// A workgroup computes a BM×BN tile of C = A·B, stepping through K by BK: every invocation loads
// its share of the next A and B tiles into registers while the current ones, in shared memory,
// feed a TM×TN register tile of accumulators (float32 throughout: training precision). The
// sizes are specialization constants chosen per device class (ops/vk/conv2d.go tileSet), so one
// shader serves lavapipe's small tiles and an NVIDIA GPU's 128×128 ones.
//
// Each kernel defines loadTiles(k0), which fills ra and rb for tile k0, and storeTiles(), which
// puts them in As and Bs, then calls gemmLoop().

#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 32;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint BK = 8;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
// AVEC 1 gives each invocation TM consecutive rows, in rows padded to a multiple of 4 floats,
// so its A operands for one k are 16-byte aligned and adjacent: one 128-bit shared load per 4
// (all invocations of a row group read the same words: a broadcast). AVEC 0 strides the rows
// by BM/TM. Which is faster is the GPU's call (ops/vk/conv2d.go, CHNET_VK_AVEC).
layout(constant_id = 9) const uint AVEC = 0;

const uint WG = gl_WorkGroupSize.x; // (BM/TM)·(BN/TN), checked on the host
const uint ALOADS = BM * BK / WG;
const uint BLOADS = BK * BN / WG;
// Shared tiles are K-major; +1 padding where stores run along K breaks bank conflicts.
const uint ASTRIDE = AVEC != 0 ? BM + 4 : BM + 1;
const uint BSTRIDE = BN + 1;


shared float As[BK * ASTRIDE];
shared float Bs[BK * BSTRIDE];

float ra[ALOADS];
float rb[BLOADS];
float acc[TM * TN];

// The compute mapping: invocation (tm, tn) owns columns tn + j·BN/TN, so neighbouring
// invocations read neighbouring shared words and write neighbouring outputs, and rows
// tm + i·BM/TM (AVEC 0) or tm·TM + i (AVEC 1).
uint tmOf(uint tid) { return tid / (BN / TN); }
uint tnOf(uint tid) { return tid % (BN / TN); }
uint rowOf(uint tm, uint i) { return AVEC != 0 ? tm * TM + i : tm + i * (BM / TM); }

void storeTiles();
void loadTiles(uint k0);

void multiplyTile(uint tm, uint tn) {
	[[unroll]] for (uint kk = 0; kk < BK; kk++) {
		float a[TM], b[TN];
		[[unroll]] for (uint i = 0; i < TM; i++) {
			a[i] = As[kk * ASTRIDE + rowOf(tm, i)];
		}
		[[unroll]] for (uint j = 0; j < TN; j++) {
			b[j] = Bs[kk * BSTRIDE + tn + j * (BN / TN)];
		}
		[[unroll]] for (uint i = 0; i < TM; i++) {
			[[unroll]] for (uint j = 0; j < TN; j++) {
				acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
			}
		}
	}
}

// gemmLoop runs the K loop over [kBegin, kEnd), prefetching tile k+BK while multiplying tile k.
void gemmLoop(uint kBegin, uint kEnd) {
	uint tid = gl_LocalInvocationID.x;
	uint tm = tmOf(tid), tn = tnOf(tid);
	[[unroll]] for (uint i = 0; i < TM * TN; i++) {
		acc[i] = 0.0;
	}
	if (kBegin >= kEnd) {
		return;
	}
	loadTiles(kBegin);
	for (uint k0 = kBegin; k0 < kEnd; k0 += BK) {
		barrier(); // everyone is done reading the previous tiles
		storeTiles();
		barrier();
		if (k0 + BK < kEnd) {
			loadTiles(k0 + BK);
		}
		multiplyTile(tm, tn);
	}
}
