package data

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ToNNUNet rewrites a folder written by WriteSynthetic (images/, masks/ of 0/255) into nnU-Net's
// raw 2-D layout: imagesTr/<case>_0000.png, labelsTr/<case>.png of 0/1, dataset.json.
func toNNUNet(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"imagesTr", "labelsTr"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "images"))
	for _, e := range ents {
		stem := strings.TrimSuffix(e.Name(), ".png")
		if err := os.Rename(filepath.Join(dir, "images", e.Name()), filepath.Join(dir, "imagesTr", stem+"_0000.png")); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, "masks", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := m.Bounds()
		g := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, _, _, _ := m.At(x, y).RGBA(); r > 0x8000 {
					g.Pix[(y-b.Min.Y)*g.Stride+x-b.Min.X] = 1
				}
			}
		}
		out, err := os.Create(filepath.Join(dir, "labelsTr", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(out, g); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	os.RemoveAll(filepath.Join(dir, "images"))
	os.RemoveAll(filepath.Join(dir, "masks"))
	js := `{"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "polyp": 1}, "numTraining": 3, "file_ending": ".png"}`
	if err := os.WriteFile(filepath.Join(dir, "dataset.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 11, point 11: besides images/ + masks/, chnet reads PraNet's image/ + mask/ and
// nnU-Net's raw 2-D layout (cases by the _0000 channel suffix, 0/1 label maps), with the same
// pairs and the same masks as the original folder.
func TestLayoutsRead(t *testing.T) {
	ref := filepath.Join(t.TempDir(), "ref")
	if err := WriteSynthetic(ref, 3, 32, 32, 5); err != nil {
		t.Fatal(err)
	}
	want, _, err := List(ref, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pranet := filepath.Join(t.TempDir(), "pranet")
	nnunet := filepath.Join(t.TempDir(), "nnunet")
	for _, d := range []string{pranet, nnunet} {
		if err := WriteSynthetic(d, 3, 32, 32, 5); err != nil {
			t.Fatal(err)
		}
	}
	os.Rename(filepath.Join(pranet, "images"), filepath.Join(pranet, "image"))
	os.Rename(filepath.Join(pranet, "masks"), filepath.Join(pranet, "mask"))
	toNNUNet(t, nnunet)
	for _, tc := range []struct {
		dir, layout string
	}{{pranet, "image/mask"}, {nnunet, "nnU-Net"}} {
		lay, err := DetectLayout(tc.dir)
		if err != nil || lay.Name != tc.layout {
			t.Fatalf("%s: layout %v, %v; want %s", tc.dir, lay, err, tc.layout)
		}
		ds, _, err := List(tc.dir, ListOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.layout, err)
		}
		if len(ds.Pairs) != len(want.Pairs) {
			t.Fatalf("%s: %d pairs, want %d", tc.layout, len(ds.Pairs), len(want.Pairs))
		}
		for i, p := range ds.Pairs {
			if p.Name != want.Pairs[i].Name || p.LabelMap != (tc.layout == "nnU-Net") {
				t.Errorf("%s: pair %d is %+v, want the name %s", tc.layout, i, p, want.Pairs[i].Name)
			}
			_, got, err := LoadPair(p, Limits{})
			if err != nil {
				t.Fatalf("%s: %v", tc.layout, err)
			}
			_, ref, _ := LoadPair(want.Pairs[i], Limits{})
			fg := 0
			for j := range ref.Pix {
				if got.Pix[j] != ref.Pix[j] {
					t.Fatalf("%s: %s: mask pixel %d is %d, the original's %d", tc.layout, p.Name, j, got.Pix[j], ref.Pix[j])
				}
				fg += int(ref.Pix[j])
			}
			if fg == 0 {
				t.Fatalf("%s: an empty mask shows nothing", p.Name)
			}
		}
	}
	// A second channel file is refused, naming it; so are two foreground labels.
	os.WriteFile(filepath.Join(nnunet, "imagesTr", "synth_0000_0001.png"), nil, 0o644)
	if _, _, err := List(nnunet, ListOptions{}); err == nil || !strings.Contains(err.Error(), "synth_0000_0001.png") {
		t.Errorf("a second channel: %v", err)
	}
	os.Remove(filepath.Join(nnunet, "imagesTr", "synth_0000_0001.png"))
	os.WriteFile(filepath.Join(nnunet, "dataset.json"), []byte(`{"labels": {"background": 0, "polyp": 1, "tool": 2}}`), 0o644)
	if _, _, err := List(nnunet, ListOptions{}); err == nil || !strings.Contains(err.Error(), "one foreground class") {
		t.Errorf("two foreground labels: %v", err)
	}
	if _, _, err := List(t.TempDir(), ListOptions{}); err == nil || !strings.Contains(err.Error(), "imagesTr") {
		t.Errorf("no layout: %v", err)
	}
}
