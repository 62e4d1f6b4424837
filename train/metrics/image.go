package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/chnet/chnet/internal/regfile"
)

// Gray is an 8-bit single-channel image, row-major, W·H bytes.
type Gray struct {
	Pix  []uint8
	W, H int
}

// Limits on what one map or mask may cost, checked before its pixel buffer is allocated: Go's
// decoders allocate width×height as soon as the header is read, so a 1 KB PNG declaring
// 100000×100000 pixels would otherwise end the process (issue 9, case 7).
const (
	// DefaultMaxPixels is Pillow's MAX_IMAGE_PIXELS, as data.DefaultMaxPixels.
	DefaultMaxPixels = 1024 * 1024 * 1024 / 4 / 3
	// MaxBytes caps the bytes of one file, as data.DefaultMaxBytes.
	MaxBytes = 256 << 20
)

// ErrTooLarge reports a file past MaxBytes or declaring more pixels than allowed.
var ErrTooLarge = errors.New("image too large")

// ReadGray reads a PNG or JPEG file as OpenCV's cv2.imread(path, cv2.IMREAD_GRAYSCALE) would,
// which is how PySODMetrics' examples (and most Python evaluation scripts) load masks and
// prediction maps, refusing files that declare more than DefaultMaxPixels pixels. Errors name
// the file.
func ReadGray(path string) (Gray, error) { return ReadGrayLimited(path, DefaultMaxPixels) }

// ReadGrayLimited is ReadGray with another pixel limit (the --max-pixels flag).
func ReadGrayLimited(path string, maxPixels int64) (Gray, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return Gray{}, fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	if size > MaxBytes {
		return Gray{}, fmt.Errorf("metrics: %s: %w: %d bytes, limit %d", path, ErrTooLarge, size, MaxBytes)
	}
	return decodeGray(f, path, maxPixels)
}

// DecodeGray decodes a PNG or JPEG stream like ReadGray; name is used in error messages.
//
// What OpenCV's grey read does, and so what this does:
//   - 8-bit grey: as stored; 1/2/4-bit grey: scaled to 0..255 (libpng expands by ×255, ×85, ×17).
//   - 16-bit grey: the high byte (libpng's png_set_strip_16 drops the low byte, no rounding).
//   - RGB, RGBA, paletted, grey+alpha PNG: the alpha channel is discarded (not composited), then
//     libpng's png_set_rgb_to_gray(…, 0.299, 0.587) runs, whose 15-bit integer coefficients are
//     9797, 19234 and 3737 (= ⌊0.299·32768⌋, ⌊0.587·32768⌋, and the rest) with truncation:
//     Y = (9797·R + 19234·G + 3737·B) >> 15, and Y = R when R = G = B. For 16-bit colour the same
//     runs on 16-bit samples with +16384 rounding before the high byte is kept.
//     Note: this is NOT cvtColor's (4899·R + 9617·G + 1868·B + 8192) >> 14; checked against
//     cv2 4.6 on 4096 random colours: the libpng formula matched every pixel, cvtColor's missed
//     2016 of them (by ±1).
//   - JPEG: libjpeg's grey output, i.e. the decoded luma (Y) plane of a YCbCr JPEG, no
//     RGB round trip. Go's IDCT is not libjpeg's: about 2% of pixels differ by ±1 from cv2's
//     reading of the same file (measured on a 320×240 colour and a grey JPEG). PNG reads are exact.
//   - CMYK/YCCK JPEG and other formats: an error.
func DecodeGray(r io.Reader, name string) (Gray, error) { return decodeGray(r, name, DefaultMaxPixels) }

func decodeGray(r io.Reader, name string, maxPixels int64) (Gray, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return Gray{}, fmt.Errorf("metrics: %s: %w", name, err)
	}
	if len(b) > MaxBytes {
		return Gray{}, fmt.Errorf("metrics: %s: %w: more than %d bytes", name, ErrTooLarge, MaxBytes)
	}
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case bytes.HasPrefix(b, []byte{0xff, 0xd8}):
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	default:
		return Gray{}, fmt.Errorf("metrics: %s: not a PNG or JPEG file", name)
	}
	// The header alone first: the pixel buffer is allocated only for a size within the limit.
	cfg, err := decodeConfig(bytes.NewReader(b))
	if err != nil {
		return Gray{}, fmt.Errorf("metrics: %s: corrupt image: %w", name, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return Gray{}, fmt.Errorf("metrics: %s: %w: declares %d×%d = %d pixels, limit %d (raise --max-pixels if the file is trusted)",
			name, ErrTooLarge, cfg.Width, cfg.Height, px, maxPixels)
	}
	img, err := decode(bytes.NewReader(b))
	if err != nil {
		return Gray{}, fmt.Errorf("metrics: %s: corrupt image: %w", name, err)
	}
	g, err := toGray(img)
	if err != nil {
		return Gray{}, fmt.Errorf("metrics: %s: %w", name, err)
	}
	if g.W == 0 || g.H == 0 {
		return Gray{}, fmt.Errorf("metrics: %s: empty image (%dx%d)", name, g.W, g.H)
	}
	return g, nil
}

// pngGray8 is libpng's 8-bit rgb_to_gray without gamma: grey pixels pass through, others use the
// truncating 15-bit weighted sum.
func pngGray8(r, g, b uint8) uint8 {
	if r == g && g == b {
		return r
	}
	return uint8((9797*uint32(r) + 19234*uint32(g) + 3737*uint32(b)) >> 15)
}

// pngGray16 is libpng's 16-bit rgb_to_gray (rounded), followed by png_set_strip_16 (high byte).
func pngGray16(r, g, b uint16) uint8 {
	y := (9797*uint64(r) + 19234*uint64(g) + 3737*uint64(b) + 16384) >> 15
	return uint8(y >> 8)
}

func toGray(img image.Image) (Gray, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := Gray{Pix: make([]uint8, w*h), W: w, H: h}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			copy(out.Pix[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+w])
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				out.Pix[y*w+x] = row[2*x] // big-endian samples: the high byte comes first
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			copy(out.Pix[y*w:(y+1)*w], m.Y[y*m.YStride:y*m.YStride+w])
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				out.Pix[y*w+x] = pngGray8(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.RGBA:
		// Go's PNG decoder returns RGBA only for opaque truecolour, where premultiplied and
		// straight values coincide.
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				out.Pix[y*w+x] = pngGray8(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				p := row[8*x:]
				out.Pix[y*w+x] = pngGray16(uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3]), uint16(p[4])<<8|uint16(p[5]))
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				p := row[8*x:]
				out.Pix[y*w+x] = pngGray16(uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3]), uint16(p[4])<<8|uint16(p[5]))
			}
		}
	case *image.Paletted:
		// libpng expands the palette to RGB (its alpha, from tRNS, is then stripped) and converts.
		var lut [256]uint8
		for i, c := range m.Palette {
			var r, g, bl uint8
			switch pc := c.(type) {
			case color.NRGBA:
				r, g, bl = pc.R, pc.G, pc.B
			case color.RGBA:
				r, g, bl = pc.R, pc.G, pc.B
			default:
				n := color.NRGBAModel.Convert(c).(color.NRGBA)
				r, g, bl = n.R, n.G, n.B
			}
			lut[i] = pngGray8(r, g, bl)
		}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				out.Pix[y*w+x] = lut[row[x]]
			}
		}
	case *image.CMYK:
		return Gray{}, errors.New("CMYK/YCCK JPEG is not supported")
	default:
		return Gray{}, fmt.Errorf("unsupported pixel layout %T", img)
	}
	return out, nil
}
