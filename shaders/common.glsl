// Shared plumbing for chnet's compute shaders.
//
// Tensors arrive as storage-buffer bindings plus, in push constants, an element offset relative
// to the binding start and a batch stride: item n of a batch-strided tensor starts at
// off + n*stride, and its inner elements follow contiguously (tensor.BatchStride). Offsets are
// computed on the host modulo 2^32, so off + n*stride + r may wrap below the binding start in
// the middle of the sum and still land on the right element: uint arithmetic is exact mod 2^32.

#extension GL_EXT_control_flow_attributes : enable

// addr is the element index of logical index i (item i/inner, position i%inner).
uint addr(uint i, uint inner, uint off, uint stride) {
	uint q = i / inner;
	return off + q * stride + (i - q * inner);
}

// sigmoid_f avoids exp overflow for large |x| (ops/cpu/elementwise.go sigmoid).
float sigmoid_f(float x) {
	if (x >= 0.0) {
		return 1.0 / (1.0 + exp(-x));
	}
	float e = exp(x);
	return e / (1.0 + e);
}

// log1p_f is log(1+z) accurate for small z: GLSL has no log1p. The correction uses the rounding
// error of 1+z (Goldberg's trick); precise keeps the compiler from folding u-1 into z.
float log1p_f(float z) {
	precise float u = 1.0 + z;
	if (u == 1.0) {
		return z;
	}
	precise float um1 = u - 1.0;
	return log(u) * (z / um1);
}

// bce_f is binary cross-entropy with logits in its stable form (ops/cpu/loss.go bce).
float bce_f(float x, float t) {
	return max(x, 0.0) - x * t + log1p_f(exp(-abs(x)));
}

// phi_f is the standard normal CDF Φ(x) = erfc(−x/√2)/2, with erfc from Abramowitz & Stegun
// 7.1.26 (absolute error below 1.5e-7). The tail is computed directly, not as 1 − erf, so
// Φ of a negative x keeps its relative precision.
float phi_f(float x) {
	float z = abs(x) * 0.70710678;
	float t = 1.0 / (1.0 + 0.3275911 * z);
	float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
	float tail = 0.5 * poly * exp(-z * z); // Φ(−|x|)
	return x >= 0.0 ? 1.0 - tail : tail;
}

// gelu_f is x·Φ(x), torch.nn.GELU's exact form (ops/cpu/elementwise.go gelu).
float gelu_f(float x) {
	return x * phi_f(x);
}

// gelu_grad_f is Φ(x) + x·φ(x) (ops/cpu/elementwise.go geluGrad).
float gelu_grad_f(float x) {
	return phi_f(x) + x * exp(-0.5 * x * x) * 0.39894228;
}
