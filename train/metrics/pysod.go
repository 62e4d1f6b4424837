package metrics

import "math"

// pysodImage is what PySODMetrics keeps per image (sod_metrics.py, fmeasurev2.py), and what the
// optional families add.
type pysodImage struct {
	mae, sm, wfm float64
	em           [256]float64 // E-measure at the 256 thresholds, strictest first
	adpEm        float64
	tp, fp       [256]int64 // cumulative counts at q ≥ 255−i
	fg, bg       int64
	adp, bin     conf // adaptive (p ≥ min(2·mean, 1)) and binary (p > 0.5) counts

	extra *pysodExtra // nil unless WithExtras
}

func newPySODImage(s *sample, extras bool) *pysodImage {
	r := &pysodImage{}
	n := int64(len(s.p))
	for _, b := range s.g {
		if b {
			r.fg++
		}
	}
	r.bg = n - r.fg

	// MAE: mean |p − G| (numpy: a fresh array, pairwise-summed).
	d := make([]float64, n)
	for i, v := range s.p {
		d[i] = math.Abs(v - b2f(s.g[i]))
	}
	r.mae = npMean(d)

	r.sm = sMeasure(s.p, s.g, s.w, s.h, smPySOD)
	r.wfm = weightedF(s.p, s.g, s.w, s.h, wfmPySOD)

	r.tp, r.fp = thresholdCounts(s.p, s.g)
	for i := range r.em {
		r.em[i] = emFromCounts(r.tp[i], r.fp[i], r.fg, n, epsNumpy)
	}
	t := adaptiveThreshold(s.p)
	r.adp = countsOf(s.g, func(i int) bool { return s.p[i] >= t })
	r.adpEm = emFromCounts(r.adp.tp, r.adp.fp, r.fg, n, epsNumpy)
	r.bin = countsOf(s.g, func(i int) bool { return s.p[i] > 0.5 })
	if extras {
		r.extra = newPySODExtra(s)
	}
	return r
}

// dyn returns the per-threshold counts of the dynamic sweep at index i.
func (r *pysodImage) dyn(i int) conf {
	return conf{tp: r.tp[i], fp: r.fp[i], tn: r.bg - r.fp[i], fn: r.fg - r.tp[i]}
}

func (r *pysodImage) curve(name string) []float64 {
	c := make([]float64, 256)
	for i := range c {
		c[i] = sodMetric(name, r.dyn(i))
	}
	return c
}

// pysodColumns are the per-image CSV columns. "mean*"/"max*" here are over this image's own
// 256-threshold curve; the dataset's meanX equals the mean of these, its maxX does not (it is the
// maximum of the dataset-mean curve).
var pysodColumns = []string{
	"MAE", "Smeasure", "wFmeasure", "adpEm", "meanEm", "maxEm", "adpFm", "meanFm", "maxFm",
	"adpdice", "meandice", "maxdice", "adpiou", "meaniou", "maxiou", "meanpre", "meanrec",
	"sample_bidice", "sample_biiou", "sample_bipre", "sample_birec",
}

func (r *pysodImage) row() []float64 {
	fm := r.curve("fm")
	dice := r.curve("dice")
	iou := r.curve("iou")
	return []float64{
		r.mae, r.sm, r.wfm, r.adpEm, meanOf(r.em[:]), maxOf(r.em[:]),
		sodMetric("fm", r.adp), meanOf(fm), maxOf(fm),
		sodMetric("dice", r.adp), meanOf(dice), maxOf(dice),
		sodMetric("iou", r.adp), meanOf(iou), maxOf(iou),
		meanOf(r.curve("pre")), meanOf(r.curve("rec")),
		sodMetric("dice", r.bin), sodMetric("iou", r.bin), sodMetric("pre", r.bin), sodMetric("rec", r.bin),
	}
}

// aggregatePySOD reduces the images as PySODMetrics' get_results() and its example test do:
// scalars are means over images; dynamic curves are averaged over images first, then their mean
// and max taken; "overall" binary metrics pool the counts of all images.
func aggregatePySOD(recs []*pysodImage, vals map[string]float64, curves map[string][]float64) {
	n := len(recs)
	per := func(f func(r *pysodImage) float64) float64 {
		v := make([]float64, n)
		for i, r := range recs {
			v[i] = f(r)
		}
		return meanOf(v)
	}
	meanCurve := func(f func(r *pysodImage, i int) float64) []float64 {
		c := make([]float64, 256)
		col := make([]float64, n)
		for i := range c {
			for k, r := range recs {
				col[k] = f(r, i)
			}
			c[i] = meanOf(col)
		}
		return c
	}
	vals["MAE"] = per(func(r *pysodImage) float64 { return r.mae })
	vals["Smeasure"] = per(func(r *pysodImage) float64 { return r.sm })
	vals["wFmeasure"] = per(func(r *pysodImage) float64 { return r.wfm })
	vals["adpEm"] = per(func(r *pysodImage) float64 { return r.adpEm })
	em := meanCurve(func(r *pysodImage, i int) float64 { return r.em[i] })
	curves["Em"] = em
	vals["meanEm"], vals["maxEm"] = meanOf(em), maxOf(em)

	var overall conf
	for _, r := range recs {
		overall = overall.add(r.bin)
	}
	for _, m := range sodNames {
		c := meanCurve(func(r *pysodImage, i int) float64 { return sodMetric(m, r.dyn(i)) })
		curves[m] = c
		vals["mean"+m], vals["max"+m] = meanOf(c), maxOf(c)
		vals["adp"+m] = per(func(r *pysodImage) float64 { return sodMetric(m, r.adp) })
		vals["sample_bi"+m] = per(func(r *pysodImage) float64 { return sodMetric(m, r.bin) })
		vals["overall_bi"+m] = sodMetric(m, overall)
	}
	// The legacy Fmeasure class (β² = 0.3) reports the same numbers as the "fm" handler under
	// these names.
	vals["adpFm"], vals["meanFm"], vals["maxFm"] = vals["adpfm"], vals["meanfm"], vals["maxfm"]

	// Areas under the dataset-mean PR and ROC curves (test_metrics.py: cal_auc).
	vals["auc_pr"] = curveAUC(curves["pre"], curves["rec"])
	vals["auc_roc"] = curveAUC(curves["rec"], curves["fpr"])

	if n > 0 && recs[0].extra != nil {
		extras := make([]*pysodExtra, n)
		for i, r := range recs {
			extras[i] = r.extra
		}
		aggregateExtras(extras, vals, curves)
	}
}

// curveAUC integrates y over x (trapezoids) after putting the curve in ascending-threshold order
// (the sweep lists the strictest threshold first) and stably sorting by x, as cal_auc does.
func curveAUC(y, x []float64) float64 {
	n := len(x)
	xs := make([]float64, n)
	ys := make([]float64, n)
	for i := range x {
		xs[i], ys[i] = x[n-1-i], y[n-1-i]
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	stableSortBy(order, xs)
	sx := make([]float64, n)
	sy := make([]float64, n)
	for k, i := range order {
		sx[k], sy[k] = xs[i], ys[i]
	}
	return trapz(sy, sx)
}
