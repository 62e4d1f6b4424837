package metrics

// smVariant captures where the three S-measure implementations differ (Fan et al., ICCV 2017).
type smVariant struct {
	round     roundMode // centroid rounding
	stdDdof   int       // object score: std with ddof 1 (PySODMetrics, MATLAB std) or 0 (CHNet np.std)
	eps       float64   // 2^-52, or 1e-8 in CHNet's eval.py
	chnetSSIM bool      // CHNet: population variances for σx², σy², n−1 for σxy, w4 from its own area
	clamp     bool      // max(0, S) (PySODMetrics, MATLAB); CHNet does not clamp
}

var (
	smPySOD  = smVariant{round: halfEven, stdDdof: 1, eps: epsNumpy, clamp: true}
	smMATLAB = smVariant{round: halfAway, stdDdof: 1, eps: epsNumpy, clamp: true}
	smCHNet  = smVariant{round: halfEven, stdDdof: 0, eps: 1e-8, chnetSSIM: true}
)

// sMeasure is the structure measure with α = 0.5. All-background truth scores 1 − mean(p),
// all-foreground mean(p); otherwise α·S_object + (1−α)·S_region.
func sMeasure(p []float64, g []bool, w, h int, v smVariant) float64 {
	n := len(p)
	var nfg int64
	for _, b := range g {
		if b {
			nfg++
		}
	}
	y := float64(nfg) / float64(n)
	switch y {
	case 0:
		return 1 - npMean(p)
	case 1:
		return npMean(p)
	}
	const alpha = 0.5
	s := float64(sObject(p, g, y, v)*alpha) + float64(sRegion(p, g, w, h, nfg, v)*(1-alpha))
	if v.clamp && s < 0 {
		s = 0
	}
	return s
}

// sObject compares the foreground of p with 1 and its background with 0:
// y·O(p[G]) + (1−y)·O(1−p[¬G]), O(x) = 2x̄/(x̄² + 1 + σ_x + eps).
func sObject(p []float64, g []bool, y float64, v smVariant) float64 {
	fg := make([]float64, 0, int(y*float64(len(p)))+1)
	bg := make([]float64, 0, len(p)-cap(fg)+1)
	for i, b := range g {
		if b {
			fg = append(fg, p[i])
		} else {
			bg = append(bg, 1-p[i])
		}
	}
	scratch := make([]float64, max(len(fg), len(bg)))
	score := func(x []float64) float64 {
		m := npMean(x)
		sd := 0.0
		if len(x) > 1 || v.stdDdof == 0 { // one pixel: PySODMetrics and MATLAB std give 0
			sd = npStd(x, v.stdDdof, scratch)
		}
		return 2 * m / (float64(m*m) + 1 + sd + v.eps)
	}
	return float64(score(fg)*y) + float64(score(bg)*(1-y))
}

// sRegion splits the image at the foreground centroid into four quadrants and sums their SSIM
// weighted by area. The centroid is the rounded mean row/column of the foreground (0-based) plus
// one, i.e. MATLAB's 1-based index used as an exclusive split; rounding differs per toolbox on
// exact .5: numpy/Python round half to even, MATLAB half away from zero.
func sRegion(p []float64, g []bool, w, h int, nfg int64, v smVariant) float64 {
	var sy, sx int64
	for i, b := range g {
		if b {
			sy += int64(i / w)
			sx += int64(i % w)
		}
	}
	cy := int(roundRatio(sy, nfg, v.round)) + 1
	cx := int(roundRatio(sx, nfg, v.round)) + 1
	area := float64(w * h)
	w1 := float64(cx*cy) / area
	w2 := float64(cy*(w-cx)) / area
	w3 := float64((h-cy)*cx) / area
	w4 := 1 - w1 - w2 - w3
	if v.chnetSSIM {
		w4 = float64((h-cy)*(w-cx)) / area
	}
	tmp := make([]float64, w*h)
	tmp32 := make([]float32, w*h)
	q := func(y0, y1, x0, x1 int) float64 { return ssimRegion(p, g, w, y0, y1, x0, x1, v, tmp, tmp32) }
	return float64(q(0, cy, 0, cx)*w1) + float64(q(0, cy, cx, w)*w2) + float64(q(cy, h, 0, cx)*w3) + float64(q(cy, h, cx, w)*w4)
}

