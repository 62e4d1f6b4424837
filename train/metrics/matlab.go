package metrics

import "sort"

// matlabThresholds is MATLAB's 1:-1/255:0 — 256 thresholds, 1 first. MATLAB builds a:d:b
// symmetrically from both ends (MathWorks' colonop.m: v(1+k) = a + k·d and v(n+1−k) = b − k·d for
// k = 0..⌊n/2⌋), so these are not exactly (255−k)/255: e.g. the fifth threshold is one ulp above
// 251/255, and a pixel of exactly 251/255 does not pass it. Reproduced because the toolbox
// compares p ≥ t on these very numbers.
var matlabThresholds = func() [256]float64 {
	var t [256]float64
	const n = 255
	d := -1.0 / 255
	for k := 0; k <= n/2; k++ {
		t[k] = 1 + float64(float64(k)*d) // float64(): round the product, never fuse
		t[n-k] = 0 - float64(float64(k)*d)
	}
	return t
}()

// matlabImage holds one image's results under the PraNet MATLAB toolbox (eval/main.m).
type matlabImage struct {
	mae, sm, wfm float64
	// Per threshold (1 first): Fmeasure_calu.m's outputs and Enhancedmeasure.m.
	dic, iou, pre, rec, spe, f, em [256]float64
}

func newMATLABImage(s *sample) *matlabImage {
	r := &matlabImage{}
	n := int64(len(s.p))
	var fg int64
	for _, b := range s.g {
		if b {
			fg++
		}
	}
	d := make([]float64, n)
	for i, v := range s.p {
		d[i] = abs(b2f(s.g[i]) - v)
	}
	r.mae = pairwiseSum(d) / float64(n)
	r.sm = sMeasure(s.p, s.g, s.w, s.h, smMATLAB)
	r.wfm = weightedF(s.p, s.g, s.w, s.h, wfmMATLAB)

	// A pixel passes thresholds k ≥ k0, k0 = the first k with t_k ≤ p (thresholds descend), so
	// a histogram of k0 over foreground and background gives every threshold's counts.
	var hf, hb [257]int64
	for i, v := range s.p {
		k0 := sort.Search(256, func(k int) bool { return matlabThresholds[k] <= v })
		if s.g[i] {
			hf[k0]++
		} else {
			hb[k0]++
		}
	}
	var tp, rec int64
	for k := 0; k < 256; k++ {
		tp += hf[k]
		rec += hb[k] // background pixels passing: FP
		numRec := tp + rec
		fpk := rec
		fn := fg - tp
		tn := (n - numRec) - fn
		r.em[k] = emFromCounts(tp, fpk, fg, n, epsNumpy)
		if tp == 0 {
			// Fmeasure_calu.m: no true positive ⇒ every ratio is 0, specificity included.
			continue
		}
		ftp := float64(tp)
		r.iou[k] = ftp / float64(fn+numRec)
		r.pre[k] = ftp / float64(numRec)
		r.rec[k] = ftp / float64(fg)
		r.spe[k] = float64(tn) / float64(tn+fpk)
		r.dic[k] = 2 * ftp / float64(fg+numRec)
		r.f[k] = 2.0 * r.pre[k] * r.rec[k] / (r.pre[k] + r.rec[k])
	}
	return r
}

// matlabColumns are the per-image CSV columns; Dic..Spe are this image's mean over thresholds.
var matlabColumns = []string{"meanDic", "meanIoU", "wFm", "Sm", "meanEm", "maxEm", "MAE", "meanSen", "meanSpe", "meanPre"}

func (r *matlabImage) row() []float64 {
	return []float64{
		meanOf(r.dic[:]), meanOf(r.iou[:]), r.wfm, r.sm, meanOf(r.em[:]), maxOf(r.em[:]), r.mae,
		meanOf(r.rec[:]), meanOf(r.spe[:]), meanOf(r.pre[:]),
	}
}

// aggregateMATLAB follows main.m: Sm, wFm, MAE are means over images; for the thresholded
// metrics the per-threshold column means over images are taken first ("column_X"), then their
// mean (meanX) and max (maxX) over the 256 thresholds.
func aggregateMATLAB(recs []*matlabImage, vals map[string]float64, curves map[string][]float64) {
	n := len(recs)
	col := make([]float64, n)
	scalar := func(f func(r *matlabImage) float64) float64 {
		for i, r := range recs {
			col[i] = f(r)
		}
		return meanOf(col)
	}
	vals["MAE"] = scalar(func(r *matlabImage) float64 { return r.mae })
	vals["Sm"] = scalar(func(r *matlabImage) float64 { return r.sm })
	vals["wFm"] = scalar(func(r *matlabImage) float64 { return r.wfm })
	column := func(name string, f func(r *matlabImage) *[256]float64) {
		c := make([]float64, 256)
		for k := range c {
			for i, r := range recs {
				col[i] = f(r)[k]
			}
			c[k] = meanOf(col)
		}
		curves[name] = c
		vals["mean"+name], vals["max"+name] = meanOf(c), maxOf(c)
	}
	column("Dic", func(r *matlabImage) *[256]float64 { return &r.dic })
	column("IoU", func(r *matlabImage) *[256]float64 { return &r.iou })
	column("Em", func(r *matlabImage) *[256]float64 { return &r.em })
	column("Sen", func(r *matlabImage) *[256]float64 { return &r.rec })
	column("Spe", func(r *matlabImage) *[256]float64 { return &r.spe })
	column("Pre", func(r *matlabImage) *[256]float64 { return &r.pre })
	column("F", func(r *matlabImage) *[256]float64 { return &r.f })
	// main.m prints maxDice (not maxDic) for the maximum Dice.
	vals["maxDice"] = vals["maxDic"]
}
