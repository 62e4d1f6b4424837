package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Issue 11, point 8: overlays outline the regions instead of tinting the frame. The outline of a
// square is its border ring, thick pixels wide; inside and outside stay as they were.
func TestContourIsTheRegionsEdge(t *testing.T) {
	const w, h = 12, 10
	in := make([]bool, w*h)
	for y := 2; y < 8; y++ {
		for x := 3; x < 9; x++ {
			in[y*w+x] = true
		}
	}
	for _, thick := range []int{1, 2} {
		got := contour(in, w, h, thick)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				inSq := x >= 3 && x < 9 && y >= 2 && y < 8
				edge := inSq && (x < 3+thick || x >= 9-thick || y < 2+thick || y >= 8-thick)
				if got[y*w+x] != edge {
					t.Errorf("thick %d: (%d,%d) marked %v, want %v", thick, x, y, got[y*w+x], edge)
				}
			}
		}
	}
	// Both outlines, ground truth under the prediction; everything else untouched.
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	grey := color.RGBA{100, 100, 100, 255}
	for i := 0; i < w*h; i++ {
		img.SetRGBA(i%w, i/w, grey)
	}
	gt := make([]bool, w*h)
	gt[0], gt[1] = true, true // a region at the top-left corner: all edge
	drawContours(img, gt, in)
	if img.RGBAAt(0, 0) != gtColour || img.RGBAAt(3, 2) != predColour || img.RGBAAt(5, 5) != grey || img.RGBAAt(11, 9) != grey {
		t.Errorf("colours: gt corner %v, prediction edge %v, inside %v, outside %v", img.RGBAAt(0, 0), img.RGBAAt(3, 2), img.RGBAAt(5, 5), img.RGBAAt(11, 9))
	}
}

// predict --overlay changes only outline pixels, drawn in the prediction's colour: the red tint
// once coloured every pixel of the frame.
func TestPredictOverlayDrawsOnlyOutlines(t *testing.T) {
	ds := tinyData(t, 1, 64, 71)
	out := t.TempDir()
	src := filepath.Join(ds, "images", "synth_0000.png")
	// --threshold 0.01: an untrained network's map is above it somewhere, so a region exists.
	if code, _, stderr := runCLI(t, "predict", "-m", initCheckpoint(t, 64), "-o", out, "--overlay", "--threshold", "0.01", src); code != 0 {
		t.Fatalf("predict --overlay: exit %d\n%s", code, stderr)
	}
	a, b := readPNG(t, src), readPNG(t, filepath.Join(out, "synth_0000_overlay.png"))
	changed, total := 0, 0
	bounds := a.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			total++
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			if ar == br && ag == bg && ab == bb {
				continue
			}
			changed++
			if c := color.RGBAModel.Convert(b.At(x, y)).(color.RGBA); c != predColour {
				t.Fatalf("(%d,%d) changed to %v, not the outline colour %v", x, y, c, predColour)
			}
		}
	}
	if changed == 0 || changed > total/2 {
		t.Errorf("%d of %d pixels changed; want an outline: some, and far from all", changed, total)
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}
