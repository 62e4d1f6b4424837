package data

import (
	"fmt"
	"math"
)

// Affine is a 2×3 matrix [m0 m1 m2; m3 m4 m5] mapping source (x, y) to destination
// (m0·x + m1·y + m2, m3·x + m4·y + m5), OpenCV's convention for warpAffine.
type Affine [6]float64

// degToRad is computed at run time, like C's CV_PI/180, so it is the float64 quotient of the
// rounded π (a Go constant expression would be rounded once from the exact value instead).
var pi = math.Pi
var degToRad = pi / 180

// RotationMatrix is cv::getRotationMatrix2D: rotate by angle degrees (positive =
// counter-clockwise on screen, since y points down) about (cx, cy), then scale.
// The reference code passes centre (rows·0.5, cols·0.5); for square images that is the centre.
func RotationMatrix(cx, cy, angle, scale float64) Affine {
	a := angle * degToRad
	alpha := math.Cos(a) * scale
	beta := math.Sin(a) * scale
	return Affine{
		alpha, beta, mul64(1-alpha, cx) - mul64(beta, cy),
		-beta, alpha, mul64(beta, cx) + mul64(1-alpha, cy),
	}
}

// invert is the inversion inside cv::warpAffine (without WARP_INVERSE_MAP), same operation order.
func (m Affine) invert() Affine {
	d := mul64(m[0], m[4]) - mul64(m[1], m[3])
	if d != 0 {
		d = 1 / d
	}
	a11, a22 := m[4]*d, m[0]*d
	m[0] = a11
	m[1] *= -d
	m[3] *= -d
	m[4] = a22
	b1 := mul64(-m[0], m[2]) - mul64(m[1], m[5])
	b2 := mul64(-m[3], m[2]) - mul64(m[4], m[5])
	m[2], m[5] = b1, b2
	return m
}

// OpenCV's warp constants: source positions are quantised to 1/32 pixel (INTER_BITS = 5) from
// 10-bit fixed-point coordinates (AB_BITS), and bilinear weights come from a 32×32 table.
const (
	interBits  = 5
	interTab   = 1 << interBits
	abBits     = 10
	abScale    = 1 << abBits
	roundDelta = abScale / interTab / 2
)

// warpWeights[ay][ax] are the float bilinear weights of initInterTab2D(INTER_LINEAR, false):
// products of the 1-D coefficients (1 − t, t) with t = k/32, each rounded to float32.
var warpWeights = func() (t [interTab][interTab][4]float32) {
	for i := 0; i < interTab; i++ {
		ty := float32(i) * (1 / float32(interTab))
		cy := [2]float32{1 - ty, ty}
		for j := 0; j < interTab; j++ {
			tx := float32(j) * (1 / float32(interTab))
			cx := [2]float32{1 - tx, tx}
			for k1 := 0; k1 < 2; k1++ {
				for k2 := 0; k2 < 2; k2++ {
					t[i][j][k1*2+k2] = cy[k1] * cx[k2]
				}
			}
		}
	}
	return t
}()

// cvRound is saturate_cast<int>(double): round half to even.
func cvRound(v float64) int { return int(math.RoundToEven(v)) }

// WarpAffine is cv::warpAffine(src, M, (dw, dh)) with INTER_LINEAR and BORDER_CONSTANT = border,
// on a planar float32 image of c channels. Each destination pixel is mapped back through M⁻¹
// in OpenCV's fixed point (positions rounded to 1/32 px), then blended from the 2×2 source
// neighbourhood with table weights; neighbours outside the source read as border, and a pixel
// whose whole neighbourhood is outside is border. dst must hold c·dw·dh values.
//
// Newer OpenCV adds float-coordinate warpAffine kernels without the 1/32 quantisation
// (opencv/opencv#25984, 2024); this follows the fixed-point path of the OpenCV 4.x the 2023
// reference code ran on (fixtures made with OpenCV 4.6).
func WarpAffine(dst []float32, dw, dh int, src []float32, sw, sh, c int, m Affine, border float32) error {
	if sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || c <= 0 {
		return fmt.Errorf("data: warpAffine %dx%d → %dx%d with %d channels: sizes must be positive", sw, sh, dw, dh, c)
	}
	if len(src) < c*sw*sh || len(dst) < c*dw*dh {
		return fmt.Errorf("data: warpAffine %dx%d → %dx%d ×%d: buffers hold %d and %d values", sw, sh, dw, dh, c, len(src), len(dst))
	}
	var wm warpMap
	wm.build(dw, dh, sw, sh, m)
	wm.apply(dst, src, c, border)
	return nil
}

