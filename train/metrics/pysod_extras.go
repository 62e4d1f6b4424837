package metrics

import (
	"math"
	"sort"
)

// pysodExtra holds PySODMetrics' slower families, computed only WithExtras: MSIoU
// (multiscale_iou.py) and the size-invariant variants (size_invariance.py).
type pysodExtra struct {
	msCurve      [257]float64 // MSIoU at thresholds q ≥ t, t = 0..256 (ascending, unlike the others)
	msAdp, msBin float64
	siMAE        float64
	targets      []siTarget // per connected component (at least one entry)
}

// siTarget is one component's counts: the prediction outside its bounding box is zeroed and the
// truth restricted to the box, then the whole image is counted.
type siTarget struct {
	tp, fp   [256]int64
	fg, bg   int64
	adp, bin conf
}

func (t *siTarget) dyn(i int) conf {
	return conf{tp: t.tp[i], fp: t.fp[i], tn: t.bg - t.fp[i], fn: t.fg - t.tp[i]}
}

func newPySODExtra(s *sample) *pysodExtra {
	e := &pysodExtra{}
	e.msiou(s)
	e.sizeInvariant(s)
	return e
}

// ---- MSIoU (Ahmadzadeh et al., ICIP 2021) ----

// msCells are the box-counting cell sizes 2^0 … 2^9.
var msCells = [10]int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}

// msEdge tells whether pixel i of a w×h mask is a Sobel edge: scipy.ndimage.sobel of the mask
// along either axis (mode='constant', zero outside) is non-zero there. pad is the mask as 0/1
// bytes with a one-pixel zero border ((w+2)×(h+2)).
//
// PySODMetrics runs sobel on a boolean array, so scipy writes each pass into a bool (byte)
// buffer: the [-1,0,1] pass stores −1 as 255, and the [1,2,1] pass sums those bytes and keeps the
// low byte. Sums of bytes standing for −1/0/1 are congruent mod 256 to the true signed sums,
// which lie in [−4, 4], so the byte is non-zero exactly when the real Sobel response is — which
// is what this computes.
func msEdge(pad []uint8, w, i int) bool {
	pw := w + 2
	c := (i/w+1)*pw + i%w + 1
	up, dn := c-pw, c+pw
	gx := int(pad[dn-1]) - int(pad[up-1]) + 2*(int(pad[dn])-int(pad[up])) + int(pad[dn+1]) - int(pad[up+1])
	gy := int(pad[up+1]) - int(pad[up-1]) + 2*(int(pad[c+1])-int(pad[c-1])) + int(pad[dn+1]) - int(pad[dn-1])
	return gx != 0 || gy != 0
}

// msGrid is one box-counting level: the image padded at the top and left to a multiple of the
// cell size (as shrink_by_grid pads), a cell marked when it holds an edge pixel.
type msGrid struct {
	c, padH, padW, gw int
	gt                []bool  // cells holding a ground-truth edge
	gtCount           float64 // their number as numpy's float16 sum gives it (float16Sum)
}

func (g *msGrid) cell(y, x int) int { return ((y+g.padH)/g.c)*g.gw + (x+g.padW)/g.c }

// msState scores binary predictions against one mask's edge grids. For a threshold sweep it
// keeps the prediction's edge map and per-cell edge counts up to date as pixels leave the mask,
// so the 257 thresholds cost O(N) in all instead of O(N) each.
type msState struct {
	w, h  int
	grids [10]msGrid
	pad   []uint8     // current prediction mask with a zero border
	edge  []bool      // its edge map
	cnt   [10][]int32 // edge pixels per cell
	inter [10]int64   // cells with a prediction edge and a ground-truth edge
}

func newMSState(g []bool, w, h int) *msState {
	st := &msState{w: w, h: h, pad: make([]uint8, (w+2)*(h+2)), edge: make([]bool, w*h)}
	st.load(g)
	for k, c := range msCells {
		gr := &st.grids[k]
		gr.c = c
		gr.padH, gr.padW = (c-h%c)%c, (c-w%c)%c
		gr.gw = (w + gr.padW) / c
		gh := (h + gr.padH) / c
		gr.gt = make([]bool, gr.gw*gh)
		for i := range st.edge {
			if msEdge(st.pad, w, i) {
				gr.gt[gr.cell(i/w, i%w)] = true
			}
		}
		gr.gtCount = float16Sum(gr.gt)
		st.cnt[k] = make([]int32, gr.gw*gh)
	}
	return st
}

