package metrics

import (
	"math"
	"math/bits"
)

// epsNumpy is numpy's spacing(1) = MATLAB's eps = 2^-52, the "eps" of PySODMetrics and of the
// MATLAB toolbox.
const epsNumpy = 0x1p-52

// pairwiseSum adds a the way numpy's add.reduce does: the (C-order) elements are fed to the
// reduction in buffered chunks of 8192, each chunk is summed pairwise (blocks of up to 128 with
// 8 interleaved accumulators, longer runs split in halves at multiples of 8), and the chunk sums
// are accumulated in turn. The order matters only in the last bits, but those bits decide ties
// such as p ≥ 2·mean(p), so sums that mirror numpy code are done like this. Checked against
// numpy 1.24's np.sum on contiguous arrays and on strided views (which it also buffers).
//
// A float32 array is summed in float32, as numpy does.
func pairwiseSum[T float32 | float64](a []T) T {
	const chunk = 8192
	var s T
	for len(a) > chunk {
		s += pairwiseBlock(a[:chunk])
		a = a[chunk:]
	}
	return s + pairwiseBlock(a)
}

func pairwiseBlock[T float32 | float64](a []T) T {
	n := len(a)
	switch {
	case n < 8:
		var s T
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]T
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseBlock(a[:n2]) + pairwiseBlock(a[n2:])
	}
}

// npMean is numpy's mean of a contiguous float64 array: the pairwise sum divided by the count.
func npMean(a []float64) float64 {
	return pairwiseSum(a) / float64(len(a))
}

// npStd is numpy's std(x, ddof): mean first, then the pairwise sum of squared deviations divided
// by n − ddof. scratch must be at least len(a) long.
func npStd(a []float64, ddof int, scratch []float64) float64 {
	m := npMean(a)
	d := scratch[:len(a)]
	for i, v := range a {
		t := v - m
		d[i] = t * t
	}
	return math.Sqrt(pairwiseSum(d) / float64(len(a)-ddof))
}

// roundMode is how a centroid coordinate is rounded to an integer.
type roundMode int

const (
	halfEven roundMode = iota // numpy's round and Python's round(): ties to even
	halfAway                  // MATLAB's round: ties away from zero
)

// roundRatio rounds num/den (num ≥ 0, den > 0) to an integer. Working on the integers avoids
// asking whether a floating-point quotient is exactly x.5: with integer pixel sums the quotient
// is a tie exactly when 2·(num mod den) = den.
func roundRatio(num, den int64, mode roundMode) int64 {
	q, r := num/den, num%den
	switch {
	case 2*r < den:
		return q
	case 2*r > den:
		return q + 1
	case mode == halfEven:
		return q + q&1
	default:
		return q + 1
	}
}

// float16Count is the float16 value nearest the non-negative integer n (ties to even; +Inf
// beyond the largest finite half, 65504), returned as float64.
func float16Count(n int64) float64 {
	if n <= 2048 {
		return float64(n)
	}
	shift := uint(bits.Len64(uint64(n)) - 11) // keep 11 significant bits
	q := n >> shift
	r := n & (1<<shift - 1)
	half := int64(1) << (shift - 1)
	if r > half || (r == half && q&1 == 1) {
		q++
	}
	v := q << shift
	if v > 65504 {
		return math.Inf(1)
	}
	return float64(v)
}

// safeDiv is PySODMetrics' divide(): the quotient, or 0 where the denominator is 0.
func safeDiv(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return num / den
}

// trapz is numpy's trapz(y, x): the trapezoid rule over consecutive points.
func trapz(y, x []float64) float64 {
	s := 0.0
	for i := 0; i+1 < len(y); i++ {
		s += float64((x[i+1] - x[i]) * (y[i+1] + y[i]) / 2)
	}
	return s
}

// meanOf is the arithmetic mean of v (NaN for an empty slice).
func meanOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return pairwiseSum(v) / float64(len(v))
}

// maxOf is the largest element of v (NaN for an empty slice).
func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	m := v[0]
	for _, x := range v[1:] {
		if x > m {
			m = x
		}
	}
	return m
}
