package metrics

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if d := math.Abs(got - want); !(d <= tol) {
		t.Errorf("%s = %.17g, want %.17g (|Δ| = %.3g)", what, got, want, d)
	}
}

// pixelEm is Enhancedmeasure.m evaluated pixel by pixel (the form the toolboxes write down),
// for checking the closed form.
func pixelEm(fm, gt []bool, eps float64) float64 {
	n := float64(len(gt))
	var sf, sg float64
	for i := range gt {
		sf += b2f(fm[i])
		sg += b2f(gt[i])
	}
	s := 0.0
	for i := range gt {
		switch {
		case sg == 0:
			s += 1 - b2f(fm[i])
		case sg == n:
			s += b2f(fm[i])
		default:
			a, b := b2f(fm[i])-sf/n, b2f(gt[i])-sg/n
			phi := 2 * a * b / (a*a + b*b + eps)
			s += (phi + 1) * (phi + 1) / 4
		}
	}
	return s / (n - 1 + eps)
}

func TestEmClosedFormMatchesPixelForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(60)
		fm, gt := make([]bool, n), make([]bool, n)
		pf, pg := rng.Float64(), []float64{0, 1, rng.Float64()}[trial%3]
		var tp, fp, fg int64
		for i := range gt {
			fm[i], gt[i] = rng.Float64() < pf, rng.Float64() < pg
			if gt[i] {
				fg++
				if fm[i] {
					tp++
				}
			} else if fm[i] {
				fp++
			}
		}
		for _, eps := range []float64{epsNumpy, 1e-8} {
			if n == 1 && eps == epsNumpy {
				continue // N − 1 + eps = eps: both forms divide by ~0
			}
			got := emFromCounts(tp, fp, fg, int64(n), eps)
			want := pixelEm(fm, gt, eps)
			if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
				t.Fatalf("n=%d tp=%d fp=%d fg=%d eps=%g: closed form %v, pixel form %v", n, tp, fp, fg, eps, got, want)
			}
		}
	}
}