// ssimRegion is the S-measure's SSIM of rows [y0,y1) × columns [x0,x1):
// 4·x̄ȳσxy / ((x̄²+ȳ²)(σx²+σy²) + eps), 1 when numerator and denominator are both 0.
// Sums run over the region in row-major order as numpy's do (pairwiseSum).
//
// An empty quadrant (centroid on the last row or column) has zero weight; numpy and MATLAB
// compute NaN there (mean of nothing) and NaN·0 poisons the score, so one such image would make
// the dataset mean NaN. Here it contributes 0 — a deliberate deviation. Likewise CHNet's σxy
// divides by n−1 = 0 for a one-pixel quadrant (NaN in numpy); here that covariance is 0.
func ssimRegion(p []float64, g []bool, w, y0, y1, x0, x1 int, v smVariant, tmp []float64, tmp32 []float32) float64 {
	rw, rh := x1-x0, y1-y0
	n := rw * rh
	if n <= 0 {
		return 0
	}
	pv := tmp[:n]
	gt := make([]bool, 0, n)
	cnt := 0
	for y := y0; y < y1; y++ {
		copy(pv[(y-y0)*rw:], p[y*w+x0:y*w+x1])
		for _, b := range g[y*w+x0 : y*w+x1] {
			gt = append(gt, b)
			if b {
				cnt++
			}
		}
	}
	mx := pairwiseSum(pv) / float64(n)
	if v.chnetSSIM {
		return ssimCHNet(pv, gt, cnt, mx, tmp32)
	}
	my := float64(cnt) / float64(n) // a sum of 0/1 is exact in any order
	dev := make([]float64, n)
	sum := func(f func(dp, dg float64) float64) float64 {
		for i, pp := range pv {
			dev[i] = f(pp-mx, b2f(gt[i])-my)
		}
		return pairwiseSum(dev)
	}
	d := float64(n-1) + v.eps
	sx2 := sum(func(dp, _ float64) float64 { return dp * dp }) / d
	sy2 := sum(func(_, dg float64) float64 { return dg * dg }) / d
	sxy := sum(func(dp, dg float64) float64 { return dp * dg }) / d
	a := 4 * mx * my * sxy
	b := (float64(mx*mx) + float64(my*my)) * (sx2 + sy2)
	return ssimScore(a, b, v.eps)
}

func ssimScore(a, b, eps float64) float64 {
	switch {
	case a != 0:
		return a / (b + eps)
	case b == 0:
		return 1
	default:
		return 0
	}
}

// ssimCHNet follows cal_sm.ssim of CHNet's eval.py, whose mask quadrant is float32, operation by
// operation: ȳ = float32(count/n) (np.mean of float32: summed in float32, divided in float64,
// stored as float32); σy² = np.var in float32 (mean divided in float32, deviations and squares in
// float32, a float32 pairwise sum); σx² = np.var of the float64 prediction (population, n);
// σxy = Σ(p−x̄)(g−ȳ)/(n−1) with g−ȳ in float32; ȳ² in float32. pv holds the prediction's region.
func ssimCHNet(pv []float64, gt []bool, cnt int, mx float64, tmp32 []float32) float64 {
	n := len(pv)
	const eps = 1e-8
	my := float32(float64(cnt) / float64(n))
	dev := make([]float64, n)
	for i, pp := range pv {
		d := pp - mx
		dev[i] = d * d
	}
	sx2 := pairwiseSum(dev) / float64(n)

	varMean := float32(cnt) / float32(n) // np.var's keepdims mean: a float32 division
	sq := tmp32[:n]
	for i, b := range gt {
		d := float32(b2f(b)) - varMean
		sq[i] = d * d
	}
	sy2 := float32(float64(pairwiseSum(sq)) / float64(n))

	sxy := 0.0
	if n > 1 {
		for i, pp := range pv {
			dev[i] = (pp - mx) * float64(float32(b2f(gt[i]))-my)
		}
		sxy = pairwiseSum(dev) / float64(n-1)
	}
	a := 4 * mx * float64(my) * sxy
	b := (float64(mx*mx) + float64(my*my)) * (sx2 + float64(sy2))
	return ssimScore(a, b, eps)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
