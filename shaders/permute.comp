#version 450
// Permutation of dimensions into a contiguous dst: element e of dst, decomposed into dst
// coordinates, reads x at Σ coordinate·(x's stride of the dimension that lands there).
// Oracle: ops/cpu/permute.go Permute.

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) writeonly buffer D { float d[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

layout(push_constant) uniform Push {
	uint e0, count, rank, doff, xoff;
	uint dims[6]; // dst's extents
	uint xs[6];   // x's element stride for each dst dimension
} p;

void main() {
	uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	for (uint e = p.e0 + gl_GlobalInvocationID.x; e < p.e0 + p.count; e += step) {
		uint idx = e, src = p.xoff;
		for (int k = int(p.rank) - 1; k >= 0; k--) {
			uint c = idx % p.dims[k];
			idx /= p.dims[k];
			src += c * p.xs[k];
		}
		d[p.doff + e] = x[src];
	}
}
