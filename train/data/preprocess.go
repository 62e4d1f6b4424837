package data

import (
	"fmt"
	"math"
)

// Stats are per-channel RGB mean and standard deviation on the 0–255 scale.
type Stats struct {
	Name      string
	Mean, Std [3]float64
}

var (
	// ImageNetStats: torchvision's [0.485, 0.456, 0.406] / [0.229, 0.224, 0.225] × 255, what the
	// official prediction_rgb.py and the ImageNet-pretrained backbone use. chnet's default.
	ImageNetStats = Stats{Name: "imagenet", Mean: [3]float64{123.675, 116.28, 103.53}, Std: [3]float64{58.395, 57.12, 57.375}}
	// TrainScriptStats: the official training script's Config (F3Net's DUTS statistics), which
	// differ slightly from what the official inference uses (reference.md §1.2–1.3).
	TrainScriptStats = Stats{Name: "train-script", Mean: [3]float64{124.55, 118.90, 102.94}, Std: [3]float64{56.77, 55.97, 57.50}}
)

// StatsByName returns ImageNetStats ("imagenet") or TrainScriptStats ("train-script").
func StatsByName(name string) (Stats, error) {
	switch name {
	case "", ImageNetStats.Name:
		return ImageNetStats, nil
	case TrainScriptStats.Name:
		return TrainScriptStats, nil
	}
	return Stats{}, fmt.Errorf("data: unknown normalisation %q (want %q or %q)", name, ImageNetStats.Name, TrainScriptStats.Name)
}

func (s Stats) validate() error {
	for c := 0; c < 3; c++ {
		if !(s.Std[c] > 0) || math.IsInf(s.Std[c], 0) || math.IsNaN(s.Mean[c]) || math.IsInf(s.Mean[c], 0) {
			return fmt.Errorf("data: normalisation %q: channel %d mean %v std %v (std must be positive and finite)", s.Name, c, s.Mean[c], s.Std[c])
		}
	}
	return nil
}

// table maps each 8-bit value to its normalised float32, computed in float64 and rounded once:
// the official code normalises in float64 (numpy promotes against its float64 mean array).
func (s Stats) table() *[3][256]float32 {
	var t [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			t[c][v] = float32((float64(v) - s.Mean[c]) / s.Std[c])
		}
	}
	return &t
}

// Normalize converts planar 8-bit RGB (3·n values) to normalised planar float32.
func (s Stats) Normalize(dst []float32, src []uint8) {
	t := s.table()
	n := len(src) / 3
	for c := 0; c < 3; c++ {
		for i, v := range src[c*n : (c+1)*n] {
			dst[c*n+i] = t[c][v]
		}
	}
}

// planarFloat converts interleaved 8-bit RGB to planar float32 raw values (0–255).
func planarFloat(img *RGB) []float32 {
	n := img.W * img.H
	out := make([]float32, 3*n)
	for i := 0; i < n; i++ {
		out[i] = float32(img.Pix[3*i])
		out[n+i] = float32(img.Pix[3*i+1])
		out[2*n+i] = float32(img.Pix[3*i+2])
	}
	return out
}

// toByte rounds half to even and saturates, as OpenCV's saturate_cast<uchar>(float).
func toByte(v float32) uint8 {
	r := math.RoundToEven(float64(v))
	return uint8(min(max(r, 0), 255))
}

// base is one sample at the training base size, as cached: planar RGB bytes and the soft mask
// scaled to bytes (round(255·p)).
//
// Why 8-bit: the sources are 8-bit JPEG/PNG, and Go's JPEG decoder already differs from
// libjpeg's by a level or two; rounding the resized image to bytes adds at most half a level
// (0.009 after normalisation). float16 would double the memory (polyp train: 1.08 GB instead
// of 0.54 GB for the images) for precision the data does not have. Resize is linear, so
// resizing raw values and normalising afterwards equals the official normalise-then-resize up
// to that rounding. The soft mask is quantised to 1/255, only along object edges.
type base struct {
	img  []uint8 // 3·S·S
	mask []uint8 // S·S
}

