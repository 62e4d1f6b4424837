package data

import (
	"errors"
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

// writeFile writes raw bytes, creating folders.
func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b strings.Builder
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b strings.Builder
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// grey makes a w×h grey image with value f(x, y).
func grey(w, h int, f func(x, y int) uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.SetGray(x, y, color.Gray{f(x, y)})
		}
	}
	return g
}

func rgbImage(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(20 * y), 77, 255})
		}
	}
	return m
}

func TestList(t *testing.T) {
	png8 := func(t *testing.T) []byte { return encodePNG(t, rgbImage(4, 3)) }
	maskPNG := func(t *testing.T) []byte {
		return encodePNG(t, grey(4, 3, func(x, y int) uint8 { return 255 * uint8(x&1) }))
	}
	maskJPG := func(t *testing.T) []byte { return encodeJPEG(t, grey(4, 3, func(x, y int) uint8 { return 255 })) }
	type file struct {
		path string
		data func(t *testing.T) []byte
	}
	cases := []struct {
		name      string
		files     []file
		skipBad   bool
		wantPairs map[string][]string // name → mask base names
		wantErr   []string            // substrings of the *PairingError
		orphans   int                 // reported orphans + duplicates
		ignored   int
	}{
		{
			name: "mixed_extensions_pair_by_base_name",
			files: []file{
				{"images/a.jpg", png8}, {"masks/a.png", maskPNG}, // content sniffed, not the extension
				{"images/12.png", png8}, {"masks/12.JPG", maskJPG},
			},
			wantPairs: map[string][]string{"a": {"a.png"}, "12": {"12.JPG"}},
		},
		{
			name: "dotfiles_resource_forks_and_notes_are_not_samples",
			files: []file{
				{"images/a.png", png8}, {"masks/a.png", maskPNG},
				{"images/._a.png", png8}, {"masks/.DS_Store", png8}, {"images/.hidden.png", png8},
				{"images/notes.txt", png8},
			},
			wantPairs: map[string][]string{"a": {"a.png"}},
			ignored:   4,
		},
		{
			name: "every_orphan_listed_at_once",
			files: []file{
				{"images/a.png", png8}, {"masks/a.png", maskPNG},
				{"images/b.png", png8}, {"images/c.jpg", png8},
				{"masks/d.png", maskPNG},
			},
			wantErr: []string{"3 unpaired", "image without mask: " + filepath.Join("images", "b.png"),
				"image without mask: " + filepath.Join("images", "c.jpg"), "mask without image: " + filepath.Join("masks", "d.png")},
			orphans: 3,
		},
		{
			name: "orphans_skipped_and_counted",
			files: []file{
				{"images/a.png", png8}, {"masks/a.png", maskPNG},
				{"images/b.png", png8}, {"masks/d.png", maskPNG},
			},
			skipBad:   true,
			wantPairs: map[string][]string{"a": {"a.png"}},
			orphans:   2,
		},
		{
			name: "ambiguous_name_is_an_error",
			files: []file{
				{"images/a.png", png8}, {"images/a.jpg", png8}, {"masks/a.png", maskPNG},
			},
			wantErr: []string{"ambiguous name: a: "},
			orphans: 1,
		},
		{
			name: "busi_masks_unioned",
			files: []file{
				{"images/benign (1).png", png8},
				{"masks/benign (1)_mask.png", maskPNG}, {"masks/benign (1)_mask_1.png", maskPNG},
				{"images/x_mask.png", png8}, {"masks/x_mask.png", maskPNG}, // exact name wins
			},
			wantPairs: map[string][]string{
				"benign (1)": {"benign (1)_mask.png", "benign (1)_mask_1.png"},
				"x_mask":     {"x_mask.png"},
			},
		},
		{
			name: "busi_suffix_without_image_is_orphan",
			files: []file{
				{"images/a.png", png8}, {"masks/a.png", maskPNG}, {"masks/b_mask_2.png", maskPNG}, {"masks/a_mask_x.png", maskPNG},
			},
			wantErr: []string{"mask without image: " + filepath.Join("masks", "a_mask_x.png"), "b_mask_2.png"},
			orphans: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeFile(t, filepath.Join(dir, f.path), f.data(t))
			}
			ds, rep, err := List(dir, ListOptions{SkipBad: tc.skipBad})
			if rep == nil {
				t.Fatalf("no report (err %v)", err)
			}
			if got := len(rep.OrphanImages) + len(rep.OrphanMasks) + len(rep.Duplicates); got != tc.orphans {
				t.Errorf("report has %d orphans/duplicates, want %d: %+v", got, tc.orphans, rep)
			}
			if len(rep.Ignored) != tc.ignored {
				t.Errorf("ignored %v, want %d", rep.Ignored, tc.ignored)
			}
			if tc.wantErr != nil {
				var pe *PairingError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want *PairingError", err)
				}
				// Paths relative to the folder, so the test does not depend on TempDir's name.
				msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
				for _, s := range tc.wantErr {
					if !strings.Contains(msg, s) {
						t.Errorf("error lacks %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, p := range ds.Pairs {
				for _, m := range p.Masks {
					got[p.Name] = append(got[p.Name], filepath.Base(m))
				}
			}
			if len(got) != len(tc.wantPairs) {
				t.Fatalf("pairs %v, want %v", got, tc.wantPairs)
			}
			for n, ms := range tc.wantPairs {
				if !slices.Equal(got[n], ms) {
					t.Errorf("%s: masks %v, want %v", n, got[n], ms)
				}
			}
			if !slices.IsSorted(ds.Names()) {
				t.Errorf("names not sorted: %v", ds.Names())
			}
		})
	}
}

