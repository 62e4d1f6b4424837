package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif" // paletted GIF masks occur in the wild
	"image/jpeg"
	"image/png"
	"io"

	"github.com/chnet/chnet/internal/regfile"
)

// Limits bound what one file may cost before any pixel buffer is allocated.
type Limits struct {
	// MaxPixels caps width×height as declared in the header (checked with image.DecodeConfig,
	// before image.Decode allocates w×h×bpp; golang/go#10790). 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxBytes caps the file size read into memory. 0 means DefaultMaxBytes.
	MaxBytes int64
}

const (
	// DefaultMaxPixels is Pillow's MAX_IMAGE_PIXELS, 1024·1024·1024/4/3 ("a quarter gigabyte
	// for a 24-bit image"), so chnet refuses what Pillow-based tools warn about.
	DefaultMaxPixels = 1024 * 1024 * 1024 / 4 / 3
	// DefaultMaxBytes: the largest real medical 2-D image in our data is under 1 MiB; 256 MiB
	// leaves room for uncompressed scans while still refusing a runaway file.
	DefaultMaxBytes = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// RGB is an 8-bit RGB image, pixels interleaved row by row (R, G, B, R, G, B, ...).
type RGB struct {
	W, H int
	Pix  []uint8
}

// Mask is a binary mask, one byte per pixel, 0 (background) or 1 (foreground).
type Mask struct {
	W, H int
	Pix  []uint8
}

// MaskThreshold: a mask pixel is foreground when its 8-bit grey value is at least this. Kvasir's
// JPEG masks carry 0–7 and 248–255 from compression and ClinicDB's PNGs have faint regions near
// 11 (shared/data/PROVENANCE.md); 128 splits both cleanly.
const MaskThreshold = 128

// readFile reads a whole file, refusing more than max bytes without reading them all.
// Only regular files are read: a FIFO named like an image would block forever (regfile).
func readFile(path string, max int64) ([]byte, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

// codec is one of the three decoders chnet accepts. They are called directly rather than
// through image.Decode's global registry: any linked package can register more decoders there
// (gonum/plot pulls in golang.org/x/image's TIFF), and what chnet reads must not depend on that.
type codec struct {
	name         string
	magic        []string
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
}

var codecs = []codec{
	{"png", []string{"\x89PNG\r\n\x1a\n"}, png.DecodeConfig, png.Decode},
	{"jpeg", []string{"\xff\xd8"}, jpeg.DecodeConfig, jpeg.Decode},
	{"gif", []string{"GIF87a", "GIF89a"}, gif.DecodeConfig, gif.Decode},
}

func sniff(b []byte) *codec {
	for i := range codecs {
		for _, m := range codecs[i].magic {
			if bytes.HasPrefix(b, []byte(m)) {
				return &codecs[i]
			}
		}
	}
	return nil
}

// config reads a file's header: the format from its first bytes (head), then the declared size
// from r with the format's DecodeConfig, which reads only the header. Unknown formats, damaged
// headers and sizes past lim.MaxPixels are refused before any pixel buffer exists: a file
// declaring 100000×100000 pixels costs nothing.
func config(head []byte, r io.Reader, lim Limits) (*codec, image.Config, error) {
	c := sniff(head)
	if c == nil {
		if f := sniffUnsupported(head); f != "" {
			return nil, image.Config{}, fmt.Errorf("%w: %s (chnet reads PNG, JPEG and GIF; convert to PNG)", ErrUnsupported, f)
		}
		return nil, image.Config{}, ErrNotImage
	}
	cfg, err := c.decodeConfig(r)
	if err != nil {
		return nil, cfg, fmt.Errorf("%w: %s header: %v", ErrCorrupt, c.name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, cfg, fmt.Errorf("%w: %s declares %d×%d pixels", ErrCorrupt, c.name, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return nil, cfg, fmt.Errorf("%w: %s declares %d×%d = %d pixels, limit %d (raise --max-pixels if the file is trusted)",
			ErrTooLarge, c.name, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	return c, cfg, nil
}

// decodeBytes gates on the header (config) before decoding.
func decodeBytes(b []byte, lim Limits) (image.Image, error) {
	lim = lim.withDefaults()
	c, cfg, err := config(b, bytes.NewReader(b), lim)
	if err != nil {
		return nil, err
	}
	img, err := c.decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, c.name, err)
	}
	if r := img.Bounds(); r.Dx() != cfg.Width || r.Dy() != cfg.Height {
		return nil, fmt.Errorf("%w: %s header says %d×%d, pixels are %d×%d", ErrCorrupt, c.name, cfg.Width, cfg.Height, r.Dx(), r.Dy())
	}
	return img, nil
}

// sniffUnsupported names formats users put in image folders that Go's standard library cannot
// read, so the error can say what to do instead of "unknown format".
func sniffUnsupported(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("BM")):
		return "BMP"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "TIFF"
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "WebP"
	}
	return ""
}

func decodeFile(path string, lim Limits) (image.Image, error) {
	b, err := readFile(path, lim.withDefaults().MaxBytes)
	if err != nil {
		return nil, fileErr(path, err)
	}
	img, err := decodeBytes(b, lim)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return img, nil
}

// DecodeImage reads an image file as 8-bit RGB. Conversions, each matching what cv2.imread(...)
// followed by BGR→RGB or PIL's convert("RGB") gives for the common cases:
//   - grey (8- or 16-bit) is replicated to three channels;
//   - alpha is dropped: colour channels are taken un-premultiplied, as stored in the file;
//   - 16-bit samples are scaled to 8 bits as round(v/257), so v = 257·k maps back to k exactly.
//     (Go's colour models would keep only the high byte; Pillow clips I;16 at 255 instead, so
//     PIL-based code gives different tensors for 16-bit files: python-pillow/Pillow#3011.)
//   - paletted images are expanded through their palette; CMYK JPEGs use Go's CMYK→RGB.
//
// Go's JPEG decoder is not libjpeg: decoded pixels can differ from OpenCV's by a few levels.
// EXIF orientation is ignored (stored pixel order), as in the reference PIL/OpenCV loaders.
func DecodeImage(path string, lim Limits) (*RGB, error) {
	img, err := decodeFile(path, lim)
	if err != nil {
		return nil, err
	}
	return toRGB(img), nil
}

// to8 scales a 16-bit sample to 8 bits, rounding: round(v/257) = (v·255 + 32767)/65535.
func to8(v uint32) uint8 { return uint8((v*255 + 32767) / 65535) }

func toRGB(img image.Image) *RGB {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	p := out.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(r.Min.X+x, r.Min.Y+y)
				ci := m.COffset(r.Min.X+x, r.Min.Y+y)
				cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = cr, cg, cb
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.Paletted:
		pal := paletteRGB(m.Palette)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, k := range row {
				i := 3 * (y*w + x)
				c := pal[k]
				p[i], p[i+1], p[i+2] = c[0], c[1], c[2]
			}
		}
	default:
		// Always right, slower: every colour model converts to un-premultiplied 16-bit RGBA.
		// *image.RGBA (PNG truecolour) goes here too, so alpha < 255 is un-premultiplied.
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				cr, cg, cb := rgb16(img.At(r.Min.X+x, r.Min.Y+y))
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = to8(cr), to8(cg), to8(cb)
			}
		}
	}
	return out
}