// TestMATLABHandComputed: two 4×4 maps whose per-threshold counts were worked out by hand. A
// pixel of value v passes t_k = 1 − k/255 iff k ≥ ⌈255(1−v)⌉; no value here is near a tie.
//
//	image 1: mask = top-left 2×2; prediction 1, 1, 0.9, 0.3 on it, 0.55 on one background
//	pixel, 0 elsewhere. Passing from k = 0, 0, 26, 179 (foreground) and 115, 255 (background):
//	  k 0–25:    TP 2 FP 0  → Dice 4/6, IoU 2/4, Pre 1,   Sen 1/2, Spe 1
//	  k 26–114:  TP 3 FP 0  → Dice 6/7, IoU 3/4, Pre 1,   Sen 3/4, Spe 1
//	  k 115–178: TP 3 FP 1  → Dice 6/8, IoU 3/5, Pre 3/4, Sen 3/4, Spe 11/12
//	  k 179–254: TP 4 FP 1  → Dice 8/9, IoU 4/5, Pre 4/5, Sen 1,   Spe 11/12
//	  k 255:     TP 4 FP 12 → Dice 8/20, IoU 4/16, Pre 4/16, Sen 1, Spe 0
//	image 2: mask = bottom-right pixel, predicted 0.3; one background pixel at 1.
//	  k 0–178:   TP 0       → everything 0, specificity included (Fmeasure_calu.m)
//	  k 179–254: TP 1 FP 1  → Dice 2/3, IoU 1/2, Pre 1/2, Sen 1, Spe 14/15
//	  k 255:     TP 1 FP 15 → Dice 2/17, IoU 1/16, Pre 1/16, Sen 1, Spe 0
func TestMATLABHandComputed(t *testing.T) {
	gt1 := make([]uint8, 16)
	for _, i := range []int{0, 1, 4, 5} {
		gt1[i] = 255
	}
	p1 := make([]float32, 16)
	p1[0], p1[1], p1[4], p1[5], p1[2] = 1, 1, 0.9, 0.3, 0.55
	gt2 := make([]uint8, 16)
	gt2[15] = 255
	p2 := make([]float32, 16)
	p2[15], p2[0] = 0.3, 1

	type piece struct {
		from, to                 int // inclusive k range
		dice, iou, pre, sen, spe float64
	}
	img1 := []piece{
		{0, 25, 4.0 / 6, 2.0 / 4, 1, 1.0 / 2, 1},
		{26, 114, 6.0 / 7, 3.0 / 4, 1, 3.0 / 4, 1},
		{115, 178, 6.0 / 8, 3.0 / 5, 3.0 / 4, 3.0 / 4, 11.0 / 12},
		{179, 254, 8.0 / 9, 4.0 / 5, 4.0 / 5, 1, 11.0 / 12},
		{255, 255, 8.0 / 20, 4.0 / 16, 4.0 / 16, 1, 0},
	}
	img2 := []piece{
		{0, 178, 0, 0, 0, 0, 0},
		{179, 254, 2.0 / 3, 1.0 / 2, 1.0 / 2, 1, 14.0 / 15},
		{255, 255, 2.0 / 17, 1.0 / 16, 1.0 / 16, 1, 0},
	}
	at := func(ps []piece, k int) piece {
		for _, p := range ps {
			if k >= p.from && k <= p.to {
				return p
			}
		}
		panic("gap")
	}
	// Binary maps per threshold for the pixel-form E-measure.
	pass1 := map[int]int{0: 0, 1: 0, 4: 26, 5: 179, 2: 115}
	pass2 := map[int]int{15: 179, 0: 0}
	binAt := func(pass map[int]int, k int) []bool {
		b := make([]bool, 16)
		for i := range b {
			from, ok := pass[i]
			if !ok {
				from = 255 // zeros pass only t = 0
			}
			b[i] = k >= from
		}
		return b
	}
	g1, g2 := make([]bool, 16), make([]bool, 16)
	for i := range g1 {
		g1[i], g2[i] = gt1[i] > 128, gt2[i] > 128
	}

	ev, _ := New(MATLAB)
	if err := ev.AddFloat("a", p1, gt1, 4, 4); err != nil {
		t.Fatal(err)
	}
	if err := ev.AddFloat("b", p2, gt2, 4, 4); err != nil {
		t.Fatal(err)
	}
	r := ev.Result()
	for _, m := range []struct {
		curve string
		f     func(p piece) float64
	}{
		{"Dic", func(p piece) float64 { return p.dice }},
		{"IoU", func(p piece) float64 { return p.iou }},
		{"Pre", func(p piece) float64 { return p.pre }},
		{"Sen", func(p piece) float64 { return p.sen }},
		{"Spe", func(p piece) float64 { return p.spe }},
		{"Em", nil},
	} {
		want := make([]float64, 256)
		for k := range want {
			if m.f == nil {
				want[k] = (pixelEm(binAt(pass1, k), g1, epsNumpy) + pixelEm(binAt(pass2, k), g2, epsNumpy)) / 2
			} else {
				want[k] = (m.f(at(img1, k)) + m.f(at(img2, k))) / 2
			}
		}
		for k, w := range want {
			near(t, m.curve+"["+strconv.Itoa(k)+"]", r.Curves[m.curve][k], w, 1e-14)
		}
		mean, mx := 0.0, 0.0
		for _, w := range want {
			mean += w / 256
			mx = math.Max(mx, w)
		}
		near(t, "mean"+m.curve, r.Values["mean"+m.curve], mean, 1e-14)
		near(t, "max"+m.curve, r.Values["max"+m.curve], mx, 1e-14)
	}
	near(t, "maxDice", r.Values["maxDice"], 8.0/9/2+2.0/3/2, 1e-15)
	f32 := func(v float32) float64 { return float64(v) }
	mae1 := (1 - f32(0.9) + 1 - f32(0.3) + f32(0.55)) / 16
	mae2 := (1 - f32(0.3) + 1) / 16
	near(t, "MAE", r.Values["MAE"], (mae1+mae2)/2, 1e-15)
}

// TestMATLABThresholds: MATLAB's 1:-1/255:0 as MathWorks' colonop.m builds it.
func TestMATLABThresholds(t *testing.T) {
	th := matlabThresholds
	if th[0] != 1 || th[255] != 0 {
		t.Fatalf("ends %v %v", th[0], th[255])
	}
	for k := 1; k < 256; k++ {
		if !(th[k] < th[k-1]) {
			t.Fatalf("not decreasing at %d", k)
		}
		if d := math.Abs(th[k] - float64(255-k)/255); d > 1.2e-16 {
			t.Fatalf("t_%d off by %g", k, d)
		}
	}
	// 1 + 4·fl(−1/255) rounds one ulp above 251/255: an 8-bit value of 251 misses t_4 in MATLAB.
	if !(th[4] > 251.0/255) {
		t.Errorf("t_4 = %.17g, expected just above 251/255 = %.17g", th[4], 251.0/255)
	}
}