func TestListMissingFolders(t *testing.T) {
	_, _, err := List(t.TempDir(), ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "images/ and masks/") {
		t.Fatalf("err = %v", err)
	}
}

func TestBUSIUnion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "images/b.png"), encodePNG(t, rgbImage(4, 2)))
	writeFile(t, filepath.Join(dir, "masks/b_mask.png"), encodePNG(t, grey(4, 2, func(x, y int) uint8 { return 255 * uint8(btoi(x == 0)) })))
	writeFile(t, filepath.Join(dir, "masks/b_mask_1.png"), encodePNG(t, grey(4, 2, func(x, y int) uint8 { return 255 * uint8(btoi(x == 3)) })))
	ds, _, err := List(dir, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := LoadPair(ds.Pairs[0], Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{1, 0, 0, 1, 1, 0, 0, 1}
	if !slices.Equal(m.Pix, want) {
		t.Fatalf("union = %v, want %v", m.Pix, want)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestListImages(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.jpg", "a.PNG", "._a.PNG", ".x.png", "readme.md"} {
		writeFile(t, filepath.Join(dir, n), []byte("x"))
	}
	imgs, ign, err := ListImages(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.PNG"), filepath.Join(dir, "b.jpg")}
	if !slices.Equal(imgs, want) || len(ign) != 3 {
		t.Fatalf("images %v ignored %v", imgs, ign)
	}
	one, _, err := ListImages(want[0])
	if err != nil || !slices.Equal(one, want[:1]) {
		t.Fatalf("single file: %v %v", one, err)
	}
	if _, _, err := ListImages(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing path: no error")
	}
}

func TestSubset(t *testing.T) {
	ds := &Dataset{Dir: "d", Pairs: []Pair{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	s, err := ds.Subset([]string{"c", "a"})
	if err != nil || !slices.Equal(s.Names(), []string{"c", "a"}) {
		t.Fatalf("%v %v", s, err)
	}
	if _, err := ds.Subset([]string{"a", "zz"}); err == nil || !strings.Contains(err.Error(), "zz") {
		t.Fatalf("unknown name: %v", err)
	}
}
