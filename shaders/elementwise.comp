#version 450
// Elementwise kernels over batch-strided tensors: fill, copy, unary ops (relu, sigmoid, abs,
// neg, gelu) and their gradients,
// binary ops, axpby, broadcast (Expand), BCE with logits and its gradient.
// Oracle: ops/cpu/elementwise.go, ops/cpu/backend.go (Fill, Copy), ops/cpu/reduce.go (Expand),
// ops/cpu/loss.go (BCEWithLogits, BCEWithLogitsGrad).
//
// ARITY (1..4) is the number of bindings; binding 0 is the destination. The op is a push
// constant: one pipeline per arity, and the branch is uniform across the dispatch.

#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Dst { float d[]; };
#if ARITY >= 2
layout(std430, binding = 1) readonly buffer Src1 { float s1[]; };
#endif
#if ARITY >= 3
layout(std430, binding = 2) readonly buffer Src2 { float s2[]; };
#endif
#if ARITY >= 4
layout(std430, binding = 3) readonly buffer Src3 { float s3[]; };
#endif

layout(push_constant) uniform Push {
	uint start;  // first logical index of this dispatch (tensors may be processed in slices)
	uint end;    // one past the last
	uint inner;  // elements per batch item
	uint op;
	uint off[4]; // per operand, relative to its binding
	uint stride[4];
	float alpha;
	float beta;
	uint hw;     // Expand: H*W, and C for AxesHW
	uint c;
	uint dense;  // 1: every operand has stride == inner, so addr(i) = off + i
} p;

// Op codes; keep in sync with ops/vk/elementwise.go.
const uint OP_FILL = 0;
const uint OP_COPY = 1;
const uint OP_RELU = 2;
const uint OP_SIGMOID = 3;
const uint OP_ABS = 4;
const uint OP_NEG = 5;
const uint OP_AXPBY = 6;
const uint OP_EXPAND_ALL = 7;
const uint OP_EXPAND_NHW = 8;
const uint OP_EXPAND_HW = 9;
const uint OP_ADD = 10;
const uint OP_SUB = 11;
const uint OP_MUL = 12;
const uint OP_DIV = 13;
const uint OP_RELU_GRAD = 14;    // gy, y
const uint OP_SIGMOID_GRAD = 15; // gy, y
const uint OP_ABS_GRAD = 16;     // gy, x
const uint OP_BCE = 17;          // x, t
const uint OP_BCE_GRAD = 18;     // gy, x, t
const uint OP_GELU = 19;
const uint OP_GELU_GRAD = 20;    // gy, x

void main() {
	uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	for (uint i = p.start + gl_GlobalInvocationID.x; i < p.end; i += step) {
		uint q = 0, r = i;
		if (p.dense == 0) {
			q = i / p.inner;
			r = i - q * p.inner;
		}
		uint a0 = p.off[0] + q * p.stride[0] + r;
#if ARITY == 1
		d[a0] = p.alpha;
#endif
#if ARITY >= 2
		uint a1 = p.off[1] + q * p.stride[1] + r;
#endif
#if ARITY >= 3
		uint a2 = p.off[2] + q * p.stride[2] + r;
#endif
#if ARITY >= 4
		uint a3 = p.off[3] + q * p.stride[3] + r;
#endif
#if ARITY == 2
		float v;
		switch (p.op) {
		case OP_COPY: v = s1[a1]; break;
		case OP_RELU: v = max(s1[a1], 0.0); break;
		case OP_SIGMOID: v = sigmoid_f(s1[a1]); break;
		case OP_ABS: v = abs(s1[a1]); break;
		case OP_NEG: v = -s1[a1]; break;
		case OP_GELU: v = gelu_f(s1[a1]); break;
		case OP_AXPBY:
			// beta 0 must not read dst: fresh memory may hold NaN and 0*NaN is NaN.
			v = p.beta == 0.0 ? p.alpha * s1[a1] : p.alpha * s1[a1] + p.beta * d[a0];
			break;
		case OP_EXPAND_ALL: v = s1[p.off[1]] * p.alpha; break;
		case OP_EXPAND_NHW: v = s1[p.off[1] + r / p.hw] * p.alpha; break;
		default: v = s1[p.off[1] + q * p.c + r / p.hw] * p.alpha; break; // OP_EXPAND_HW
		}
		d[a0] = v;
#endif
#if ARITY == 3
		float x = s1[a1], y = s2[a2], v;
		switch (p.op) {
		case OP_ADD: v = x + y; break;
		case OP_SUB: v = x - y; break;
		case OP_MUL: v = x * y; break;
		case OP_DIV: v = x / y; break;
		case OP_RELU_GRAD: v = y > 0.0 ? x : 0.0; break;
		case OP_SIGMOID_GRAD: v = x * y * (1.0 - y); break;
		case OP_ABS_GRAD: v = y > 0.0 ? x : (y < 0.0 ? -x : 0.0); break;
		case OP_GELU_GRAD: v = x * gelu_grad_f(y); break;
		default: v = bce_f(x, y); break; // OP_BCE
		}
		d[a0] = v;
#endif
#if ARITY == 4
		d[a0] = s1[a1] * (sigmoid_f(s2[a2]) - s3[a3]); // OP_BCE_GRAD
#endif
	}
}
