package metrics

import "math"

// gauss7 is the 1-D factor of MATLAB's fspecial('gaussian', 7, 5), normalised to sum 1. The 2-D
// kernel exp(−(x²+y²)/2σ²)/Σ is the outer product of this vector with itself, so filtering with
// it separably (two 7-tap passes instead of one 49-tap pass) gives the same result up to
// rounding. No tap falls under fspecial's eps·max cut-off at σ = 5.
var gauss7 = func() [7]float64 {
	var k [7]float64
	s := 0.0
	for i := range k {
		d := float64(i - 3)
		k[i] = math.Exp(-d * d / (2 * 5 * 5))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	return k
}()

// gaussFilter7 filters src (w×h) with the normalised 7×7, σ = 5 Gaussian, treating pixels outside
// the image as 0 — scipy.ndimage.convolve(mode='constant', cval=0) and MATLAB imfilter's default
// — writing the result to dst. tmp is scratch of the same size. The kernel is symmetric, so
// convolution and correlation coincide.
func gaussFilter7(dst, src, tmp []float64, w, h int) {
	k := gauss7
	for y := 0; y < h; y++ {
		s := src[y*w : (y+1)*w]
		t := tmp[y*w : (y+1)*w]
		for x := 0; x < w; x++ {
			acc := 0.0
			for j := -3; j <= 3; j++ {
				if xx := x + j; xx >= 0 && xx < w {
					acc += float64(k[j+3] * s[xx])
				}
			}
			t[x] = acc
		}
	}
	for y := 0; y < h; y++ {
		d := dst[y*w : (y+1)*w]
		for x := range d {
			d[x] = 0
		}
		for j := -3; j <= 3; j++ {
			yy := y + j
			if yy < 0 || yy >= h {
				continue
			}
			kj := k[j+3]
			t := tmp[yy*w : (yy+1)*w]
			for x := range d {
				d[x] += float64(kj * t[x])
			}
		}
	}
}