// TestCHNetHandComputed: a 2×2 case of eval.py worked out by hand. Mask top row; prediction
// 255, 128, 64, 0 → p = 1, 128/255, 64/255, 0 (min-max with min 0, max 255).
func TestCHNetHandComputed(t *testing.T) {
	ev, _ := New(CHNet)
	if err := ev.Add("x", []uint8{255, 128, 64, 0}, []uint8{255, 255, 0, 0}, 2, 2); err != nil {
		t.Fatal(err)
	}
	r := ev.Result().Values
	const s = 1e-5
	inter := 383.0 / 255 // Σ g·p = 1 + 128/255
	near(t, "M_dice", r["M_dice"], (2*inter+s)/(2+447.0/255+s), 1e-15)
	near(t, "M_iou", r["M_iou"], 1, 0) // 128/255 > 0.5: both foreground pixels kept
	near(t, "Precision", r["Precision"], (inter+s)/(447.0/255+s), 1e-15)
	near(t, "Recall", r["Recall"], (inter+s)/(2+s), 1e-15)             // inter + FN = 2
	near(t, "Specificity", r["Specificity"], (446.0/255)/(2+s), 1e-15) // TN + FP = 2
	near(t, "Ber", r["Ber"], 0, 0)
	near(t, "Acc", r["Acc"], 1, 0)
	near(t, "MAE", r["MAE"], 191.0/1020, 1e-15)
	// Adaptive threshold 2·447/1020 ≈ 0.876 keeps only the first pixel.
	near(t, "Em", r["Em"], pixelEm([]bool{true, false, false, false}, []bool{true, true, false, false}, 1e-8), 1e-15)
	near(t, "avgF", r["avgF"], 1.3*1*0.5/(0.3*1+0.5), 1e-15)
	// maxF: best at q ≥ 128 … 65: TP 2, FP 0.
	p := 2 / (2 + 1e-8)
	near(t, "maxF", r["maxF"], 1.3*p*1/(0.3*p+1+1e-8), 1e-15)
}

