package data

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// pngHeaderOnly is a PNG signature and a valid IHDR declaring w×h RGB pixels, with no data:
// enough for image.DecodeConfig, fatal for anything that trusts it and allocates.
func pngHeaderOnly(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit truecolour
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
	return b
}

func TestDecodeBadInput(t *testing.T) {
	goodPNG := encodePNG(t, rgbImage(40, 30))
	goodJPEG := encodeJPEG(t, rgbImage(64, 48))
	cases := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"truncated_png", goodPNG[:len(goodPNG)*6/10], Limits{}, ErrCorrupt},
		{"truncated_jpeg", goodJPEG[:len(goodJPEG)/2], Limits{}, ErrCorrupt},
		{"corrupt_jpeg_marker", append([]byte{0xff, 0xd8, 0xff, 0x01}, goodJPEG[4:]...), Limits{}, ErrCorrupt},
		{"jpeg_bad_header_length", append(slices.Clone(goodJPEG[:4]), 0x00, 0x01, 0xde, 0xad), Limits{}, ErrCorrupt},
		{"text_file", []byte("id,label\n1,polyp\n"), Limits{}, ErrNotImage},
		{"empty_file", nil, Limits{}, ErrNotImage},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), Limits{}, ErrUnsupported},
		{"tiff", append([]byte("II*\x00"), make([]byte, 60)...), Limits{}, ErrUnsupported},
		{"png_declares_100000x100000", pngHeaderOnly(100000, 100000), Limits{}, ErrTooLarge},
		{"png_over_custom_pixel_cap", goodPNG, Limits{MaxPixels: 40*30 - 1}, ErrTooLarge},
		{"file_over_byte_cap", goodPNG, Limits{MaxBytes: int64(len(goodPNG)) - 1}, ErrTooLarge},
		{"png_zero_width", pngHeaderOnly(0, 10), Limits{}, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "case_"+tc.name+".png")
			writeFile(t, path, tc.data)
			for _, decode := range []func() error{
				func() error { _, err := DecodeImage(path, tc.lim); return err },
				func() error { _, err := DecodeMask(path, tc.lim); return err },
			} {
				err := decode()
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				var fe *FileError
				if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), path) {
					t.Fatalf("error does not name the file: %v", err)
				}
			}
		})
	}
}

// TestHugeHeaderDoesNotAllocate: 100000² RGB would be 30 GB; the gate must refuse it having
// allocated next to nothing.
func TestHugeHeaderDoesNotAllocate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.png")
	writeFile(t, path, pngHeaderOnly(100000, 100000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeImage(path, Limits{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10000000000 pixels") {
		t.Fatalf("err = %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("allocated %d bytes for a refused file", d)
	}
}

func TestDecodeImageConversions(t *testing.T) {
	g16 := image.NewGray16(image.Rect(0, 0, 5, 1))
	// round(v/257): 100.498 → 100, 100.502 → 101 (hand-computed).
	for x, v := range []uint16{0, 257 * 100, 257*100 + 128, 257*100 + 129, 65535} {
		g16.SetGray16(x, 0, color.Gray16{v})
	}
	rgb16 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	rgb16.SetRGBA64(0, 0, color.RGBA64{R: 65535, G: 257 * 3, B: 1000, A: 65535})
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 0}) // fully transparent: colour kept
	nrgba.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 128})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{250, 0, 9, 255}})
	pal.SetColorIndex(1, 0, 1)
	cases := []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"gray16_scaled_by_257", g16, []uint8{0, 0, 0, 100, 100, 100, 100, 100, 100, 101, 101, 101, 255, 255, 255}},
		{"rgb16_scaled_by_257", rgb16, []uint8{255, 3, 4}}, // 1000/257 = 3.89 → 4
		{"alpha_dropped", nrgba, []uint8{200, 100, 50, 10, 20, 30}},
		{"gray_replicated", grey(2, 1, func(x, y int) uint8 { return uint8(7 + x) }), []uint8{7, 7, 7, 8, 8, 8}},
		{"paletted_expanded", pal, []uint8{1, 2, 3, 250, 0, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "i.png")
			writeFile(t, path, encodePNG(t, tc.img))
			got, err := DecodeImage(path, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Pix, tc.want) {
				t.Fatalf("pixels %v, want %v", got.Pix, tc.want)
			}
		})
	}
	// JPEG: Go's decoder differs from libjpeg, so only check it is close to what was encoded.
	t.Run("jpeg_close", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "i.jpg")
		src := grey(16, 16, func(x, y int) uint8 { return 120 })
		writeFile(t, path, encodeJPEG(t, src))
		got, err := DecodeImage(path, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got.Pix {
			if v < 118 || v > 122 {
				t.Fatalf("pixel %d = %d, want ≈120", i, v)
			}
		}
	})
}

