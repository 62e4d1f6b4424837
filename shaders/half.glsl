// fp32 → fp16 rounding in integer arithmetic, shared by half_convert.comp and the mixed
// convolutions' fp16 stores (HALF_OUT): OpFConvert's rounding and fp16 denormal handling are
// implementation-defined in Vulkan, round-to-nearest-even here is not, so an fp16 result is the
// same bits on every device and equals ToHalf of the fp32 one.

// toHalf rounds the fp32 bit pattern x to the nearest fp16, ties to even.
uint toHalf(uint x) {
	uint sign = (x >> 16) & 0x8000u;
	uint e = (x >> 23) & 0xffu;
	uint m = x & 0x7fffffu;
	if (e == 0xffu) {
		return sign | 0x7c00u | (m != 0u ? 0x200u | (m >> 13) : 0u);
	}
	int he = int(e) - 112; // the fp16 biased exponent: e - 127 + 15
	if (he >= 31) {
		return sign | 0x7c00u;
	}
	uint q, rem, tie;
	if (he <= 0) {
		// A subnormal fp16 (or zero): q = mant·2^(he-14) with the implicit bit restored.
		uint shift = uint(14 - he);
		if (shift > 24u) {
			return sign; // below half the smallest subnormal
		}
		uint mant = m | 0x800000u;
		q = mant >> shift;
		rem = mant & ((1u << shift) - 1u);
		tie = 1u << (shift - 1u);
	} else {
		q = (uint(he) << 10) | (m >> 13);
		rem = m & 0x1fffu;
		tie = 0x1000u;
	}
	if (rem > tie || (rem == tie && (q & 1u) != 0u)) {
		q++; // a carry into the exponent is right, up to 0x7c00 = inf
	}
	return sign | q;
}