func (st *msState) load(mask []bool) {
	pw := st.w + 2
	for i, m := range mask {
		v := uint8(0)
		if m {
			v = 1
		}
		st.pad[(i/st.w+1)*pw+i%st.w+1] = v
	}
}

// reset makes mask the current prediction and recounts everything.
func (st *msState) reset(mask []bool) {
	st.load(mask)
	for k := range st.grids {
		clear(st.cnt[k])
		st.inter[k] = 0
	}
	for i := range st.edge {
		st.edge[i] = false
		if msEdge(st.pad, st.w, i) {
			st.setEdge(i, true)
		}
	}
}

func (st *msState) setEdge(i int, on bool) {
	st.edge[i] = on
	y, x := i/st.w, i%st.w
	for k := range st.grids {
		gr := &st.grids[k]
		ci := gr.cell(y, x)
		if on {
			st.cnt[k][ci]++
			if st.cnt[k][ci] == 1 && gr.gt[ci] {
				st.inter[k]++
			}
		} else {
			st.cnt[k][ci]--
			if st.cnt[k][ci] == 0 && gr.gt[ci] {
				st.inter[k]--
			}
		}
	}
}

// remove takes pixels out of the current prediction and refreshes the edges around them.
func (st *msState) remove(pixels []int32) {
	pw := st.w + 2
	for _, i := range pixels {
		st.pad[(int(i)/st.w+1)*pw+int(i)%st.w+1] = 0
	}
	for _, i := range pixels {
		y, x := int(i)/st.w, int(i)%st.w
		for yy := max(y-1, 0); yy <= min(y+1, st.h-1); yy++ {
			for xx := max(x-1, 0); xx <= min(x+1, st.w-1); xx++ {
				j := yy*st.w + xx
				if e := msEdge(st.pad, st.w, j); e != st.edge[j] {
					st.setEdge(j, e)
				}
			}
		}
	}
}

// score is the MSIoU of the current prediction: at each level (|pred cells ∩ gt cells| + 1) /
// (|gt cells| + 1), then the trapezoid area under the 10 ratios with spacing 1/9.
func (st *msState) score() float64 {
	var ratio [10]float64
	for k := range ratio {
		// numpy 1.x: an int64 numerator over float16(count) + 1 promoted to float64.
		ratio[k] = float64(st.inter[k]+1) / (st.grids[k].gtCount + 1)
	}
	var terms [9]float64
	for k := range terms {
		terms[k] = 1.0 / 9 * (ratio[k+1] + ratio[k]) / 2
	}
	return pairwiseSum(terms[:])
}

func (e *pysodExtra) msiou(s *sample) {
	st := newMSState(s.g, s.w, s.h)
	n := len(s.p)

	// Pixels bucketed by their uint8 level q = ⌊255p⌋.
	var start [257]int32
	q := make([]uint8, n)
	for i, v := range s.p {
		q[i] = uint8(v * 255)
		start[int(q[i])+1]++
	}
	for l := 1; l <= 256; l++ {
		start[l] += start[l-1]
	}
	byLevel := make([]int32, n)
	fill := start
	for i, l := range q {
		byLevel[fill[l]] = int32(i)
		fill[l]++
	}

	mask := make([]bool, n)
	for i := range mask {
		mask[i] = true
	}
	st.reset(mask) // threshold 0: everything
	e.msCurve[0] = st.score()
	for t := 1; t <= 256; t++ {
		// q ≥ t drops the pixels at level t−1. PySODMetrics recomputes only at thresholds just
		// above a level that occurs (and at 256) and repeats the previous score otherwise;
		// nothing changes in between, so the values agree.
		if lv := byLevel[start[t-1]:start[t]]; len(lv) > 0 {
			st.remove(lv)
			e.msCurve[t] = st.score()
		} else {
			e.msCurve[t] = e.msCurve[t-1]
		}
	}

	thr := adaptiveThreshold(s.p)
	for i, v := range s.p {
		mask[i] = v >= thr
	}
	st.reset(mask)
	e.msAdp = st.score()
	for i, v := range s.p {
		mask[i] = v > 0.5
	}
	st.reset(mask)
	e.msBin = st.score()
}

