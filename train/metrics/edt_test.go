package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func maskOf(w, h int, fg [][2]int) []bool {
	m := make([]bool, w*h)
	for _, p := range fg {
		m[p[0]*w+p[1]] = true
	}
	return m
}

// TestNearestForegroundTies checks the choice among equidistant foreground pixels against
// scipy.ndimage.distance_transform_edt(mask == 0, return_indices=True) (scipy 1.10.1); the
// expected flat indices were printed by scipy.
func TestNearestForegroundTies(t *testing.T) {
	for _, c := range []struct {
		name string
		w, h int
		fg   [][2]int // (row, col)
		want []int32
	}{
		{"corners and centre", 7, 7, [][2]int{{0, 0}, {0, 6}, {6, 0}, {6, 6}, {3, 3}}, []int32{
			0, 0, 0, 0, 6, 6, 6, 0, 0, 0, 24, 24, 6, 6, 0, 0, 24, 24, 24, 24, 6, 0, 24, 24, 24, 24, 24, 24,
			42, 42, 24, 24, 24, 24, 48, 42, 42, 42, 24, 24, 48, 48, 42, 42, 42, 42, 48, 48, 48}},
		{"diagonal pair", 6, 5, [][2]int{{0, 0}, {4, 5}}, []int32{
			0, 0, 0, 0, 0, 29, 0, 0, 0, 0, 29, 29, 0, 0, 0, 29, 29, 29, 0, 0, 29, 29, 29, 29, 0, 29, 29, 29, 29, 29}},
		{"ring", 5, 6, [][2]int{{1, 1}, {1, 3}, {4, 1}, {4, 3}, {2, 2}}, []int32{
			6, 6, 6, 8, 8, 6, 6, 6, 8, 8, 6, 6, 12, 12, 8, 21, 21, 12, 23, 23, 21, 21, 21, 23, 23, 21, 21, 21, 23, 23}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := nearestForeground(maskOf(c.w, c.h, c.fg), c.w, c.h)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

// TestNearestForegroundIsNearest compares distances with a brute-force search on random masks
// of several densities and shapes: whatever the tie-break, the chosen pixel must be foreground
// and at the minimum distance.
func TestNearestForegroundIsNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 60; trial++ {
		w, h := 1+rng.IntN(40), 1+rng.IntN(40)
		density := []float64{0.002, 0.02, 0.2, 0.7}[trial%4]
		m := make([]bool, w*h)
		for i := range m {
			m[i] = rng.Float64() < density
		}
		m[rng.IntN(w*h)] = true
		idx := nearestForeground(m, w, h)
		for i := range m {
			best := math.Inf(1)
			for j, f := range m {
				if f {
					best = math.Min(best, fgDist(i, j, w))
				}
			}
			j := int(idx[i])
			if !m[j] || fgDist(i, j, w) != best {
				t.Fatalf("%dx%d trial %d: pixel %d → %d (fg %v) at %v, nearest is at %v", w, h, trial, i, j, m[j], fgDist(i, j, w), best)
			}
		}
	}
}

// TestGaussFilterMatchesFspecial compares the separable filter with a direct 7×7 filtering by
// MATLAB's fspecial('gaussian', 7, 5) built from its definition (exp(−(x²+y²)/50), normalised),
// zero outside the image.
func TestGaussFilterMatchesFspecial(t *testing.T) {
	var k [7][7]float64
	s := 0.0
	for i := range k {
		for j := range k[i] {
			y, x := float64(i-3), float64(j-3)
			k[i][j] = math.Exp(-(x*x + y*y) / 50)
			s += k[i][j]
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{1, 1}, {5, 3}, {9, 13}, {32, 17}} {
		w, h := sz[0], sz[1]
		src := make([]float64, w*h)
		for i := range src {
			src[i] = rng.Float64()
		}
		dst := make([]float64, w*h)
		gaussFilter7(dst, src, make([]float64, w*h), w, h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				want := 0.0
				for i := -3; i <= 3; i++ {
					for j := -3; j <= 3; j++ {
						if yy, xx := y+i, x+j; yy >= 0 && yy < h && xx >= 0 && xx < w {
							want += k[i+3][j+3] / s * src[yy*w+xx]
						}
					}
				}
				if d := math.Abs(dst[y*w+x] - want); d > 1e-15 {
					t.Fatalf("%dx%d at (%d,%d): %v, direct %v", w, h, y, x, dst[y*w+x], want)
				}
			}
		}
	}
}
