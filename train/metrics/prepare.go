package metrics

import (
	"fmt"
	"math"
)

// sample is one image after the convention's own input preparation.
type sample struct {
	name string
	w, h int
	p    []float64 // prediction in [0,1]
	g    []bool    // binary ground truth
}

// checkSizes rejects what no convention can score: empty images and buffers whose length is not
// w·h (a size mismatch between prediction and mask is the caller's to resolve by resizing).
func checkSizes(name string, npred, ngt, w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("metrics: %s: empty image (%dx%d)", name, w, h)
	}
	if npred != w*h || ngt != w*h {
		return fmt.Errorf("metrics: %s: size mismatch: %dx%d needs %d pixels, prediction has %d, mask has %d (resize the prediction to the mask first)",
			name, w, h, w*h, npred, ngt)
	}
	return nil
}

// binariseGT applies the convention's mask threshold: gt > 128 for PySODMetrics and the MATLAB
// toolbox; for CHNet's eval.py gt/(max(gt)+1e-8) > 0.5, i.e. 2·gt > max(gt) (an all-zero mask
// stays empty). The float32 division there cannot land on 0.5 for 8-bit values other than an
// exact half, which is not > 0.5 either.
func binariseGT(gt []uint8, c Convention) []bool {
	g := make([]bool, len(gt))
	if c == CHNet {
		var mx uint8
		for _, v := range gt {
			mx = max(mx, v)
		}
		for i, v := range gt {
			g[i] = mx > 0 && 2*int(v) > int(mx)
		}
		return g
	}
	for i, v := range gt {
		g[i] = v > 128
	}
	return g
}

// normalise8 turns an 8-bit prediction into [0,1] the way each toolbox does, operation by
// operation, because the last bits decide which side of a threshold a pixel falls:
//   - PySODMetrics: p = v/255, then (p − min)/(max − min) if max ≠ min;
//   - MATLAB: im2double (v/255), then mapminmax(·,0,1) = (x − xmin)·gain + 0 with
//     gain = 1/(xmax − xmin); where the range is 0 (a constant map) or gain would exceed 1e14,
//     the Neural Network Toolbox's +mapminmax (2012 and later) sets gain 1 and offset ymin = 0,
//     so the map passes through unchanged (the pre-2012 mapminmax.m returned zeros instead);
//   - CHNet: (v − min)/(max − min) on the integers, or v/255 when max = min.
func normalise8(pred []uint8, c Convention) []float64 {
	lo, hi := uint8(255), uint8(0)
	for _, v := range pred {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	p := make([]float64, len(pred))
	switch {
	case c == CHNet && hi != lo:
		d := float64(hi - lo)
		for i, v := range pred {
			p[i] = float64(v-lo) / d
		}
	default:
		for i, v := range pred {
			p[i] = float64(v) / 255
		}
		if hi != lo {
			rescale(p, float64(lo)/255, float64(hi)/255, c)
		}
	}
	return p
}

// normaliseFloat takes a probability map already in [0,1] (what the 8-bit toolboxes get after
// their /255) and applies the convention's min-max normalisation.
func normaliseFloat(name string, pred []float32, c Convention) ([]float64, error) {
	p := make([]float64, len(pred))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range pred {
		f := float64(v)
		if !(f >= 0 && f <= 1) { // also rejects NaN
			return nil, fmt.Errorf("metrics: %s: prediction value %v at pixel %d is outside [0,1]", name, v, i)
		}
		p[i] = f
		lo = math.Min(lo, f)
		hi = math.Max(hi, f)
	}
	if hi != lo {
		rescale(p, lo, hi, c)
	}
	return p, nil
}

func rescale(p []float64, lo, hi float64, c Convention) {
	switch c {
	case MATLAB:
		gain := 1 / (hi - lo)
		if gain > 1e14 {
			return // +mapminmax/create.m: such rows are passed through
		}
		for i, v := range p {
			p[i] = (v - lo) * gain
		}
	default:
		d := hi - lo
		for i, v := range p {
			p[i] = (v - lo) / d
		}
	}
}
