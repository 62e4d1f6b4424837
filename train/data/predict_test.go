package data

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGrey(t *testing.T) {
	// torchvision: (p·255).byte() truncates: 0.999 → 254.745 → 254, 0.5 → 127.5 → 127,
	// 0.00392 → 0.9996 → 0; out-of-range values clamp, NaN → 0.
	in := []float32{0, 0.5, 0.999, 1, 1.5, -0.2, float32(math.NaN()), float32(math.Inf(1)), 0.00392}
	want := []uint8{0, 127, 254, 255, 255, 0, 0, 255, 0}
	if got := Grey(in); !slices.Equal(got, want) {
		t.Fatalf("Grey = %v, want %v", got, want)
	}
}

func TestWriteGreyPNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "case1.png")
	writeFile(t, path, []byte("old contents"))
	pix := []uint8{0, 50, 100, 150, 200, 255}
	if err := WriteGreyPNG(path, 3, 2, pix); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	got := toRGB(img)
	for i, v := range pix {
		if got.Pix[3*i] != v {
			t.Fatalf("pixel %d = %d, want %d", i, got.Pix[3*i], v)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	if err := WriteGreyPNG(path, 3, 3, pix); err == nil {
		t.Fatal("wrong pixel count accepted")
	}
	if err := WriteGreyPNG(filepath.Join(dir, "no", "such", "dir.png"), 3, 2, pix); err == nil {
		t.Fatal("missing folder accepted")
	}
}

func TestLoadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frame 7.jpg")
	writeFile(t, path, encodePNG(t, rgbImage(30, 20)))
	in, err := LoadInput(path, 16, Stats{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if in.W != 30 || in.H != 20 || in.Size != 16 || in.Name != "frame 7" || len(in.Pix) != 3*16*16 {
		t.Fatalf("input %+v", in)
	}
	// Blue is constant 77 in rgbImage: after any resize it is 77, normalised with ImageNet.
	want := float32((77 - 103.53) / 57.375)
	for _, v := range in.Pix[2*256:] {
		if v != want {
			t.Fatalf("blue = %v, want %v", v, want)
		}
	}
	back, err := ResizeBack(make([]float32, 256), 16, in.W, in.H)
	if err != nil || len(back) != 30*20 {
		t.Fatalf("ResizeBack: %d values, %v", len(back), err)
	}
	if _, err := LoadInput(path, 0, Stats{}, Limits{}); err == nil {
		t.Fatal("size 0 accepted")
	}
}
