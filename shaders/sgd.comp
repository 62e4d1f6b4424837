#version 450
// One torch.optim.SGD step (dampening 0) on contiguous tensors, in place:
// g = grad + wd·param; buf = m·buf + g; step = nesterov ? g + m·buf : buf; param −= lr·step.
// Guarded (p.guard = 1): nothing is updated when the loss is not finite or the halt flag is
// already set, and then the flag is set, so a non-finite loss stops this and every later update
// without the host reading it first. The learning rate is a push constant or (p.lrdev = 1) read
// from a buffer, so that a recorded step follows a schedule. Scaled (p.scaled = 1, dynamic loss
// scaling, loss_scale.comp): the gradients hold scale·g; the update is skipped when the state's
// found flag is set and otherwise uses g·(1/scale). Oracle: ops/cpu/sgd.go SGDStep.

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Param { float w[]; };
layout(std430, binding = 1) readonly buffer Grad { float g[]; };
layout(std430, binding = 2) buffer Mom { float buf[]; };
layout(std430, binding = 3) readonly buffer Loss { float loss[]; };
layout(std430, binding = 4) buffer Halt { float halt[]; };
layout(std430, binding = 5) readonly buffer Rate { float rate[]; };
layout(std430, binding = 6) readonly buffer Scale { float sc[]; }; // [scale, found, good, skipped]

layout(push_constant) uniform Push {
	uint start, end, woff, goff, boff;
	float lr, momentum, wd;
	uint nesterov;
	uint guard, loff, hoff;
	uint lrdev, lroff; // lrdev = 1: the learning rate is rate[lroff], not lr
	uint scaled, soff; // scaled = 1: gradients are multiplied by sc[soff]
} p;

void main() {
	if (p.guard != 0) {
		float l = loss[p.loff];
		if (isnan(l) || isinf(l) || halt[p.hoff] != 0.0) {
			// Every invocation takes this branch alike; they all store the same value.
			halt[p.hoff] = 1.0;
			return;
		}
	}
	float inv = 1.0;
	if (p.scaled != 0) {
		if (sc[p.soff + 1] != 0.0) {
			return; // an overflowed step: skipped, the scale is lowered by loss_scale_update
		}
		inv = 1.0 / sc[p.soff];
	}
	float lr = p.lrdev != 0 ? rate[p.lroff] : p.lr;
	uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	for (uint i = p.start + gl_GlobalInvocationID.x; i < p.end; i += step) {
		float wi = w[p.woff + i];
		float gr = g[p.goff + i];
		if (p.scaled != 0) {
			gr *= inv;
		}
		float gi = gr + p.wd * wi;
		float s = gi;
		if (p.momentum != 0.0) {
			float b = p.momentum * buf[p.boff + i] + gi;
			buf[p.boff + i] = b;
			s = p.nesterov != 0 ? gi + p.momentum * b : b;
		}
		w[p.woff + i] = wi - lr * s;
	}
}