// TestSMeasureHandComputed: 6×6, mask = rows 1–2 × cols 1–2, prediction = the mask plus the
// corner pixel (0,0). Centroid (1.5, 1.5) rounds to 2 in every toolbox, so the split is at 3:
// top-left 3×3 holds 5 predicted and 4 true pixels, the other quadrants are all zero (SSIM 1).
//
//	top-left sums: Σ(p−x̄)² = Σ(g−ȳ)² = 20/9, Σ(p−x̄)(g−ȳ) = 16/9, x̄ = 5/9, ȳ = 4/9
//	PySODMetrics/MATLAB (n−1 = 8 everywhere): SSIM = (160/729)/(205/729 + eps) ≈ 32/41
//	CHNet (variances over n = 9, covariance over 8): SSIM = (160/729)/(1640/6561 + 1e-8) ≈ 36/41
//	object: foreground all 1 → 2/(2+eps); background 1−p: 31 ones and a zero, mean 31/32,
//	std √(1/32) (ddof 1) or √31/32 (ddof 0).
func TestSMeasureHandComputed(t *testing.T) {
	w, h := 6, 6
	g := make([]bool, w*h)
	p := make([]float64, w*h)
	for _, i := range []int{7, 8, 13, 14} {
		g[i], p[i] = true, 1
	}
	p[0] = 1
	y := 4.0 / 36
	m := 31.0 / 32
	obj := func(sd, eps float64) float64 {
		return y*(2/(2+eps)) + (1-y)*(2*m/(m*m+1+sd+eps))
	}
	// CHNet's eval.py holds the mask in float32 (ȳ = 4/9 rounded to float32 and so on), which
	// moves its scores by ~5e-11 from these exact-arithmetic values.
	tol := map[string]float64{"pysod": 1e-14, "matlab": 1e-14, "chnet": 1e-9}
	for _, c := range []struct {
		name string
		v    smVariant
		want float64
	}{
		{"pysod", smPySOD, 0.5*obj(math.Sqrt(1.0/32), epsNumpy) + 0.5*((160.0/729)/(205.0/729+epsNumpy)+3)/4},
		{"matlab", smMATLAB, 0.5*obj(math.Sqrt(1.0/32), epsNumpy) + 0.5*((160.0/729)/(205.0/729+epsNumpy)+3)/4},
		{"chnet", smCHNet, 0.5*obj(math.Sqrt(31)/32, 1e-8) + 0.5*((160.0/729)/(1640.0/6561+1e-8)+3)/4},
	} {
		near(t, c.name+" S", sMeasure(p, g, w, h, c.v), c.want, tol[c.name])
	}
	// CHNet's mixed n / n−1 normalisation lets a perfect prediction score above 1: with p = G,
	// the top-left SSIM is (160/729)/(1280/6561 + 1e-8) ≈ 9/8, the object terms 2/(2 + 1e-8).
	perfect := make([]float64, w*h)
	for i, b := range g {
		perfect[i] = b2f(b)
	}
	near(t, "chnet S(perfect)", sMeasure(perfect, g, w, h, smCHNet),
		0.5*(2/(2+1e-8))+0.5*((160.0/729)/(1280.0/6561+1e-8)+3)/4, 1e-9)
	// Move the block to rows 2–3: the row centroid 2.5 rounds to 2 (numpy) or, 1-based 3.5, to 4
	// (MATLAB), so the two splits and scores differ.
	g2 := make([]bool, w*h)
	for _, i := range []int{13, 14, 19, 20} {
		g2[i] = true
	}
	if a, b := sMeasure(p, g2, w, h, smPySOD), sMeasure(p, g2, w, h, smMATLAB); a == b {
		t.Errorf("a tied centroid should split differently in numpy and MATLAB: both %v", a)
	}
}

// TestWeightedFHandComputed: a single foreground pixel in the corner of a 20×20 mask. Every
// background pixel inherits that pixel's error E = 1 − p, so Et ≡ 1 when p = 0 there, and the
// zero-padded Gaussian at the corner is (Σ_{i=0..3} k_i)², k the normalised 7-tap exp(−i²/50).
// With a background pixel of 1 at distance 5, FPw = 1·(2 − exp(ln½/5·5)) = 1.5.
func TestWeightedFHandComputed(t *testing.T) {
	var k [7]float64
	sum := 0.0
	for i := range k {
		k[i] = math.Exp(-float64((i-3)*(i-3)) / 50)
		sum += k[i]
	}
	half := (k[3] + k[4] + k[5] + k[6]) / sum
	ea := half * half
	w, h := 20, 20
	gt := make([]uint8, w*h)
	gt[0] = 255
	for _, c := range []struct {
		name  string
		fp    float64 // weighted false positives
		setup func(p []uint8)
	}{
		{"no false positive", 0, func(p []uint8) {}},
		{"false positive at distance 5", 1.5, func(p []uint8) { p[5] = 255 }},
	} {
		pred := make([]uint8, w*h)
		c.setup(pred)
		r := 1 - ea // recall: the foreground error is min(E, EA) = EA
		tpw := 1 - ea
		for _, v := range []struct {
			conv Convention
			want float64
		}{
			{PySOD, func() float64 {
				p := tpw / (tpw + c.fp + epsNumpy)
				return 2 * r * p / (r + p + epsNumpy)
			}()},
			{MATLAB, func() float64 {
				p := tpw / (epsNumpy + tpw + c.fp)
				return 2 * (r * p) / (epsNumpy + r + p)
			}()},
			{CHNet, func() float64 {
				p := tpw / (1e-6 + tpw + c.fp)
				return 2 * r * p / (1e-6 + r + p)
			}()},
		} {
			ev, _ := New(v.conv)
			if err := ev.Add(c.name, pred, gt, w, h); err != nil {
				t.Fatal(err)
			}
			key := map[Convention]string{PySOD: "wFmeasure", MATLAB: "wFm", CHNet: "wfm"}[v.conv]
			near(t, string(v.conv)+" "+c.name, ev.Result().Values[key], v.want, 1e-14)
		}
	}
}

