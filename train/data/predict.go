package data

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/internal/atomicfile"
)

// Input is one image prepared for prediction, with what is needed to map the output back.
type Input struct {
	Path string
	Name string // base name, for the output file (same stem, .png)
	W, H int    // original size: predictions are resized back to it
	Size int
	Pix  []float32 // [3, Size, Size], normalised
}

// LoadInput reads an image at its original size and prepares it as the official
// prediction_rgb.py does — resize to size×size, then normalise — with one documented
// difference: the official code resizes with PIL's BILINEAR (antialiased when shrinking), chnet
// with the same OpenCV-style INTER_LINEAR resize as training, so train and test see the same
// interpolation. The resized image is rounded to 8 bits as PIL's resize of an 8-bit image is.
func LoadInput(path string, size int, st Stats, lim Limits) (*Input, error) {
	if size < 1 {
		return nil, fmt.Errorf("data: input size must be positive, got %d", size)
	}
	if st == (Stats{}) {
		st = ImageNetStats
	}
	if err := st.validate(); err != nil {
		return nil, err
	}
	img, err := DecodeImage(path, lim)
	if err != nil {
		return nil, err
	}
	n := size * size
	f := make([]float32, 3*n)
	if err := Resize(f, size, size, planarFloat(img), img.W, img.H, 3); err != nil {
		return nil, fileErr(path, err)
	}
	b := make([]uint8, 3*n)
	for i, v := range f {
		b[i] = toByte(v)
	}
	st.Normalize(f, b)
	name := filepath.Base(path)
	return &Input{Path: path, Name: strings.TrimSuffix(name, filepath.Ext(name)), W: img.W, H: img.H, Size: size, Pix: f}, nil
}

// ResizeBack resizes a size×size map (e.g. probabilities) to w×h with the same resize.
func ResizeBack(m []float32, size, w, h int) ([]float32, error) {
	out := make([]float32, w*h)
	if err := Resize(out, w, h, m, size, size, 1); err != nil {
		return nil, err
	}
	return out, nil
}

// Grey converts probabilities to 8-bit grey as torchvision's ToPILImage does for float
// tensors: p·255 in float32, truncated toward zero. Values outside [0, 1] are clamped and NaN
// reads as 0, so a diverged model still writes a valid file.
func Grey(p []float32) []uint8 {
	out := make([]uint8, len(p))
	for i, v := range p {
		x := v * 255
		switch {
		case !(x > 0): // also NaN
		case x >= 255:
			out[i] = 255
		default:
			out[i] = uint8(x)
		}
	}
	return out
}

// WriteGreyPNG writes an 8-bit grey PNG atomically: a temp file in the same folder, fsync,
// rename, fsync of the folder. A crash leaves the old file or the new one, never half of one.
func WriteGreyPNG(path string, w, h int, pix []uint8) error {
	if w < 1 || h < 1 || len(pix) != w*h {
		return fmt.Errorf("data: write %s: %d pixels for %d×%d", path, len(pix), w, h)
	}
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("data: write %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}
