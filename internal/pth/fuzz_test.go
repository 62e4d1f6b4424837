package pth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Read, seeded with every fixture (valid and hostile):
// it must never panic, every error must carry exactly one class, and whatever loads must be
// self-consistent.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pth")
	if len(files) == 0 {
		f.Fatal("no seed fixtures in testdata")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := readBytes(b)
		if err != nil {
			n := 0
			for _, class := range []error{ErrCorrupt, ErrForbidden, ErrLimit, ErrUnsupported, ErrNotStateDict} {
				if errors.Is(err, class) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error in %d classes: %v", n, err)
			}
			return
		}
		if len(sd.Keys) != len(sd.Tensors) {
			t.Fatalf("%d keys, %d tensors", len(sd.Keys), len(sd.Tensors))
		}
		for _, k := range sd.Keys {
			tn, ok := sd.Tensors[k]
			if !ok {
				t.Fatalf("key %q has no tensor", k)
			}
			n := 1
			for _, d := range tn.Shape {
				if d < 0 {
					t.Fatalf("%q: shape %v", k, tn.Shape)
				}
				n *= d
			}
			if len(tn.F32)+len(tn.I64) != n || (tn.F32 != nil && tn.I64 != nil) {
				t.Fatalf("%q: shape %v but %d floats and %d ints", k, tn.Shape, len(tn.F32), len(tn.I64))
			}
		}
	})
}
