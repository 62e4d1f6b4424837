// The convolution kernels' specialization constants and push block, over gemm.glsl.

#include "gemm.glsl"
#include "conv_push.glsl"
