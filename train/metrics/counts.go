package metrics

// conf holds the four confusion counts of a binarised prediction against a binary ground truth.
type conf struct{ tp, fp, tn, fn int64 }

func (c conf) add(o conf) conf { return conf{c.tp + o.tp, c.fp + o.fp, c.tn + o.tn, c.fn + o.fn} }

// countsOf binarises with keep(i) and counts against g.
func countsOf(g []bool, keep func(i int) bool) conf {
	var c conf
	for i, fg := range g {
		switch k := keep(i); {
		case fg && k:
			c.tp++
		case fg:
			c.fn++
		case k:
			c.fp++
		default:
			c.tn++
		}
	}
	return c
}

// sodNames are PySODMetrics' FmeasureV2 handler names, in the order its test lists them.
var sodNames = []string{"fm", "f1", "pre", "rec", "fpr", "iou", "dice", "spec", "ber", "oa", "kappa"}

// sodMetric evaluates one FmeasureV2 handler on confusion counts, with the same operations in the
// same order as py_sod_metrics/fmeasurev2.py so results agree to the last bits, including its
// safe division (0 where a denominator is 0).
func sodMetric(name string, c conf) float64 {
	tp, fp, tn, fn := float64(c.tp), float64(c.fp), float64(c.tn), float64(c.fn)
	switch name {
	case "fm", "f1":
		beta := 0.3 // β² of the salient-object F-measure
		if name == "f1" {
			beta = 1
		}
		p := safeDiv(tp, tp+fp)
		r := safeDiv(tp, tp+fn)
		return safeDiv((beta+1)*p*r, float64(beta*p)+r) // float64(): no fused multiply-add
	case "pre":
		return safeDiv(tp, tp+fp)
	case "rec":
		return safeDiv(tp, tp+fn)
	case "fpr":
		return safeDiv(fp, tn+fp)
	case "iou":
		return safeDiv(tp, tp+fp+fn)
	case "dice":
		return safeDiv(2*tp, tp+fn+tp+fp)
	case "spec":
		return safeDiv(tn, tn+fp)
	case "ber":
		return 1 - float64(0.5*(safeDiv(tp, tp+fn)+safeDiv(tn, tn+fp)))
	case "oa":
		return safeDiv(tp+tn, tp+fp+tn+fn)
	case "kappa":
		// PySODMetrics' chance agreement is [(tp+fp)(tp+fn) + (tn+fn)(tn+tp)] / N² — note
		// (tn+tp) where Cohen's kappa has (tn+fp). Reproduced as written, since that is what
		// its reference values were computed with. Integer products are exact, as in numpy.
		n := c.tp + c.fp + c.tn + c.fn
		oa := safeDiv(tp+tn, float64(n))
		pe := safeDiv(float64((c.tp+c.fp)*(c.tp+c.fn)+(c.tn+c.fn)*(c.tn+c.tp)), float64(n*n))
		return safeDiv(oa-pe, 1-pe)
	}
	panic("metrics: unknown FmeasureV2 handler " + name)
}

// thresholdCounts returns, for the PySODMetrics threshold sweep, the cumulative counts
// tp[i], fp[i] of pixels with q ≥ 255 − i (i = 0 is the strictest threshold), where
// q = uint8(255·p) truncates like numpy's astype(np.uint8).
func thresholdCounts(p []float64, g []bool) (tp, fp [256]int64) {
	var hf, hb [256]int64
	for i, v := range p {
		q := uint8(v * 255)
		if g[i] {
			hf[q]++
		} else {
			hb[q]++
		}
	}
	var st, sf int64
	for i := 0; i < 256; i++ {
		st += hf[255-i]
		sf += hb[255-i]
		tp[i], fp[i] = st, sf
	}
	return tp, fp
}

// emFromCounts is the E-measure of a binary map from its counts (closed form): the enhanced
// alignment (φ+1)²/4 with φ = 2ab/(a²+b²+eps) takes one value per (prediction, truth) class, so
// the pixel sum is four products. Empty truth: the score counts predicted background; full
// truth: predicted foreground. Divided by N − 1 + eps, as every toolbox does. eps is 2^-52 for
// PySODMetrics/MATLAB and 1e-8 for CHNet's eval.py.
func emFromCounts(tp, fp, fg, n int64, eps float64) float64 {
	predFg := tp + fp
	predBg := n - predFg
	var s float64
	switch fg {
	case 0:
		s = float64(predBg)
	case n:
		s = float64(predFg)
	default:
		fn := fg - tp
		tn := predBg - fn
		mp := float64(predFg) / float64(n)
		mg := float64(fg) / float64(n)
		pf, pb := 1-mp, 0-mp
		gf, gb := 1-mg, 0-mg
		part := func(cnt int64, a, b float64) float64 {
			al := 2 * (a * b) / (float64(a*a) + float64(b*b) + eps)
			return float64((al + 1) * (al + 1) / 4 * float64(cnt))
		}
		s = part(tp, pf, gf) + part(fp, pf, gb) + part(fn, pb, gf) + part(tn, pb, gb)
	}
	return s / (float64(n-1) + eps)
}

// adaptiveThreshold is min(2·mean(p), 1), the "adaptive" binarisation threshold of all three
// toolboxes; mean is numpy's.
func adaptiveThreshold(p []float64) float64 {
	t := 2 * npMean(p)
	if t > 1 {
		t = 1
	}
	return t
}
