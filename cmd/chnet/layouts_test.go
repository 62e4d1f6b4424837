package main

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nnunetData writes n synthetic samples in nnU-Net's raw 2-D layout: imagesTr/<case>_0000.png,
// labelsTr/<case>.png holding 0/1, dataset.json.
func nnunetData(t *testing.T, n, s int, seed uint64) string {
	t.Helper()
	src := tinyData(t, n, s, seed)
	dir := filepath.Join(t.TempDir(), "Dataset001_Polyp")
	for _, d := range []string{"imagesTr", "labelsTr"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(src, "images"))
	for _, e := range ents {
		stem := strings.TrimSuffix(e.Name(), ".png")
		if err := os.Rename(filepath.Join(src, "images", e.Name()), filepath.Join(dir, "imagesTr", stem+"_0000.png")); err != nil {
			t.Fatal(err)
		}
		m := readPNG(t, filepath.Join(src, "masks", e.Name()))
		b := m.Bounds()
		g := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, _, _, _ := m.At(x, y).RGBA(); r > 0x8000 {
					g.Pix[(y-b.Min.Y)*g.Stride+x-b.Min.X] = 1
				}
			}
		}
		f, err := os.Create(filepath.Join(dir, "labelsTr", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, g)
		f.Close()
	}
	os.WriteFile(filepath.Join(dir, "dataset.json"), []byte(`{"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "polyp": 1}, "file_ending": ".png"}`), 0o644)
	return dir
}

// Issue 11, point 11: train reads nnU-Net's raw 2-D layout, and test and predict PraNet's
// image/ + mask/; the masks' foreground is found (a Dice above 0 needs a non-empty ground truth).
func TestTrainAndTestOnOtherLayouts(t *testing.T) {
	train := nnunetData(t, 4, 32, 81)
	test := tinyData(t, 2, 32, 82)
	os.Rename(filepath.Join(test, "images"), filepath.Join(test, "image"))
	os.Rename(filepath.Join(test, "masks"), filepath.Join(test, "mask"))
	run := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, "train", "--data", train, "--test", test, "--out", run, "--epochs", "1", "--batch-size", "2",
		"--size", "32", "--sizes", "32", "--val-fraction", "0")
	if code != 0 {
		t.Fatalf("train on nnU-Net's layout, test on PraNet's: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "data: 4 training and 0 validation images") {
		t.Errorf("the nnU-Net cases were not all read:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(run, "test", "data", "metrics.json")); err != nil {
		t.Error(err)
	}
	if code, _, stderr := runCLI(t, "predict", "-m", filepath.Join(run, "checkpoint_final.safetensors"), "-o", t.TempDir(), train); code != 0 {
		t.Errorf("predict on an nnU-Net data set folder: exit %d\n%s", code, stderr)
	}
}
