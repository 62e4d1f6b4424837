package metrics

import "math"

// nearestForeground is the exact Euclidean feature transform of a binary mask: for every pixel,
// the flat index of the nearest foreground (fg[i] true) pixel (fgDist gives the distance). It is
// scipy.ndimage.distance_transform_edt(fg == 0, return_indices=True) — which PySODMetrics and
// CHNet's eval.py call as bwdist — including scipy's choice among equidistant pixels, because
// wFm copies the error of "the" nearest foreground pixel and a different choice changes the
// score.
//
// scipy's algorithm (Maurer, Qi & Raghavan, PAMI 2003) runs in two 1-D passes, O(N) overall:
//  1. down every column, each pixel takes the nearest foreground pixel of its column (ties: the
//     upper one);
//  2. along every row, the column candidates (x, r(x)) define parabolas (u−x)² + (y−r(x))²; a
//     stack keeps those on the lower envelope, dropping the top one unless
//     c·vR − b·uR − a·wR − a·b·c ≤ 0 (a, b: column gaps of the last two and the new one, c = a+b,
//     uR, vR, wR: their squared row offsets); each pixel then walks the stack forward only while
//     the next candidate is strictly closer, so ties keep the leftmost.
//
// Integer arithmetic reproduces scipy's doubles exactly (all values are integers < 2^53).
// The mask must contain at least one foreground pixel.
func nearestForeground(fg []bool, w, h int) (idx []int32) {
	n := w * h
	row := make([]int32, n) // pass 1 result: row of the nearest foreground pixel in the column, −1 if none
	for x := 0; x < w; x++ {
		// Each pixel's nearest foreground pixel in its column: scan the sites top-down.
		prev := int32(-1) // last site above (or at) y
		for y := 0; y < h; y++ {
			if fg[y*w+x] {
				prev = int32(y)
			}
			row[y*w+x] = prev
		}
		next := int32(-1) // first site below (or at) y
		for y := h - 1; y >= 0; y-- {
			if fg[y*w+x] {
				next = int32(y)
			}
			up := row[y*w+x]
			switch {
			case up < 0:
				row[y*w+x] = next
			case next >= 0 && int32(y)-up > next-int32(y):
				// Strictly closer below; an equal distance keeps the upper site, as scipy does.
				row[y*w+x] = next
			}
		}
	}

	idx = make([]int32, n)
	g := make([]int32, w) // stack of candidate columns on the lower envelope
	for y := 0; y < h; y++ {
		r := row[y*w : (y+1)*w]
		l := -1
		yy := int64(y)
		for x := 0; x < w; x++ {
			if r[x] < 0 {
				continue
			}
			fd := int64(x)
			dw := int64(r[x]) - yy
			wR := dw * dw
			for l >= 1 {
				i1, i2 := int64(g[l]), int64(g[l-1])
				a := i1 - i2
				b := fd - i1
				c := a + b
				du := int64(r[i2]) - yy
				dv := int64(r[i1]) - yy
				uR, vR := du*du, dv*dv
				if c*vR-b*uR-a*wR-a*b*c <= 0 {
					break
				}
				l--
			}
			l++
			g[l] = int32(x)
		}
		maxl := l
		if maxl < 0 {
			continue // cannot happen when the mask has a foreground pixel
		}
		l = 0
		for x := 0; x < w; x++ {
			sq := func(k int) int64 {
				c := int64(g[k])
				dr := int64(r[c]) - yy
				dc := c - int64(x)
				return dr*dr + dc*dc
			}
			d1 := sq(l)
			for l < maxl {
				d2 := sq(l + 1)
				if d1 <= d2 {
					break
				}
				d1 = d2
				l++
			}
			c := int(g[l])
			fr := int(r[c])
			idx[y*w+x] = int32(fr*w + c)
		}
	}
	return idx
}

// fgDist is the Euclidean distance from pixel i to pixel j (flat indices in a w-wide image),
// computed as scipy does from the feature indices: sqrt(dy² + dx²).
func fgDist(i, j, w int) float64 {
	dy := float64(j/w - i/w)
	dx := float64(j%w - i%w)
	return math.Sqrt(float64(dy*dy) + float64(dx*dx))
}
