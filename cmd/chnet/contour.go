package main

import (
	"image"
	"image/color"
)

// Overlays draw region outlines, not tints (issue 11, point 8): a red tint by probability
// coloured the whole frame, background included, and red reads badly on red mucosa. The two
// colours read on endoscopy (red, pink) and on grey scans alike, and are the same in predict's
// overlays and in the report's panels.
var (
	gtColour   = color.RGBA{0, 230, 0, 255}    // ground truth: green
	predColour = color.RGBA{30, 144, 255, 255} // prediction: blue
)

// overlayLegend says what the outlines are, for reports and help.
const overlayLegend = "green outline: ground truth; blue outline: prediction (map ≥ 0.5)"

// contour marks the pixels of a region that lie within thick pixels of its edge: in the region,
// with a pixel outside it (or the frame's border) within that distance along a row or column.
func contour(in []bool, w, h, thick int) []bool {
	out := make([]bool, len(in))
	inside := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && in[y*w+x] }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !in[y*w+x] {
				continue
			}
			for d := 1; d <= thick && !out[y*w+x]; d++ {
				out[y*w+x] = !inside(x-d, y) || !inside(x+d, y) || !inside(x, y-d) || !inside(x, y+d)
			}
		}
	}
	return out
}

// lineWidth is the outline width for an image: 2 px up to 500 px, then growing with its size.
func lineWidth(w, h int) int { return max(2, min(w, h)/250) }

// drawContours draws the outlines of the regions given (nil: none) over img, the ground truth
// first, so that where the two coincide the prediction shows.
func drawContours(img *image.RGBA, gt, pred []bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	t := lineWidth(w, h)
	for _, r := range []struct {
		mask []bool
		c    color.RGBA
	}{{gt, gtColour}, {pred, predColour}} {
		if r.mask == nil {
			continue
		}
		for i, on := range contour(r.mask, w, h, t) {
			if on {
				img.SetRGBA(i%w, i/w, r.c)
			}
		}
	}
}
