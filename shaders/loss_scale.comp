#version 450
// Dynamic loss scaling on the device (torch.cuda.amp.GradScaler's rule), so that a mixed-precision
// step never waits for the host to learn whether its gradients overflowed.
// The state is four floats: scale, found (1 when this step's gradients are not all finite),
// good (finite steps since the scale last changed), skipped (steps skipped so far).
//   LS_CHECK:  found = 1 when any x[start..end) is NaN or infinite (found is never cleared here).
//   LS_UPDATE: one invocation, after the (skipped or applied) update: found → scale ·= backoff,
//              good = 0, skipped += 1; else good += 1 and, at the growth interval, scale ·= growth
//              (unless that overflows), good = 0; then found = 0 for the next step.
// Oracle: ops/cpu/loss_scale.go.

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer State { float st[]; };
#ifdef LS_CHECK
layout(std430, binding = 1) readonly buffer X { float x[]; };
#endif

layout(push_constant) uniform Push {
	uint start, end, xoff, soff;
	float growth, backoff;
	uint interval;
} p;

void main() {
#ifdef LS_CHECK
	uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	bool bad = false;
	for (uint i = p.start + gl_GlobalInvocationID.x; i < p.end; i += step) {
		float v = x[p.xoff + i];
		bad = bad || isnan(v) || isinf(v);
	}
	if (bad) {
		st[p.soff + 1] = 1.0; // every writer stores the same value
	}
#else
	if (gl_GlobalInvocationID.x != 0) {
		return;
	}
	if (st[p.soff + 1] != 0.0) {
		st[p.soff] *= p.backoff;
		st[p.soff + 2] = 0.0;
		st[p.soff + 3] += 1.0;
	} else {
		float good = st[p.soff + 2] + 1.0;
		if (good >= float(p.interval)) {
			float grown = st[p.soff] * p.growth;
			if (!isinf(grown)) { // as GradScaler: a scale that would overflow stays
				st[p.soff] = grown;
			}
			good = 0.0;
		}
		st[p.soff + 2] = good;
	}
	st[p.soff + 1] = 0.0;
#endif
}
