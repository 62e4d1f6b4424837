//go:build unix

package experiment

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFolder takes an exclusive lock on an experiment folder, so two experiments never train
// the same runs at once. The kernel releases it when the process dies, however it dies.
func lockFolder(dir string) (func(), error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another chnet experiment (%s is locked: %w)", dir, path, err)
	}
	return func() { f.Close() }, nil
}