// TestPerfectPrediction: a prediction equal to the mask scores Dice 1, IoU 1, MAE 0, S 1, wFm 1
// and E-measure N/(N−1) (every pixel aligns; the toolboxes divide by N − 1) at the thresholds
// that separate the two levels, in every convention — up to each toolbox's eps. Not CHNet's S:
// its mixed n / n−1 SSIM normalisation exceeds 1 here (see TestSMeasureHandComputed).
func TestPerfectPrediction(t *testing.T) {
	w, h := 37, 23
	rng := rand.New(rand.NewPCG(7, 8))
	gt := make([]uint8, w*h)
	for y := 5; y < 17; y++ {
		for x := 9; x < 30; x++ {
			if rng.Float64() < 0.9 {
				gt[y*w+x] = 255
			}
		}
	}
	g := make([]bool, w*h)
	nfg := 0.0
	for i, v := range gt {
		g[i] = v > 0
		nfg += b2f(g[i])
	}
	n := float64(w * h)
	chnetP := nfg / (1e-6 + nfg) // wFm with eps 1e-6: R = 1, TPw = |G|, FPw = 0
	for _, c := range []struct {
		conv Convention
		want map[string]float64
	}{
		{PySOD, map[string]float64{"maxdice": 1, "maxiou": 1, "sample_bidice": 1, "MAE": 0, "Smeasure": 1, "wFmeasure": 1,
			"maxEm": n / (n - 1), "adpEm": n / (n - 1)}},
		{MATLAB, map[string]float64{"maxDic": 1, "maxIoU": 1, "MAE": 0, "Sm": 1, "wFm": 1, "maxEm": n / (n - 1)}},
		{CHNet, map[string]float64{"M_dice": 1, "M_iou": 1, "MAE": 0, "wfm": 2 * chnetP / (1e-6 + 1 + chnetP),
			"Em": pixelEm(g, g, 1e-8), "Ber": 0, "Acc": 1, "Precision": 1, "Recall": 1}},
	} {
		ev, _ := New(c.conv)
		if err := ev.Add("perfect", gt, gt, w, h); err != nil {
			t.Fatal(err)
		}
		r := ev.Result().Values
		for k, v := range c.want {
			near(t, string(c.conv)+" "+k, r[k], v, 1e-9)
		}
	}
}

// TestEmptyMaskSafeDivision: PySODMetrics' safe division makes every ratio with an empty
// denominator 0 — recall, Dice and IoU of an empty mask, precision of an empty prediction — and
// an empty mask scores wFm 0 and S = 1 − mean(p).
func TestEmptyMaskSafeDivision(t *testing.T) {
	w, h := 8, 8
	pred := make([]uint8, w*h)
	for i := range pred {
		pred[i] = uint8(i * 4)
	}
	ev, _ := New(PySOD)
	if err := ev.Add("empty", pred, make([]uint8, w*h), w, h); err != nil {
		t.Fatal(err)
	}
	r := ev.Result().Values
	for _, k := range []string{"maxrec", "maxdice", "maxiou", "sample_bidice", "overall_birec", "wFmeasure"} {
		near(t, k, r[k], 0, 0)
	}
	// p = v/252 after min-max, mean over 0..63 = 31.5·4/252 = 0.5.
	near(t, "Smeasure", r["Smeasure"], 0.5, 1e-15)
	// At the strictest threshold (q ≥ 255) only the brightest pixel, normalised to 1, is
	// predicted positive: specificity 63/64.
	near(t, "maxspec", r["maxspec"], 63.0/64, 0)
}

// TestKappaAsPySODMetricsWritesIt documents PySODMetrics' chance term (tn+fn)(tn+tp), which
// differs from Cohen's (tn+fn)(tn+fp); the golden values follow it.
func TestKappaAsPySODMetricsWritesIt(t *testing.T) {
	c := conf{tp: 30, fp: 10, tn: 50, fn: 10}
	n := 100.0
	oa := 80 / n
	pe := (40.0*40 + 60.0*80) / (n * n)
	near(t, "kappa", sodMetric("kappa", c), (oa-pe)/(1-pe), 1e-15)
	cohen := (40.0*40 + 60.0*60) / (n * n)
	if math.Abs(sodMetric("kappa", c)-(oa-cohen)/(1-cohen)) < 1e-3 {
		t.Error("kappa unexpectedly equals Cohen's")
	}
}
