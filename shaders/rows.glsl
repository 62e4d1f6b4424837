// Shared by the row kernels (softmax, layer norm): one workgroup per row of the last dimension
// of batch-strided tensors, and workgroup tree reductions (fixed order: deterministic).

layout(local_size_x_id = 0) in;

shared float tree[gl_WorkGroupSize.x];

float reduce_sum(float v) {
	uint t = gl_LocalInvocationID.x;
	barrier(); // the previous reduction's readers are done with tree
	tree[t] = v;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			tree[t] += tree[t + s];
		}
		barrier();
	}
	return tree[0];
}

float reduce_max(float v) {
	uint t = gl_LocalInvocationID.x;
	barrier();
	tree[t] = v;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (t < s) {
			tree[t] = max(tree[t], tree[t + s]);
		}
		barrier();
	}
	return tree[0];
}

// rowIndex is this workgroup's row, or false past the last (uniform across the workgroup).
bool rowIndex(uint rows, out uint r) {
	r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
	return r < rows;
}
