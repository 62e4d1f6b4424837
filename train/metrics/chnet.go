package metrics

// chnetImage holds one image's results under CHNet's eval.py (= M2SNet utils/metric.py plus soft
// precision/recall/specificity). Names are the ones eval.py prints.
type chnetImage struct {
	spec, prec, rec, dice, iou, wfm, sm, em, mae, ber, acc, adpF float64
	// maxF inputs: per-image precision and recall at the 255 uint8 thresholds q ≥ 254−i (all 0
	// for an empty mask, whose row eval.py leaves at zero).
	pre, rcl [255]float64
}

func newCHNetImage(s *sample) *chnetImage {
	r := &chnetImage{}
	n := len(s.p)
	g := make([]float64, n)
	var fg int64
	for i, b := range s.g {
		if b {
			g[i] = 1
			fg++
		}
	}
	const smooth = 1e-5
	buf := make([]float64, n)
	sum := func(f func(p, g float64) float64) float64 {
		for i, v := range s.p {
			buf[i] = f(v, g[i])
		}
		return pairwiseSum(buf)
	}
	inter := sum(func(p, g float64) float64 { return g * p })
	sumG := pairwiseSum(g)
	sumP := pairwiseSum(s.p)
	fp := sum(func(p, g float64) float64 { return (1 - g) * p })
	fn := sum(func(p, g float64) float64 { return g * (1 - p) })
	tn := sum(func(p, g float64) float64 { return (1 - g) * (1 - p) })

	// Soft (unthresholded) ratios with +1e-5 smoothing.
	r.dice = (2*inter + smooth) / (sumG + sumP + smooth)
	r.prec = (inter + smooth) / (inter + fp + smooth)
	r.rec = (inter + smooth) / (inter + fn + smooth)
	r.spec = tn / (tn + fp + smooth)

	// IoU of p > 0.5 against the mask, smoothed.
	var in, un int64
	for i, v := range s.p {
		b := v > 0.5
		if b && s.g[i] {
			in++
		}
		if b || s.g[i] {
			un++
		}
	}
	r.iou = (float64(in) + smooth) / (float64(un) + smooth)

	// BER and accuracy binarise at p ≥ 0.5 (not > 0.5 as the IoU does). eval.py divides by the
	// foreground and background sizes unguarded (NaN for an empty mask in numpy); a zero-sized
	// class contributes 0 here.
	c := countsOf(s.g, func(i int) bool { return s.p[i] >= 0.5 })
	np, nn := float64(c.tp+c.fn), float64(c.tn+c.fp)
	r.ber = 1 - (safeDiv(float64(c.tp), np)+safeDiv(float64(c.tn), nn))/2
	r.acc = (float64(c.tp) + float64(c.tn)) / (np + nn)

	d := make([]float64, n)
	for i, v := range s.p {
		d[i] = abs(v - g[i])
	}
	r.mae = npMean(d)
	r.sm = sMeasure(s.p, s.g, s.w, s.h, smCHNet)
	r.wfm = weightedF(s.p, s.g, s.w, s.h, wfmCHNet)

	// Adaptive E-measure (the only E-measure eval.py has), eps 1e-8.
	thr := adaptiveThreshold(s.p)
	ac := countsOf(s.g, func(i int) bool { return s.p[i] >= thr })
	r.em = emFromCounts(ac.tp, ac.fp, fg, int64(n), 1e-8)

	if fg > 0 {
		// "meanF" in eval.py: F(β²=0.3) at the adaptive threshold (0 when nothing is hit).
		if ac.tp > 0 {
			pre := float64(ac.tp) / float64(ac.tp+ac.fp)
			rec := float64(ac.tp) / float64(fg)
			r.adpF = 1.3 * pre * rec / (float64(0.3*pre) + rec)
		}
		// maxF curve: np.histogram(q, bins=range(256)) has 255 bins, the last one [254, 255]
		// closed, so the strictest threshold is q ≥ 254.
		var hf, hb [256]int64
		for i, v := range s.p {
			q := uint8(v * 255)
			if s.g[i] {
				hf[q]++
			} else {
				hb[q]++
			}
		}
		hf[254] += hf[255]
		hb[254] += hb[255]
		var tp, fpc int64
		for i := 0; i < 255; i++ {
			tp += hf[254-i]
			fpc += hb[254-i]
			r.pre[i] = float64(tp) / (float64(tp+fpc) + 1e-8)
			r.rcl[i] = float64(tp) / float64(fg)
		}
	}
	return r
}

// chnetColumns are eval.py's printed names; avgF is its "meanF" (adaptive F, β² = 0.3).
var chnetColumns = []string{"M_dice", "M_iou", "Precision", "Recall", "Specificity", "wfm", "Sm", "Em", "MAE", "Ber", "Acc", "avgF"}

func (r *chnetImage) row() []float64 {
	return []float64{r.dice, r.iou, r.prec, r.rec, r.spec, r.wfm, r.sm, r.em, r.mae, r.ber, r.acc, r.adpF}
}

// aggregateCHNet averages every per-image value; maxF is the maximum over the 255 thresholds of
// F(β²=0.3) computed from the dataset-mean precision and recall curves (cal_fm.show()).
func aggregateCHNet(recs []*chnetImage, vals map[string]float64, curves map[string][]float64) {
	n := len(recs)
	col := make([]float64, n)
	for j, name := range chnetColumns {
		for i, r := range recs {
			col[i] = r.row()[j]
		}
		vals[name] = meanOf(col)
	}
	pre := make([]float64, 255)
	rcl := make([]float64, 255)
	f := make([]float64, 255)
	for k := range pre {
		for i, r := range recs {
			col[i] = r.pre[k]
		}
		pre[k] = meanOf(col)
		for i, r := range recs {
			col[i] = r.rcl[k]
		}
		rcl[k] = meanOf(col)
		f[k] = 1.3 * pre[k] * rcl[k] / (float64(0.3*pre[k]) + rcl[k] + 1e-8)
	}
	curves["precision"], curves["recall"], curves["F"] = pre, rcl, f
	vals["maxF"] = maxOf(f)
}