func TestDecodeMask(t *testing.T) {
	stripes := func(lo, hi uint8) *image.Gray {
		return grey(4, 1, func(x, y int) uint8 { return []uint8{lo, hi, lo, hi}[x] })
	}
	colourPal := image.NewPaletted(image.Rect(0, 0, 3, 1), color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{128, 0, 0, 255}, color.RGBA{0, 0, 127, 255}})
	colourPal.SetColorIndex(1, 0, 1)
	colourPal.SetColorIndex(2, 0, 2)
	greyAlpha := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	greyAlpha.SetNRGBA(0, 0, color.NRGBA{255, 255, 255, 0})
	greyAlpha.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 255})
	red := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	red.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 255})
	red.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 255})
	m16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	m16.SetGray16(1, 0, color.Gray16{65535})
	m16.SetGray16(2, 0, color.Gray16{32767}) // 127.498 → 127: background
	lab16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	lab16.SetGray16(1, 0, color.Gray16{1})
	cases := []struct {
		name    string
		img     image.Image
		jpeg    bool
		want    []uint8
		wantErr error
	}{
		{"binary_0_255", stripes(0, 255), false, []uint8{0, 1, 0, 1}, nil},
		{"threshold_127_128", grey(3, 1, func(x, y int) uint8 { return []uint8{0, 127, 128}[x] }), false, []uint8{0, 0, 1}, nil},
		{"clinicdb_faint_region", grey(3, 1, func(x, y int) uint8 { return []uint8{11, 255, 0}[x] }), false, []uint8{0, 1, 0}, nil},
		{"paletted_colour_labels", colourPal, false, []uint8{0, 1, 0}, nil}, // (128,0,0) kept, (0,0,127) not
		{"grey_alpha_ignored", greyAlpha, false, []uint8{1, 0}, nil},
		{"rgba_red_annotation", red, false, []uint8{1, 0}, nil},
		{"gray16", m16, false, []uint8{0, 1, 0}, nil},
		{"label_coded_0_1", stripes(0, 1), false, nil, ErrLabelCoded},
		{"label_coded_16bit_0_1", lab16, false, nil, ErrLabelCoded},
		{"all_background", stripes(0, 0), false, []uint8{0, 0, 0, 0}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.png")
			writeFile(t, path, encodePNG(t, tc.img))
			got, err := DecodeMask(path, Limits{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want %v naming %s", err, tc.wantErr, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Pix, tc.want) {
				t.Fatalf("mask %v, want %v", got.Pix, tc.want)
			}
		})
	}
	// JPEG mask: compression noise around the edges (Kvasir), binarised back to the original.
	t.Run("jpeg_noisy", func(t *testing.T) {
		src := grey(32, 32, func(x, y int) uint8 { return 255 * uint8(btoi((x-16)*(x-16)+(y-16)*(y-16) < 100)) })
		path := filepath.Join(t.TempDir(), "m.jpg")
		writeFile(t, path, encodeJPEG(t, src))
		got, err := DecodeMask(path, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got.Pix {
			if v != src.Pix[i]/255 {
				t.Fatalf("pixel %d = %d, want %d", i, v, src.Pix[i]/255)
			}
		}
	})
}

func TestLoadPairSizeMismatch(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "images", "a.png")
	mask := filepath.Join(dir, "masks", "a.png")
	writeFile(t, img, encodePNG(t, rgbImage(8, 6)))
	writeFile(t, mask, encodePNG(t, grey(6, 8, func(x, y int) uint8 { return 0 })))
	_, _, err := LoadPair(Pair{Name: "a", Image: img, Masks: []string{mask}}, Limits{})
	var fe *FileError
	if !errors.Is(err, ErrSizeMismatch) || !errors.As(err, &fe) || fe.Path != mask || !strings.Contains(err.Error(), img) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "mask 6×8, image") || !strings.Contains(err.Error(), "is 8×6") {
		t.Fatalf("sizes not reported: %v", err)
	}
}
