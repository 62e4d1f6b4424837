package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Link gives dst src's file without a second copy of its bytes; a later atomic write of src
// leaves dst as it was, and no temporary is left behind (issue 11, point 10: the final and
// latest checkpoints were identical 70 MB copies).
func TestLinkSharesTheFileUntilSrcIsReplaced(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "latest"), filepath.Join(dir, "final")
	if err := Write(src, []byte("epoch 4")); err != nil {
		t.Fatal(err)
	}
	if err := Write(dst, []byte("older")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call finds dst already linked
		if err := Link(dst, src); err != nil {
			t.Fatal(err)
		}
		a, _ := os.Stat(src)
		b, _ := os.Stat(dst)
		if !os.SameFile(a, b) {
			t.Fatal("dst is not a link to src")
		}
		if es, _ := os.ReadDir(dir); len(es) != 2 {
			t.Fatalf("%d entries in the folder, want src and dst only", len(es))
		}
	}
	if err := Write(src, []byte("epoch 5")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "epoch 4" {
		t.Fatalf("dst holds %q after src was replaced, want its own epoch 4", b)
	}
	if err := Link(filepath.Join(dir, "x"), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("linking a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("linking a missing file created dst")
	}
}
