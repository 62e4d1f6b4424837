package data

import (
	"testing"
)

// FuzzImageLoad: the gate + decode + conversion never panics and never allocates past the
// pixel cap, whatever the bytes (reliability.md §1.5). Seeds: a PNG, a JPEG, a header-only bomb.
func FuzzImageLoad(f *testing.F) {
	f.Add(encodePNG(f, rgbImage(5, 4)))
	f.Add(encodeJPEG(f, rgbImage(9, 7)))
	f.Add(encodePNG(f, grey(3, 3, func(x, y int) uint8 { return uint8(x * 100) })))
	f.Add(pngHeaderOnly(100000, 100000))
	lim := Limits{MaxPixels: 1 << 20, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodeBytes(b, lim)
		if err != nil {
			return
		}
		r := img.Bounds()
		if int64(r.Dx())*int64(r.Dy()) > lim.MaxPixels {
			t.Fatalf("decoded %v past the cap", r)
		}
		rgb := toRGB(img)
		if len(rgb.Pix) != 3*r.Dx()*r.Dy() {
			t.Fatalf("RGB has %d bytes for %v", len(rgb.Pix), r)
		}
		if m, err := toMask(img); err == nil && len(m.Pix) != r.Dx()*r.Dy() {
			t.Fatalf("mask has %d bytes for %v", len(m.Pix), r)
		}
	})
}
