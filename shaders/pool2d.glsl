// Shared by the pooling kernels: the push block and PyTorch's window rule.
// Oracle for the window: ops/cpu/pool2d.go window.

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
	uint xoff, xstride; // the input-sized operand (x, or gx in the gradients)
	uint yoff, ystride; // the output-sized operand (y, or gy)
	uint foff, fstride; // max_pool2d_grad: the forward input x
	uint C, H, W, OH, OW;
	int k, s, pad;
	uint includePad;
	uint n0;    // first batch item of this dispatch
	uint count; // elements this dispatch computes
} p;

// window is output (oy, ox)'s input rectangle [y0,y1)×[x0,x1), clamped to the input, and the
// average divisor: PyTorch counts padding but not the ceil-mode overhang past it.
void window(int oy, int ox, out int y0, out int y1, out int x0, out int x1, out float div) {
	int sy = oy * p.s - p.pad;
	int sx = ox * p.s - p.pad;
	int ey = min(sy + p.k, int(p.H) + p.pad);
	int ex = min(sx + p.k, int(p.W) + p.pad);
	int size = (ey - sy) * (ex - sx);
	y0 = max(sy, 0);
	x0 = max(sx, 0);
	y1 = min(ey, int(p.H));
	x1 = min(ex, int(p.W));
	div = float(p.includePad != 0 ? size : (y1 - y0) * (x1 - x0));
}

// covering is the range [lo, hi] of output rows (or columns) whose windows contain input row i.
void covering(int i, int outSize, out int lo, out int hi) {
	int a = i + p.pad - p.k + 1; // first window start that still reaches i is >= a
	lo = a <= 0 ? 0 : (a + p.s - 1) / p.s;
	hi = min(outSize - 1, (i + p.pad) / p.s);
}

// gridIndex is this invocation's element of the dispatch, or false past its end.
bool gridIndex(out uint e) {
	e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	return e < p.count;
}