// Where a destination pixel's 2×2 source neighbourhood lies.
const (
	warpInside  = iota // all four neighbours inside the source
	warpOutside        // all outside: the pixel is the border value
	warpEdge           // some inside, some border
)

// warpMap is the per-pixel source position and weight-table entry of one warp, computed once
// and applied to every plane (image channels and mask share it).
type warpMap struct {
	dw, dh, sw, sh int
	sx, sy         []int32
	tab            []uint16 // (Y mod 32)·32 + (X mod 32)
	kind           []uint8
}

func (wm *warpMap) build(dw, dh, sw, sh int, m Affine) {
	n := dw * dh
	if cap(wm.sx) < n {
		wm.sx, wm.sy, wm.tab, wm.kind = make([]int32, n), make([]int32, n), make([]uint16, n), make([]uint8, n)
	}
	wm.dw, wm.dh, wm.sw, wm.sh = dw, dh, sw, sh
	wm.sx, wm.sy, wm.tab, wm.kind = wm.sx[:n], wm.sy[:n], wm.tab[:n], wm.kind[:n]
	im := m.invert()
	adelta := make([]int, dw)
	bdelta := make([]int, dw)
	for x := range adelta {
		adelta[x] = cvRound(im[0] * float64(x) * abScale)
		bdelta[x] = cvRound(im[3] * float64(x) * abScale)
	}
	for y := 0; y < dh; y++ {
		fy := float64(y)
		x0 := cvRound((mul64(im[1], fy)+im[2])*abScale) + roundDelta
		y0 := cvRound((mul64(im[4], fy)+im[5])*abScale) + roundDelta
		for x := 0; x < dw; x++ {
			// Arithmetic shifts floor negative positions, as OpenCV's >> on int does.
			X := (x0 + adelta[x]) >> (abBits - interBits)
			Y := (y0 + bdelta[x]) >> (abBits - interBits)
			sx, sy := X>>interBits, Y>>interBits
			o := y*dw + x
			wm.sx[o], wm.sy[o] = int32(sx), int32(sy)
			wm.tab[o] = uint16((Y&(interTab-1))*interTab + X&(interTab-1))
			switch {
			case sx >= 0 && sx < sw-1 && sy >= 0 && sy < sh-1:
				wm.kind[o] = warpInside
			case sx >= sw || sx+1 < 0 || sy >= sh || sy+1 < 0:
				wm.kind[o] = warpOutside
			default:
				wm.kind[o] = warpEdge
			}
		}
	}
}

// apply warps c planes of src into dst: v0·w0 + v1·w1 + v2·w2 + v3·w3, summed left to right in
// float32 as OpenCV's remapBilinear does.
func (wm *warpMap) apply(dst, src []float32, c int, border float32) {
	sw, sh, n := wm.sw, wm.sh, wm.dw*wm.dh
	for ch := 0; ch < c; ch++ {
		plane := src[ch*sw*sh : (ch+1)*sw*sh]
		out := dst[ch*n : (ch+1)*n]
		at := func(px, py int) float32 {
			if px >= 0 && px < sw && py >= 0 && py < sh {
				return plane[py*sw+px]
			}
			return border
		}
		for o, k := range wm.kind[:n] {
			w := &warpWeights[wm.tab[o]>>interBits][wm.tab[o]&(interTab-1)]
			sx, sy := int(wm.sx[o]), int(wm.sy[o])
			var v0, v1, v2, v3 float32
			switch k {
			case warpInside:
				i := sy*sw + sx
				v0, v1, v2, v3 = plane[i], plane[i+1], plane[i+sw], plane[i+sw+1]
			case warpOutside:
				out[o] = border
				continue
			default:
				v0, v1, v2, v3 = at(sx, sy), at(sx+1, sy), at(sx, sy+1), at(sx+1, sy+1)
			}
			out[o] = mul32(v0, w[0]) + mul32(v1, w[1]) + mul32(v2, w[2]) + mul32(v3, w[3])
		}
	}
}
