// The convolutions' kernel-size and stride specialization constants and their push block
// (ops/vk/conv2d.go convPush): conv_gemm.glsl's, and the cooperative-matrix convolution's
// (matmul_mixed_coopmat.comp CONV), whose tiling is its own.

layout(constant_id = 6) const uint KH = 3; // the convolution kernel's height and width
layout(constant_id = 7) const uint KW = 3;
layout(constant_id = 8) const int S = 1;   // stride (grad input divides by it)

const uint KHW = KH * KW;

layout(push_constant) uniform Push {
	uint xoff, xstride, yoff, ystride; // input-sized and output-sized NCHW operands
	uint woff, boff;                   // weight (and partials), bias
	uint C, H, W;                      // input channels (all groups) and size
	uint O, OH, OW;                    // output channels (all groups) and size
	uint Cg, Og;                       // channels per group
	int pad, dil;
	uint n0, nimg;                     // the images of this dispatch
	uint hasBias;
	uint kPer, splits, sOff, sTotal;   // conv2d_grad_weight's split-K
	uint colOff;                       // first GEMM column of this dispatch (huge images)
	uint accum;                        // conv2d_grad_input: add to the destination's values
	uint fixup, cntOff;                // conv2d_grad_weight: in-kernel split-K sum, counters
	uint wRow;                         // elements between the weight's (or dW's) output rows
	uint roff, rstride;                // conv2d CONV_ACT: the residual (output-sized)
} p;
