package data

import (
	"fmt"
	"math"
)

// Planar float32 images: channel c, row y, column x lives at [(c·H + y)·W + x].
//
// The arithmetic below reproduces OpenCV 4.x cv::resize(INTER_LINEAR) on CV_32F data operation
// for operation (resizeGeneric_ with HResizeLinear/VResizeLinear), so results match cv2 bit for
// bit (testdata/cv2_fixtures.json; gen_cv2_fixtures.py). Products are converted to float32
// explicitly wherever an add follows: the Go spec lets the compiler fuse x*y+z into an FMA
// unless the product is explicitly rounded, and OpenCV's baseline x86 build does not fuse.

// mul32 rounds a product to float32 so it can never be fused with a following add.
func mul32(a, b float32) float32 { return float32(a * b) }

// mul64 rounds a float64 product, for the same reason.
func mul64(a, b float64) float64 { return float64(a * b) }

// linTap is one output column's (or row's) source index and weights.
type linTap struct {
	i      int     // first source index
	w0, w1 float32 // weights of i and i+1
	single bool    // OpenCV's "past xmax" case: out = S[i]·1, the second tap is not read
}

// linearTaps computes OpenCV's INTER_LINEAR coefficients for one axis. scale is the double
// 1/(dst/src), exactly as cv::resize computes it (not src/dst, which can differ in the last bit).
// horizontal selects cv::resize's column rule (indices and weights clamped at both edges); rows
// are not clamped there: the vertical pass clips the row indices and keeps both weights.
func linearTaps(dn, sn int, scale float64, horizontal bool) []linTap {
	taps := make([]linTap, dn)
	for d := range taps {
		f := float32(mul64(float64(d)+0.5, scale) - 0.5)
		s := int(math.Floor(float64(f)))
		f -= float32(s)
		t := linTap{i: s}
		if horizontal {
			// In this order, as OpenCV: the right-edge test sees the left-clamped index.
			if t.i < 0 {
				f, t.i = 0, 0
			}
			if t.i+1 >= sn {
				t.single = true
				if t.i >= sn-1 {
					f, t.i = 0, sn-1
				}
			}
		}
		t.w0, t.w1 = 1-f, f
		taps[d] = t
	}
	return taps
}

func clip(i, n int) int { return min(max(i, 0), n-1) }

// Resize resizes a planar float32 image (c channels, sw×sh) to dw×dh with OpenCV INTER_LINEAR
// semantics: pixel centres at +0.5 (align_corners=False), no antialiasing when shrinking,
// border replicated. As in OpenCV, an exact 2× shrink in both axes is a 2×2 box average
// (INTER_LINEAR is switched to INTER_AREA there). dst must hold c·dw·dh values.
//
// OpenCV's fixed-point arithmetic applies only to 8-bit inputs; CHNet resizes float images, so
// this is the float path. (One known gap: for 1-channel data OpenCV's SIMD 2×2 average sums
// (a+b)+(c+d) instead of ((a+b)+c)+d, which can differ in the last bit.)
func Resize(dst []float32, dw, dh int, src []float32, sw, sh, c int) error {
	if sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || c <= 0 {
		return fmt.Errorf("data: resize %dx%d → %dx%d with %d channels: sizes must be positive", sw, sh, dw, dh, c)
	}
	if len(src) < c*sw*sh || len(dst) < c*dw*dh {
		return fmt.Errorf("data: resize %dx%d → %dx%d ×%d: buffers hold %d and %d values", sw, sh, dw, dh, c, len(src), len(dst))
	}
	if dw == sw && dh == sh {
		// cv::resize copies when the size is unchanged.
		copy(dst[:c*dw*dh], src[:c*sw*sh])
		return nil
	}
	invX, invY := float64(dw)/float64(sw), float64(dh)/float64(sh)
	scaleX, scaleY := 1/invX, 1/invY
	isx, isy := math.RoundToEven(scaleX), math.RoundToEven(scaleY)
	if isx == 2 && isy == 2 && math.Abs(scaleX-isx) < 0x1p-52 && math.Abs(scaleY-isy) < 0x1p-52 {
		resizeArea2(dst, dw, dh, src, sw, sh, c)
		return nil
	}
	xt := linearTaps(dw, sw, scaleX, true)
	yt := linearTaps(dh, sh, scaleY, false)
	// Horizontal pass of the two source rows a destination row needs, then the vertical blend.
	h0 := make([]float32, dw)
	h1 := make([]float32, dw)
	hrow := func(out []float32, row []float32) {
		for d, t := range xt {
			if t.single {
				out[d] = row[t.i]
				continue
			}
			out[d] = mul32(row[t.i], t.w0) + mul32(row[t.i+1], t.w1)
		}
	}
	for ch := 0; ch < c; ch++ {
		plane := src[ch*sw*sh : (ch+1)*sw*sh]
		out := dst[ch*dw*dh : (ch+1)*dw*dh]
		r0, r1 := -1, -1 // source rows currently in h0, h1
		for dy, t := range yt {
			s0, s1 := clip(t.i, sh), clip(t.i+1, sh)
			// Reuse rows already filtered, as OpenCV's ring of rows does (same values either way).
			switch {
			case s0 == r0:
			case s0 == r1:
				h0, h1, r0, r1 = h1, h0, r1, r0
			default:
				hrow(h0, plane[s0*sw:(s0+1)*sw])
				r0 = s0
			}
			if s1 != r1 {
				if s1 == r0 {
					copy(h1, h0)
				} else {
					hrow(h1, plane[s1*sw:(s1+1)*sw])
				}
				r1 = s1
			}
			o := out[dy*dw : (dy+1)*dw]
			for x := range o {
				o[x] = mul32(h0[x], t.w0) + mul32(h1[x], t.w1)
			}
		}
	}
	return nil
}

// resizeArea2 is OpenCV's resizeAreaFast_ for a 2×2 box on float data (scalar order, which is
// the one cv2 takes for 3-channel images).
func resizeArea2(dst []float32, dw, dh int, src []float32, sw, sh, c int) {
	for ch := 0; ch < c; ch++ {
		plane := src[ch*sw*sh:]
		out := dst[ch*dw*dh:]
		for y := 0; y < dh; y++ {
			r0 := plane[2*y*sw:]
			r1 := plane[(2*y+1)*sw:]
			for x := 0; x < dw; x++ {
				s := r0[2*x] + r0[2*x+1] + r1[2*x] + r1[2*x+1]
				out[y*dw+x] = s * 0.25
			}
		}
	}
}
