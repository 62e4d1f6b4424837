package metrics

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNormalise(t *testing.T) {
	for _, c := range []struct {
		conv Convention
		in   []uint8
		want []float64
	}{
		{PySOD, []uint8{0, 51, 255}, []float64{0, 0.2, 1}},
		{PySOD, []uint8{100, 100}, []float64{100.0 / 255, 100.0 / 255}}, // constant: only /255
		{MATLAB, []uint8{0, 51, 255}, []float64{0, 0.2, 1}},
		{MATLAB, []uint8{100, 100}, []float64{100.0 / 255, 100.0 / 255}}, // mapminmax passes constant rows
		{CHNet, []uint8{10, 20, 30}, []float64{0, 0.5, 1}},
		{CHNet, []uint8{100, 100}, []float64{100.0 / 255, 100.0 / 255}},
	} {
		if g := normalise8(c.in, c.conv); !slices.Equal(g, c.want) {
			t.Errorf("%s %v: %v, want %v", c.conv, c.in, g, c.want)
		}
	}
	// A float map is the map after /255: min-max still applies.
	p, err := normaliseFloat("f", []float32{0.25, 0.5, 0.75}, PySOD)
	if err != nil || !slices.Equal(p, []float64{0, 0.5, 1}) {
		t.Errorf("float: %v %v", p, err)
	}
}

// TestMSIoUSweepMatchesFullRecount: the incremental threshold sweep gives, at every threshold,
// the score of a from-scratch recount of that threshold's mask.
func TestMSIoUSweepMatchesFullRecount(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for trial := 0; trial < 6; trial++ {
		w, h := 10+rng.IntN(50), 10+rng.IntN(50)
		pred, gt := randomPair(rng, w, h)
		s := &sample{w: w, h: h, p: normalise8(pred, PySOD), g: binariseGT(gt, PySOD)}
		e := &pysodExtra{}
		e.msiou(s)
		st := newMSState(s.g, w, h)
		mask := make([]bool, w*h)
		for th := 0; th <= 256; th++ {
			for i, v := range s.p {
				mask[i] = int(uint8(v*255)) >= th
			}
			st.reset(mask)
			if got, want := e.msCurve[th], st.score(); got != want {
				t.Fatalf("%dx%d threshold %d: sweep %v, recount %v", w, h, th, got, want)
			}
		}
	}
}

// TestComponentsAndTargets: 4-connected components numbered in raster order of their first
// pixel, with parse_connected_components' rules: areas ≥ 50 are targets; with none, every
// component of the largest area is.
func TestComponentsAndTargets(t *testing.T) {
	// Two diagonal pixels are two components under 4-connectivity.
	g := maskOf(4, 3, [][2]int{{0, 0}, {1, 1}, {2, 3}, {1, 3}})
	cs := components(g, 4, 3)
	if len(cs) != 3 || cs[0].area != 1 || cs[1].area != 1 || cs[2].area != 2 || cs[2].y0 != 1 || cs[2].y1 != 2 || cs[2].x0 != 3 {
		t.Fatalf("components %+v", cs)
	}
	if v := validTargets(cs); len(v) != 1 || v[0].area != 2 {
		t.Fatalf("small components: the largest should be the target: %+v", v)
	}
	tie := []component{{area: 3}, {area: 5}, {area: 5}, {area: 2}}
	if v := validTargets(tie); len(v) != 2 || v[0].area != 5 || v[1].area != 5 {
		t.Fatalf("tied largest: %+v", v)
	}
	big := []component{{area: 49}, {area: 50}, {area: 700}, {area: 10}}
	if v := validTargets(big); len(v) != 2 || v[0].area != 50 || v[1].area != 700 {
		t.Fatalf("area ≥ 50: %+v", v)
	}
}
