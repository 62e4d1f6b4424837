package metrics

import (
	"bytes"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readerColours are the test colours; the expected grey levels below were obtained by writing
// the same images with Go's encoders and reading them back with OpenCV 4.6.0's
// cv2.imread(path, cv2.IMREAD_GRAYSCALE) (Debian python3-opencv).
var readerColours = []color.NRGBA{
	{194, 130, 95, 255}, {10, 200, 30, 255}, {255, 0, 0, 255}, {0, 0, 255, 255},
	{77, 77, 77, 255}, {128, 129, 127, 255}, {250, 251, 3, 255}, {1, 2, 3, 255},
}

// cvtColor's (4899R + 9617G + 1868B + 8192) >> 14 would give 124 and 2 at indexes 1 and 7:
// OpenCV's PNG reader does not use it.
var cv2GreyOf8bitColours = []uint8{145, 123, 76, 29, 77, 128, 222, 1}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeGrayMatchesOpenCV(t *testing.T) {
	n := len(readerColours)
	rgb := image.NewRGBA(image.Rect(0, 0, n, 1))     // written as 8-bit RGB
	nrgba := image.NewNRGBA(image.Rect(0, 0, n, 1))  // 8-bit RGBA, translucent
	rgb64 := image.NewRGBA64(image.Rect(0, 0, n, 1)) // 16-bit RGB
	pal := image.NewPaletted(image.Rect(0, 0, n, 1), nil)
	g16 := image.NewGray16(image.Rect(0, 0, n, 1))
	for i, c := range readerColours {
		rgb.Set(i, 0, c)
		nc := c
		nc.A = uint8(40 + 25*i) // OpenCV drops alpha without compositing
		nrgba.SetNRGBA(i, 0, nc)
		rgb64.SetRGBA64(i, 0, color.RGBA64{uint16(c.R)<<8 | uint16(c.G), uint16(c.G)<<8 | 0x80, uint16(c.B)<<8 | uint16(c.R), 0xffff})
		pal.Palette = append(pal.Palette, color.NRGBA{c.R, c.G, c.B, uint8(255 - 30*i)}) // with tRNS
		pal.Pix[i] = uint8(i)
		g16.SetGray16(i, 0, color.Gray16{uint16(c.R)<<8 | uint16(c.B)})
	}
	onebit, _ := hex.DecodeString("89504e470d0a1a0a0000000d49484452000000080000000201000000004defa0400000000c49444154789c63d8c4b41d0002d5016cc7323e9d0000000049454e44ae426082")

	grey := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(grey.Pix, []uint8{0, 128, 255, 7, 129, 200})
	var flat, flatGrey bytes.Buffer
	fc := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	fg := image.NewGray(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			fc.Set(x, y, readerColours[0])
			fg.SetGray(x, y, color.Gray{173})
		}
	}
	if err := jpeg.Encode(&flat, fc, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&flatGrey, fg, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		data []byte
		w, h int
		want []uint8
	}{
		{"8-bit grey", encodePNG(t, grey), 3, 2, []uint8{0, 128, 255, 7, 129, 200}},
		{"8-bit RGB", encodePNG(t, rgb), n, 1, cv2GreyOf8bitColours},
		{"8-bit RGBA", encodePNG(t, nrgba), n, 1, cv2GreyOf8bitColours},
		{"palette+tRNS", encodePNG(t, pal), n, 1, cv2GreyOf8bitColours},
		{"16-bit RGB", encodePNG(t, rgb64), n, 1, []uint8{145, 124, 76, 29, 77, 128, 223, 2}},
		{"16-bit grey", encodePNG(t, g16), n, 1, []uint8{194, 10, 255, 0, 77, 128, 250, 1}},
		{"1-bit grey (PIL)", onebit, 8, 2, []uint8{255, 0, 255, 255, 0, 0, 255, 0, 0, 255, 255, 0, 255, 0, 0, 255}},
		// A flat JPEG has only DC coefficients, which every decoder reconstructs identically.
		{"colour JPEG", flat.Bytes(), 16, 16, slices.Repeat([]uint8{145}, 256)},
		{"grey JPEG", flatGrey.Bytes(), 16, 16, slices.Repeat([]uint8{173}, 256)},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := DecodeGray(bytes.NewReader(c.data), c.name)
			if err != nil {
				t.Fatal(err)
			}
			if g.W != c.w || g.H != c.h || !slices.Equal(g.Pix, c.want) {
				t.Fatalf("got %dx%d %v, want %dx%d %v", g.W, g.H, g.Pix, c.w, c.h, c.want)
			}
		})
	}
}

func TestReadGrayErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	good := encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 4)))
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	for _, c := range []struct {
		file, data, wantMsg string
	}{
		{"truncated.png", string(good[:len(good)/2]), "corrupt"},
		{"garbage.png", "\x89PNG\r\n\x1a\nnot really", "corrupt"},
		{"bad.jpg", "\xff\xd8\xff\xe0 broken", "corrupt"},
		{"anim.gif", string(gif), "not a PNG or JPEG"},
		{"empty.png", "", "not a PNG or JPEG"},
	} {
		t.Run(c.file, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			if err := os.WriteFile(p, []byte(c.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadGray(p)
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("error %v: want one naming %s and saying %q", err, p, c.wantMsg)
			}
		})
	}
	if _, err := ReadGray(filepath.Join(dir, "missing.png")); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Fatalf("missing file: %v", err)
	}
}