// paletteRGB expands a palette to 256 un-premultiplied RGB entries; indices past the palette's
// end (which image/png rejects but other decoders may pass) read as black.
func paletteRGB(pal color.Palette) [256][3]uint8 {
	var t [256][3]uint8
	for i, c := range pal {
		if i >= 256 {
			break
		}
		cr, cg, cb := rgb16(c)
		t[i] = [3]uint8{to8(cr), to8(cg), to8(cb)}
	}
	return t
}

// DecodeMask reads a mask file and binarises it: foreground where the 8-bit grey value is
// ≥ MaskThreshold. The grey value is, by layout:
//   - grey PNG (8/16-bit, with or without alpha): the grey level;
//   - JPEG (YCbCr): the luma Y, which is what cv2.imread(path, 0) reads from a JPEG;
//   - RGB/RGBA/paletted: the largest of R, G, B. For grey-coded masks stored as colour (Kvasir,
//     ClinicDB) this is the grey level; for colour-coded annotations (pure red, the VOC palette's
//     (128,0,0)) it keeps the object, where luminance would drop it (facebookresearch/detectron2#1760).
//
// Alpha is ignored; 16-bit values are scaled as in DecodeImage. A mask whose only values are 0
// and one k below the threshold (a 0/1 label map) is refused with ErrLabelCoded rather than
// read as empty.
func DecodeMask(path string, lim Limits) (*Mask, error) {
	img, err := decodeFile(path, lim)
	if err != nil {
		return nil, err
	}
	m, err := toMask(img)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return m, nil
}

