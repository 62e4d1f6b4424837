package metrics

import "math"

// wfmVariant is where the weighted F-measure implementations differ.
type wfmVariant int

const (
	wfmPySOD  wfmVariant = iota // eps 2^-52, Q = (1+β²)RP/(R + β²P + eps)
	wfmMATLAB                   // eps 2^-52, Q = 2(RP)/(eps + R + P)
	wfmCHNet                    // eps 1e-6 in both P and Q
)

// weightedF is the weighted F-measure of Margolin et al. (CVPR 2014) with β² = 1, following
// original_WFb.m and its numpy ports:
//
//	E = |p − G|; on background pixels the error is replaced by the error of the nearest
//	foreground pixel (Et), which is then smoothed with the 7×7 σ=5 Gaussian (EA); on foreground
//	pixels the smaller of E and EA is kept; background errors are weighted by
//	2 − exp(ln(0.5)/5 · distance to the foreground); R = 1 − mean of the foreground weighted
//	errors, P = TPw/(TPw + FPw + eps), Q = 2RP/(R + P + eps).
//
// Empty ground truth gives 0 (PySODMetrics and CHNet; the MATLAB toolbox cannot score it: bwdist
// of an empty image has no nearest pixel).
func weightedF(p []float64, g []bool, w, h int, v wfmVariant) float64 {
	n := w * h
	nfg := 0
	for _, b := range g {
		if b {
			nfg++
		}
	}
	if nfg == 0 {
		return 0
	}
	idx := nearestForeground(g, w, h)
	et := make([]float64, n)
	for i := range et {
		// Et = E, except background pixels take E of their nearest foreground pixel, where
		// E = 1 − p.
		et[i] = 1 - p[idx[i]]
	}
	ea := make([]float64, n)
	tmp := make([]float64, n)
	gaussFilter7(ea, et, tmp, w, h)

	// The weighted errors are collected for numpy-order sums, reusing the free buffers.
	fgE := tmp[:0]
	bgE := et[:0]
	k := math.Log(0.5) / 5
	for i := 0; i < n; i++ {
		if g[i] {
			e := 1 - p[i]
			if ea[i] < e {
				e = ea[i]
			}
			fgE = append(fgE, e) // weight 1 on the foreground
		} else {
			bgE = append(bgE, p[i]*(2-math.Exp(k*fgDist(i, int(idx[i]), w))))
		}
	}
	sumFg := pairwiseSum(fgE)
	tpw := float64(nfg) - sumFg
	fpw := pairwiseSum(bgE)
	r := 1 - sumFg/float64(nfg)
	switch v {
	case wfmCHNet:
		const eps = 1e-6
		pw := tpw / (eps + tpw + fpw)
		return 2 * r * pw / (eps + r + pw)
	case wfmMATLAB:
		pw := tpw / (epsNumpy + tpw + fpw)
		return 2 * (r * pw) / (epsNumpy + r + pw)
	default:
		pw := tpw / (tpw + fpw + epsNumpy)
		return 2 * r * pw / (r + pw + epsNumpy)
	}
}
