//go:build unix

package data

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chnet/chnet/internal/regfile"
)

// A FIFO named like an image once blocked the loader in open(2) for good, with SIGINT and
// SIGTERM unanswered (issue 9, case 8): it must fail at once, naming the file.
func TestDecodeRefusesFIFOAndDevices(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, err := DecodeImage(p, Limits{})
			done <- err
		}()
		select {
		case err := <-done:
			var fe *FileError
			if !errors.Is(err, regfile.ErrNotRegular) || !errors.As(err, &fe) || fe.Path != p {
				t.Errorf("%s: %v, want a *FileError for it wrapping ErrNotRegular", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: DecodeImage still blocked after 5 s", p)
		}
	}
	if _, err := os.Stat(fifo); err != nil {
		t.Fatal(err)
	}
}
