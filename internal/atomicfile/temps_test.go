package atomicfile

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const childEnv = "ATOMICFILE_TEST_WRITE"

// In child mode the test binary starts an atomic write of $ATOMICFILE_TEST_WRITE and stalls in
// the middle of it, to be killed there.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		WriteFunc(path, func(w io.Writer) error {
			w.Write(make([]byte, 1<<21)) // past the buffer: bytes reach the temporary
			time.Sleep(time.Minute)
			return nil
		})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".checkpoint_latest.safetensors.tmp-123456": true, ".x.png.tmp-1": true,
		"checkpoint_latest.safetensors": false, ".x.tmp-": false, ".x.tmp-12a": false, "x.tmp-12": false, ".tmp-12": false,
	} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

// A write killed before its rename leaves its temporary (issue 9, case 9: up to 70 MB each,
// never cleaned). RemoveTemps deletes exactly such files, to the depth asked.
func TestRemoveTempsLeftByAKilledWrite(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "checkpoint_latest.safetensors")
	if err := Write(target, []byte("previous")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+target)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var temps []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		temps, _ = filepath.Glob(filepath.Join(dir, ".checkpoint_latest.safetensors.tmp-*"))
		if len(temps) == 1 {
			if st, err := os.Stat(temps[0]); err == nil && st.Size() > 0 {
				break
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(temps) != 1 {
		t.Fatalf("the child's write left %v", temps)
	}
	if b, _ := os.ReadFile(target); string(b) != "previous" {
		t.Fatalf("the killed write changed the target: %q", b)
	}
	sub := filepath.Join(dir, "test", "x", "maps")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(sub, ".a.png.tmp-42")
	keep := []string{filepath.Join(dir, ".notes.tmp-draft"), filepath.Join(dir, "x.tmp-1")}
	for _, p := range append(keep, deep) {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemps(dir, 2)
	if err != nil || !slices.Equal(removed, temps) {
		t.Fatalf("RemoveTemps(depth 2) = %v, %v; want %v", removed, err, temps)
	}
	removed, err = RemoveTemps(dir, 3)
	if err != nil || !slices.Equal(removed, []string{deep}) {
		t.Fatalf("RemoveTemps(depth 3) = %v, %v; want %v", removed, err, deep)
	}
	for _, p := range append(keep, target) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed", p)
		}
	}
	if _, err := RemoveTemps(filepath.Join(dir, "missing"), 0); err == nil {
		t.Error("RemoveTemps of a missing folder succeeded")
	}
}