// float16Sum is numpy 1.x's sum of a float16 0/1 array (the shrunk edge maps are float16 because
// scipy's sobel of a bool mask is bool and np.hypot of bools is float16): the reduction is
// buffered in chunks of 8192 elements, each chunk is summed exactly in float32 and added to a
// float16 accumulator, which is rounded to float16 after every chunk. So a count of 8342 edge
// cells reads as 8336 (not 8344, the nearest float16). Checked against numpy 1.24 on 300 random
// arrays; the reference outputs match only with this rounding.
func float16Sum(marked []bool) float64 {
	const chunk = 8192
	acc := 0.0
	for start := 0; start < len(marked); start += chunk {
		var c int64
		for _, m := range marked[start:min(start+chunk, len(marked))] {
			if m {
				c++
			}
		}
		if math.IsInf(acc, 1) {
			continue
		}
		acc = float16Count(int64(acc) + c)
	}
	return acc
}

// ---- size-invariant variants (Li et al., ICML 2024) ----

// components labels the 4-connected foreground components in raster order of their first pixel
// (skimage.measure.label(connectivity=1) numbering) and returns each one's area and bounding box.
type component struct {
	area           int
	y0, y1, x0, x1 int // inclusive bounds
}

func components(g []bool, w, h int) []component {
	lab := make([]int32, len(g))
	var comps []component
	stack := make([]int, 0, 64)
	for start, fg := range g {
		if !fg || lab[start] != 0 {
			continue
		}
		id := int32(len(comps) + 1)
		c := component{y0: h, x0: w, y1: -1, x1: -1}
		lab[start] = id
		stack = append(stack[:0], start)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			y, x := i/w, i%w
			c.area++
			c.y0, c.y1 = min(c.y0, y), max(c.y1, y)
			c.x0, c.x1 = min(c.x0, x), max(c.x1, x)
			for _, nb := range [4][2]int{{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}} {
				yy, xx := nb[0], nb[1]
				if yy < 0 || yy >= h || xx < 0 || xx >= w {
					continue
				}
				j := yy*w + xx
				if g[j] && lab[j] == 0 {
					lab[j] = id
					stack = append(stack, j)
				}
			}
		}
		comps = append(comps, c)
	}
	return comps
}

// validTargets applies parse_connected_components: components of area ≥ 50 in label order; if
// there is none, every component sharing the largest area.
func validTargets(comps []component) []component {
	var valid, largest []component
	for _, c := range comps {
		switch {
		case len(largest) == 0 || largest[0].area == c.area:
			largest = append(largest, c)
		case largest[0].area < c.area:
			largest = []component{c}
		}
		if c.area >= 50 {
			valid = append(valid, c)
		}
	}
	if len(valid) == 0 {
		return largest
	}
	return valid
}