func (b *base) bytes() int64 { return int64(len(b.img) + len(b.mask)) }

// toBase resizes a decoded pair to size×size (cv::resize INTER_LINEAR on float data, as the
// official Resize(352, 352)); the binary mask is resized as 0/1 floats and so becomes soft.
func toBase(img *RGB, m *Mask, size int) (*base, error) {
	n := size * size
	f := make([]float32, 3*n)
	if err := Resize(f, size, size, planarFloat(img), img.W, img.H, 3); err != nil {
		return nil, err
	}
	b := &base{img: make([]uint8, 3*n), mask: make([]uint8, n)}
	for i, v := range f {
		b.img[i] = toByte(v)
	}
	mf := make([]float32, m.W*m.H)
	for i, v := range m.Pix {
		mf[i] = float32(v)
	}
	if err := Resize(f[:n], size, size, mf, m.W, m.H, 1); err != nil {
		return nil, err
	}
	for i, v := range f[:n] {
		b.mask[i] = toByte(v * 255)
	}
	return b, nil
}

// Aug is the random part of one training sample, drawn by the loader.
type Aug struct {
	Flip  bool    // horizontal flip (official RandomFlip, p = 0.5)
	Angle float64 // rotation in degrees (official RandomRotate, uniform in [−10, 10))
	// Rotate is false for evaluation; the official code rotates every training sample, even by
	// a tiny angle, and warpAffine's 1/32-pixel rounding changes values even at 0°.
	Rotate bool
}

// workspace holds one worker's scratch planes so samples do not allocate.
type workspace struct {
	img, tmp []float32 // 3·S·S
	mask     []float32 // S·S
	mtmp     []float32
	warp     warpMap
}

func newWorkspace(s int) *workspace {
	return &workspace{
		img: make([]float32, 3*s*s), tmp: make([]float32, 3*s*s),
		mask: make([]float32, s*s), mtmp: make([]float32, s*s),
	}
}

// augment runs the official per-sample order on a cached base sample — normalise, flip,
// rotate about the centre (border 0 in normalised space, i.e. the mean colour; mask border 0) —
// then the batch's resize to out×out, writing into img (3·out²) and mask (out²).
func augment(b *base, s int, t *[3][256]float32, a Aug, out int, img, mask []float32, ws *workspace) error {
	n := s * s
	for c := 0; c < 3; c++ {
		for i, v := range b.img[c*n : (c+1)*n] {
			ws.img[c*n+i] = t[c][v]
		}
	}
	for i, v := range b.mask {
		ws.mask[i] = float32(v) / 255
	}
	if a.Flip {
		flipRows(ws.img, s, 3*s)
		flipRows(ws.mask, s, s)
	}
	cur, curMask := ws.img, ws.mask
	if a.Rotate {
		// Official: getRotationMatrix2D((rows*0.5, cols*0.5), angle, 1), dsize (cols, rows).
		// One map serves image and mask, as both go through the same warpAffine call.
		ws.warp.build(s, s, s, s, RotationMatrix(float64(s)*0.5, float64(s)*0.5, a.Angle, 1))
		ws.warp.apply(ws.tmp, cur, 3, 0)
		ws.warp.apply(ws.mtmp, curMask, 1, 0)
		cur, curMask = ws.tmp, ws.mtmp
	}
	if err := Resize(img, out, out, cur, s, s, 3); err != nil {
		return err
	}
	return Resize(mask, out, out, curMask, s, s, 1)
}

// flipRows mirrors each of rows rows of width w in place (cv2.flip(x, 1), image[:, ::-1]).
func flipRows(p []float32, w, rows int) {
	for r := 0; r < rows; r++ {
		row := p[r*w : (r+1)*w]
		for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
			row[i], row[j] = row[j], row[i]
		}
	}
}
