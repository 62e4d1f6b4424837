package data

import (
	"slices"
	"testing"
)

func TestSynthesizeDeterministic(t *testing.T) {
	a, am, err := Synthesize(5, 3, 64, 48)
	if err != nil {
		t.Fatal(err)
	}
	b, bm, _ := Synthesize(5, 3, 64, 48)
	if !slices.Equal(a.Pix, b.Pix) || !slices.Equal(am.Pix, bm.Pix) {
		t.Fatal("same seed and index gave different samples")
	}
	c, _, _ := Synthesize(5, 4, 64, 48)
	d, _, _ := Synthesize(6, 3, 64, 48)
	if slices.Equal(a.Pix, c.Pix) || slices.Equal(a.Pix, d.Pix) {
		t.Fatal("other index or seed gave the same sample")
	}
	if _, _, err := Synthesize(1, 0, 4, 100); err == nil {
		t.Fatal("4-pixel-wide image accepted")
	}
}

// TestSynthesizeNotTrivial: polyps occupy a plausible area and are visible (mean colour
// differs), but no single colour threshold segments them — the generator needs shape cues.
func TestSynthesizeNotTrivial(t *testing.T) {
	const n, w, h = 24, 96, 80
	var fg, total int
	var inside, outside [3]float64
	var nin, nout float64
	type px struct {
		v  [3]uint8
		fg bool
	}
	var all []px
	for i := 0; i < n; i++ {
		img, m, err := Synthesize(1, i, w, h)
		if err != nil {
			t.Fatal(err)
		}
		f := 0
		for p, v := range m.Pix {
			f += int(v)
			c := [3]uint8{img.Pix[3*p], img.Pix[3*p+1], img.Pix[3*p+2]}
			all = append(all, px{c, v == 1})
			for k := 0; k < 3; k++ {
				if v == 1 {
					inside[k] += float64(c[k])
				} else {
					outside[k] += float64(c[k])
				}
			}
			if v == 1 {
				nin++
			} else {
				nout++
			}
		}
		if frac := float64(f) / float64(w*h); frac < 0.01 || frac > 0.5 {
			t.Errorf("sample %d: polyp area %.3f of the image", i, frac)
		}
		fg += f
		total += w * h
	}
	diff := 0.0
	for k := 0; k < 3; k++ {
		diff = max(diff, abs(inside[k]/nin-outside[k]/nout))
	}
	if diff < 3 {
		t.Errorf("polyps are invisible: mean colour differs by %.1f levels", diff)
	}
	// Best Dice of any threshold on any single channel (either direction), over all pixels.
	best := 0.0
	for k := 0; k < 3; k++ {
		var hfg, hbg [256]float64
		for _, p := range all {
			if p.fg {
				hfg[p.v[k]]++
			} else {
				hbg[p.v[k]]++
			}
		}
		for thr := 0; thr < 256; thr++ {
			var tpAbove, fpAbove float64
			for v := thr; v < 256; v++ {
				tpAbove += hfg[v]
				fpAbove += hbg[v]
			}
			tpBelow, fpBelow := nin-tpAbove, nout-fpAbove
			best = max(best, 2*tpAbove/(2*tpAbove+fpAbove+(nin-tpAbove)), 2*tpBelow/(2*tpBelow+fpBelow+(nin-tpBelow)))
		}
	}
	t.Logf("polyp fraction %.3f, mean colour gap %.1f, best single-channel threshold Dice %.3f", float64(fg)/float64(total), diff, best)
	if best > 0.7 {
		t.Errorf("a colour threshold reaches Dice %.3f: the task is trivial", best)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
