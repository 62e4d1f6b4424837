#version 450
// One torch.optim.SGD step (dampening 0) on contiguous tensors, in place:
// g = grad + wd·param; buf = m·buf + g; step = nesterov ? g + m·buf : buf; param −= lr·step.
// Oracle: ops/cpu/sgd.go SGDStep.

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Param { float w[]; };
layout(std430, binding = 1) readonly buffer Grad { float g[]; };
layout(std430, binding = 2) buffer Mom { float buf[]; };

layout(push_constant) uniform Push {
	uint start, end, woff, goff, boff;
	float lr, momentum, wd;
	uint nesterov;
} p;

void main() {
	uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	for (uint i = p.start + gl_GlobalInvocationID.x; i < p.end; i += step) {
		float wi = w[p.woff + i];
		float gi = g[p.goff + i] + p.wd * wi;
		float s = gi;
		if (p.momentum != 0.0) {
			float b = p.momentum * buf[p.boff + i] + gi;
			buf[p.boff + i] = b;
			s = p.nesterov != 0 ? gi + p.momentum * b : b;
		}
		w[p.woff + i] = wi - p.lr * s;
	}
}
