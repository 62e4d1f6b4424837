package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/gif"
	"slices"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
)

// imageSeeds are the corpus of FuzzImageLoad: every layout chnet reads (8- and 16-bit grey,
// grey+alpha, RGB, RGBA, paletted, JPEG, GIF) and the bad files of internal/badinput.
func imageSeeds() [][]byte {
	g16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(i * 40)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.RGBA{128, 0, 0, 255}, color.White})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	ga := image.NewNRGBA(image.Rect(0, 0, 3, 3))
	for i := range ga.Pix {
		ga.Pix[i] = uint8(i * 7)
	}
	var gb bytes.Buffer
	gif.Encode(&gb, pal, nil)
	png := badinput.PNG(badinput.Noise(5, 4, 1))
	return [][]byte{
		png, badinput.PNG(badinput.Disc(6, 6)), badinput.PNG(g16), badinput.PNG(pal), badinput.PNG(ga),
		badinput.JPEG(badinput.Noise(9, 7, 2)), badinput.JPEG(badinput.Disc(8, 8)), gb.Bytes(),
		badinput.PNGHeader(100000, 100000), badinput.JPEGHeader(65000, 65000), badinput.GIFHeader(65000, 65000),
		badinput.PNGHeader(0, 10), badinput.Truncated(png, 0.6), []byte("BM\x00\x00"), []byte("II*\x00"), nil,
	}
}

// FuzzImageLoad: the header gate, the decoders and both conversions (image and mask) never
// panic and never allocate past the pixel cap, whatever the bytes (reliability.md §1.5); and the
// header check (Header, which the pre-flight runs) accepts every file that decodes, with its size.
func FuzzImageLoad(f *testing.F) {
	badinput.Corpus(f, "FuzzImageLoad", imageSeeds())
	lim := Limits{MaxPixels: 1 << 20, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodeBytes(b, lim)
		_, cfg, herr := config(b, bufio.NewReader(bytes.NewReader(b)), lim)
		if err != nil {
			return
		}
		r := img.Bounds()
		if herr != nil || cfg.Width != r.Dx() || cfg.Height != r.Dy() {
			t.Fatalf("decodes to %v, but the header check says %v, %dx%d", r, herr, cfg.Width, cfg.Height)
		}
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

// FuzzLoadSplits: splits.json is read when a run resumes; whatever it holds, reading it never
// panics, and what is accepted is a partition of the dataset in every fold.
func FuzzLoadSplits(f *testing.F) {
	all := names(7)
	var seeds [][]byte
	for _, mk := range []func() (*Splits, error){
		func() (*Splits, error) { return KFold(all, 3, 1) },
		func() (*Splits, error) { return HoldOut(all, 0.3, 2) },
		func() (*Splits, error) { return NoValidation(all, 3) },
	} {
		s, err := mk()
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(s)
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte(`{"seed":1,"k":2,"folds":[{"train":["case_000"],"val":["case_000"]}]}`),
		[]byte(`{"seed":1,"k":1,"val_fraction":0.5,"folds":[],"extra":1}`), []byte(`{"k":-1}`), []byte(`null`))
	badinput.Corpus(f, "FuzzLoadSplits", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSplits(b, "splits.json", all)
		if err != nil {
			return
		}
		for k := range s.Folds {
			fold, err := s.Fold(k)
			if err != nil {
				t.Fatalf("fold %d of %d: %v", k, len(s.Folds), err)
			}
			got := slices.Sorted(slices.Values(append(slices.Clone(fold.Train), fold.Val...)))
			if !slices.Equal(got, all) {
				t.Fatalf("fold %d is not a partition: %v", k, got)
			}
		}
	})
}