func (e *pysodExtra) sizeInvariant(s *sample) {
	w, h := s.w, s.h
	n := int64(w * h)
	targets := validTargets(components(s.g, w, h))
	if len(targets) == 0 {
		// No foreground: the whole image is the one "target", and si_mae is the plain MAE.
		t := siTarget{}
		t.tp, t.fp = thresholdCounts(s.p, s.g)
		t.fg, t.bg = 0, n
		thr := adaptiveThreshold(s.p)
		t.adp = countsOf(s.g, func(i int) bool { return s.p[i] >= thr })
		t.bin = countsOf(s.g, func(i int) bool { return s.p[i] > 0.5 })
		e.targets = []siTarget{t}
		d := make([]float64, n)
		for i, v := range s.p {
			d[i] = v // the truth is all 0
		}
		e.siMAE = npMean(d)
		return
	}
	inBox := func(c component, i int) bool {
		y, x := i/w, i%w
		return y >= c.y0 && y <= c.y1 && x >= c.x0 && x <= c.x1
	}
	masked := make([]float64, n) // the prediction with everything outside one box zeroed
	for _, c := range targets {
		for i, v := range s.p {
			if inBox(c, i) {
				masked[i] = v
			} else {
				masked[i] = 0
			}
		}
		gt := make([]bool, n)
		var t siTarget
		for i := range gt {
			gt[i] = s.g[i] && inBox(c, i)
			if gt[i] {
				t.fg++
			}
		}
		t.bg = n - t.fg
		t.tp, t.fp = thresholdCounts(masked, gt)
		thr := adaptiveThreshold(masked)
		t.adp = countsOf(gt, func(i int) bool { return masked[i] >= thr })
		t.bin = countsOf(gt, func(i int) bool { return masked[i] > 0.5 })
		e.targets = append(e.targets, t)
	}

	// si_mae: the background outside every box, weighted by its area relative to the boxes'
	// complement, plus each box's own mean error, normalised by (targets + that ratio).
	outside := make([]bool, n)
	bgArea := int64(0)
	for i := range outside {
		outside[i] = true
		for _, c := range targets {
			if inBox(c, i) {
				outside[i] = false
				break
			}
		}
		if outside[i] {
			bgArea++
		}
	}
	ratio := float64(bgArea) / float64(n-bgArea)
	factor := 1 / (float64(len(targets)) + ratio)
	absErr := func(keep func(i int) bool) float64 {
		d := make([]float64, n)
		for i, v := range s.p {
			if keep(i) {
				d[i] = abs(v - b2f(s.g[i]))
			}
		}
		return pairwiseSum(d)
	}
	mae := 0.0
	if bgArea > 0 {
		// PySODMetrics divides by the background area; with boxes covering the whole image that
		// is 0/0 = NaN in numpy — here the term is simply absent.
		mae = ratio * absErr(func(i int) bool { return outside[i] }) / float64(bgArea) * factor
	}
	for _, c := range targets {
		area := int64((c.y1 - c.y0 + 1) * (c.x1 - c.x0 + 1))
		mae += float64(absErr(func(i int) bool { return inBox(c, i) }) / float64(area) * factor)
	}
	e.siMAE = mae
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// aggregateExtras reduces the optional families as examples/test_metrics.py does.
func aggregateExtras(recs []*pysodExtra, vals map[string]float64, curves map[string][]float64) {
	n := len(recs)
	ms := make([]float64, 257)
	col := make([]float64, n)
	for t := range ms {
		for i, r := range recs {
			col[i] = r.msCurve[t]
		}
		ms[t] = meanOf(col)
	}
	curves["msiou"] = ms
	vals["meanmsiou"], vals["maxmsiou"] = meanOf(ms), maxOf(ms)
	for i, r := range recs {
		col[i] = r.msAdp
	}
	vals["adpmsiou"] = meanOf(col)
	for i, r := range recs {
		col[i] = r.msBin
	}
	vals["sample_bimsiou"] = meanOf(col)

	for i, r := range recs {
		col[i] = r.siMAE
	}
	vals["si_mae"] = meanOf(col)

	var all []*siTarget
	for _, r := range recs {
		for k := range r.targets {
			all = append(all, &r.targets[k])
		}
	}
	var pooled conf
	for _, t := range all {
		pooled = pooled.add(t.bin)
	}
	// perImage averages f over each image's targets, then over images.
	perImage := func(f func(t *siTarget) float64) float64 {
		for i, r := range recs {
			v := make([]float64, len(r.targets))
			for k := range r.targets {
				v[k] = f(&r.targets[k])
			}
			col[i] = meanOf(v)
		}
		return meanOf(col)
	}
	tcurve := func(t *siTarget, m string) []float64 {
		c := make([]float64, 256)
		for i := range c {
			c[i] = sodMetric(m, t.dyn(i))
		}
		return c
	}
	for _, m := range sodNames {
		oc := make([]float64, 256)
		v := make([]float64, len(all))
		for i := range oc {
			for k, t := range all {
				v[k] = sodMetric(m, t.dyn(i))
			}
			oc[i] = meanOf(v)
		}
		curves["si_overall_"+m] = oc
		vals["si_overall_mean"+m], vals["si_overall_max"+m] = meanOf(oc), maxOf(oc)
		vals["si_overall_bi"+m] = sodMetric(m, pooled)
		vals["si_sample_mean"+m] = perImage(func(t *siTarget) float64 { return meanOf(tcurve(t, m)) })
		vals["si_sample_max"+m] = perImage(func(t *siTarget) float64 { return maxOf(tcurve(t, m)) })
		vals["si_sample_adp"+m] = perImage(func(t *siTarget) float64 { return sodMetric(m, t.adp) })
		vals["si_sample_bi"+m] = perImage(func(t *siTarget) float64 { return sodMetric(m, t.bin) })
	}
	vals["si_overall_auc_pr"] = curveAUC(curves["si_overall_pre"], curves["si_overall_rec"])
	vals["si_overall_auc_roc"] = curveAUC(curves["si_overall_rec"], curves["si_overall_fpr"])
	vals["si_sample_auc_pr"] = perImage(func(t *siTarget) float64 { return curveAUC(tcurve(t, "pre"), tcurve(t, "rec")) })
	vals["si_sample_auc_roc"] = perImage(func(t *siTarget) float64 { return curveAUC(tcurve(t, "rec"), tcurve(t, "fpr")) })
}

// stableSortBy orders idx by key[idx] ascending, keeping equal keys in their order.
func stableSortBy(idx []int, key []float64) {
	sort.SliceStable(idx, func(a, b int) bool { return key[idx[a]] < key[idx[b]] })
}