// DecodeLabelMap reads a label-map mask (nnU-Net's: background 0, foreground 1): foreground
// wherever the value is not 0.
func DecodeLabelMap(path string, lim Limits) (*Mask, error) {
	img, err := decodeFile(path, lim)
	if err != nil {
		return nil, err
	}
	m, err := binarise(img, 1)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return m, nil
}

func toMask(img image.Image) (*Mask, error) { return binarise(img, MaskThreshold) }

// binarise marks the pixels whose 8-bit grey value is at least threshold; at MaskThreshold it
// refuses label maps.
func binarise(img image.Image, threshold uint8) (*Mask, error) {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := &Mask{W: w, H: h, Pix: make([]uint8, w*h)}
	// Distinct grey values seen, up to three: enough to tell a 0/k label map from a real mask.
	var seen [3]uint16
	nseen := 0
	note := func(g uint16) {
		for i := 0; i < nseen; i++ {
			if seen[i] == g {
				return
			}
		}
		if nseen < len(seen) {
			seen[nseen] = g
			nseen++
		}
	}
	set := func(i int, g16 uint16) {
		if nseen < 3 {
			note(g16)
		}
		if to8(uint32(g16)) >= threshold {
			out.Pix[i] = 1
		}
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			for x, v := range m.Pix[y*m.Stride : y*m.Stride+w] {
				set(y*w+x, uint16(v)*257)
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				set(y*w+x, uint16(m.Y[m.YOffset(r.Min.X+x, r.Min.Y+y)])*257)
			}
		}
	case *image.Paletted:
		var g [256]uint16
		for i, c := range m.Palette {
			if i < 256 {
				g[i] = maxChannel(c)
			}
		}
		for y := 0; y < h; y++ {
			for x, k := range m.Pix[y*m.Stride : y*m.Stride+w] {
				set(y*w+x, g[k])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				set(y*w+x, maxChannel(img.At(r.Min.X+x, r.Min.Y+y)))
			}
		}
	}
	if nseen == 2 && threshold == MaskThreshold {
		k := max(seen[0], seen[1])
		if min(seen[0], seen[1]) == 0 && to8(uint32(k)) < MaskThreshold {
			return nil, fmt.Errorf("%w: only 0 and %d (16-bit scale %d); chnet expects foreground ≥ %d of 255 — rescale the masks to 0/255",
				ErrLabelCoded, to8(uint32(k)), k, MaskThreshold)
		}
	}
	return out, nil
}

// rgb16 returns a colour's un-premultiplied channels on the 16-bit scale. Non-premultiplied
// colours are read directly: converting through RGBA() would premultiply and lose the colour of
// fully transparent pixels (a grey+alpha mask with alpha 0 would turn black).
func rgb16(c color.Color) (r, g, b uint32) {
	switch v := c.(type) {
	case color.NRGBA:
		return uint32(v.R) * 257, uint32(v.G) * 257, uint32(v.B) * 257
	case color.NRGBA64:
		return uint32(v.R), uint32(v.G), uint32(v.B)
	case color.Gray:
		return uint32(v.Y) * 257, uint32(v.Y) * 257, uint32(v.Y) * 257
	case color.Gray16:
		return uint32(v.Y), uint32(v.Y), uint32(v.Y)
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return uint32(n.R), uint32(n.G), uint32(n.B)
}

// maxChannel is the largest un-premultiplied colour channel, 16-bit; grey gives its level.
func maxChannel(c color.Color) uint16 {
	r, g, b := rgb16(c)
	return uint16(max(r, g, b))
}
