// Package badinput generates broken and hostile inputs for chnet's readers — image folders with
// every kind of bad file, damaged checkpoints — so that tests build their corpus from code
// rather than from hand-placed files. Each generated file comes with why it is bad and what the
// error naming it must say.
package badinput

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
)

// Stage says which check finds a bad sample: its header (format, size, pixel count, file kind,
// pairing) or only decoding all of it.
type Stage int

const (
	Header Stage = iota
	Decode
)

// Bad is one bad sample of a generated folder.
type Bad struct {
	Kind  string // short name of the defect, e.g. "png-bomb"
	Path  string // the file an error must name
	Want  string // a phrase the error must contain
	Stage Stage
}

// PNG encodes img.
func PNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err) // in-memory encoding of a valid image cannot fail
	}
	return b.Bytes()
}

// JPEG encodes img at quality 90.
func JPEG(img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Disc is a w×h grey image: 255 inside a centred disc, 0 outside (a plausible mask).
func Disc(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	r := min(w, h) / 3
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if dx, dy := x-w/2, y-h/2; dx*dx+dy*dy < r*r {
				g.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	return g
}

// Noise is a w×h RGB image of deterministic noise (an image that compresses badly).
func Noise(w, h int, seed uint32) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	s := seed*2654435761 + 1
	for i := range m.Pix {
		s = s*1664525 + 1013904223
		m.Pix[i] = uint8(s >> 24)
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return m
}

// PNGHeader is a PNG signature and IHDR chunk declaring w×h 8-bit RGB pixels, and nothing else:
// a few dozen bytes that a decoder without a size check would allocate w·h·4 bytes for.
func PNGHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// JPEGHeader is a JPEG start, JFIF marker and baseline frame header declaring w×h pixels.
func JPEGHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	b = append(b, 0xff, 0xc0, 0, 17, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	b = append(b, 3)
	for id := byte(1); id <= 3; id++ {
		b = append(b, id, 0x11, 0)
	}
	return b
}

// GIFHeader is a GIF header and logical screen descriptor declaring w×h pixels.
func GIFHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0)
}

// Truncated cuts b to frac of its length.
func Truncated(b []byte, frac float64) []byte { return b[:int(float64(len(b))*frac)] }

