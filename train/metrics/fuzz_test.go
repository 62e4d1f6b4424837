package metrics

import (
	"bytes"
	"image"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
)

// FuzzDecodeGray: eval and test read every map and mask through DecodeGray. Whatever the bytes,
// it never panics and never allocates past the pixel limit (a 1 KB PNG declaring 100000² once
// ended eval with Go's fatal out-of-memory: issue 9, case 7).
func FuzzDecodeGray(f *testing.F) {
	g16 := image.NewGray16(image.Rect(0, 0, 3, 3))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(i * 29)
	}
	png := badinput.PNG(badinput.Disc(8, 8))
	badinput.Corpus(f, "FuzzDecodeGray", [][]byte{
		png, badinput.PNG(badinput.Noise(5, 3, 1)), badinput.PNG(g16), badinput.JPEG(badinput.Disc(8, 8)),
		badinput.JPEG(badinput.Noise(6, 6, 2)), badinput.PNGHeader(100000, 100000), badinput.JPEGHeader(65000, 65000),
		badinput.Truncated(png, 0.5), badinput.GIFHeader(4, 4), nil,
	})
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGray(bytes.NewReader(b), "fuzz", limit)
		if err != nil {
			return
		}
		if g.W < 1 || g.H < 1 || int64(g.W)*int64(g.H) > limit || len(g.Pix) != g.W*g.H {
			t.Fatalf("%dx%d map with %d pixels (limit %d)", g.W, g.H, len(g.Pix), limit)
		}
	})
}