// WriteDataset writes a dataset folder (images/, masks/) into dir: good pairs of w×h images
// (w, h ≥ 16) named good_00.., and one bad sample of every kind chnet has met or can foresee,
// returned with what must be said about each. Files that need the platform (a FIFO, a sparse
// file) are skipped where it cannot make them.
func WriteDataset(dir string, good, w, h int) ([]Bad, error) {
	img, msk := filepath.Join(dir, "images"), filepath.Join(dir, "masks")
	for _, d := range []string{img, msk} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	write := func(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
	mask := PNG(Disc(w, h))
	for i := 0; i < good; i++ {
		name := fmt.Sprintf("good_%02d.png", i)
		if err := write(filepath.Join(img, name), PNG(Noise(w, h, uint32(i)))); err != nil {
			return nil, err
		}
		if err := write(filepath.Join(msk, name), mask); err != nil {
			return nil, err
		}
	}
	var bad []Bad
	// pair writes an image and a mask under one name; the one that is bad is named in the Bad.
	pair := func(kind, name string, image, maskB []byte, badIsMask bool, want string, st Stage) error {
		ip, mp := filepath.Join(img, name), filepath.Join(msk, name)
		if err := write(ip, image); err != nil {
			return err
		}
		if err := write(mp, maskB); err != nil {
			return err
		}
		p := ip
		if badIsMask {
			p = mp
		}
		bad = append(bad, Bad{Kind: kind, Path: p, Want: want, Stage: st})
		return nil
	}
	goodImg := PNG(Noise(w, h, 99))
	labels := image.NewGray(image.Rect(0, 0, w, h))
	for i := range labels.Pix {
		labels.Pix[i] = uint8(i % 2)
	}
	for _, c := range []struct {
		kind, name   string
		image, maskB []byte
		badIsMask    bool
		want         string
		st           Stage
	}{
		{"empty", "empty.png", nil, mask, false, "not an image", Header},
		{"text", "text.png", []byte("id,label\n1,polyp\n"), mask, false, "not an image", Header},
		{"bmp", "bmp.png", append([]byte("BM"), make([]byte, 60)...), mask, false, "BMP", Header},
		{"tiff", "tiff.png", append([]byte("II*\x00"), make([]byte, 60)...), mask, false, "TIFF", Header},
		{"webp", "webp.png", append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), make([]byte, 40)...), mask, false, "WebP", Header},
		{"png-bomb", "png_bomb.png", PNGHeader(100000, 100000), mask, false, "pixels", Header},
		{"jpeg-bomb", "jpeg_bomb.jpg", JPEGHeader(65000, 65000), mask, false, "pixels", Header},
		{"gif-bomb", "gif_bomb.gif", GIFHeader(65000, 65000), mask, false, "pixels", Header},
		{"mask-bomb", "mask_bomb.png", goodImg, PNGHeader(100000, 100000), true, "pixels", Header},
		{"png-zero-width", "zero.png", PNGHeader(0, 10), mask, false, "corrupt", Header},
		{"jpeg-bad-header", "badhead.jpg", []byte{0xff, 0xd8, 0xff, 0x01, 0xde, 0xad}, mask, false, "corrupt", Header},
		{"mask-size", "mask_size.png", goodImg, PNG(Disc(w/2, h/2)), true, "mask size differs", Header},
		{"png-truncated", "truncated.png", Truncated(goodImg, 0.6), mask, false, "corrupt", Decode},
		{"mask-truncated", "mask_truncated.png", goodImg, Truncated(PNG(Noise(w, h, 7)), 0.5), true, "corrupt", Decode},
		{"mask-label-coded", "labels.png", goodImg, PNG(labels), true, "label-coded", Decode},
	} {
		if err := pair(c.kind, c.name, c.image, c.maskB, c.badIsMask, c.want, c.st); err != nil {
			return nil, err
		}
	}
	// Pairing problems.
	orphanImg, orphanMask := filepath.Join(img, "orphan_image.png"), filepath.Join(msk, "orphan_mask.png")
	if err := write(orphanImg, goodImg); err != nil {
		return nil, err
	}
	if err := write(orphanMask, mask); err != nil {
		return nil, err
	}
	bad = append(bad, Bad{"orphan-image", orphanImg, "image without mask", Header}, Bad{"orphan-mask", orphanMask, "mask without image", Header})
	for _, n := range []string{"twice.png", "twice.jpg"} {
		if err := write(filepath.Join(img, n), goodImg); err != nil {
			return nil, err
		}
	}
	if err := write(filepath.Join(msk, "twice.png"), mask); err != nil {
		return nil, err
	}
	bad = append(bad, Bad{"ambiguous", filepath.Join(img, "twice.jpg"), "ambiguous name", Header})
	// Things that are not regular files, named like images.
	if err := write(filepath.Join(msk, "link_dir.png"), mask); err != nil {
		return nil, err
	}
	if err := os.Symlink(img, filepath.Join(img, "link_dir.png")); err != nil {
		return nil, err
	}
	bad = append(bad, Bad{"link-to-folder", filepath.Join(img, "link_dir.png"), "directory", Header})
	if err := write(filepath.Join(msk, "dangling.png"), mask); err != nil {
		return nil, err
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere.png"), filepath.Join(img, "dangling.png")); err != nil {
		return nil, err
	}
	bad = append(bad, Bad{"dangling-link", filepath.Join(img, "dangling.png"), "no such file", Header})
	if err := write(filepath.Join(msk, "fifo.png"), mask); err != nil {
		return nil, err
	}
	if err := mkfifo(filepath.Join(img, "fifo.png")); err == nil {
		bad = append(bad, Bad{"fifo", filepath.Join(img, "fifo.png"), "named pipe", Header})
	} else {
		os.Remove(filepath.Join(msk, "fifo.png"))
	}
	// A file past the byte limit (256 MiB), sparse so that it costs nothing.
	huge := filepath.Join(img, "huge.png")
	f, err := os.Create(huge)
	if err != nil {
		return nil, err
	}
	f.Write(PNGHeader(uint32(w), uint32(h)))
	terr := f.Truncate(300 << 20)
	f.Close()
	if terr == nil {
		if err := write(filepath.Join(msk, "huge.png"), mask); err != nil {
			return nil, err
		}
		bad = append(bad, Bad{"huge-file", huge, "bytes", Header})
	} else {
		os.Remove(huge)
	}
	// Hidden files are ignored, never samples: no Bad.
	if err := write(filepath.Join(img, "._good_00.png"), []byte("\x00\x05\x16\x07AppleDouble")); err != nil {
		return nil, err
	}
	return bad, nil
}
