package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/train"
	"github.com/chnet/chnet/train/data"
)

// Exit codes as the README states them, by the error's cause however deeply it is wrapped.
func TestExitCodes(t *testing.T) {
	act := func(err error) error { return fromAction{fmt.Errorf("epoch 2 step 3: %w", err)} }
	pathErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "write", Path: "/run/.checkpoint_latest.safetensors.tmp-1", Err: errno}
	}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"flag parse error from urfave/cli", errors.New("flag provided but not defined: -bogus"), exitUsage},
		{"usagef", act(usagef("--epochs", "must be at least 1")), exitUsage},
		{"a decode error in training", act(&data.FileError{Path: "x.png", Err: data.ErrCorrupt}), exitData},
		{"a pairing error", act(&data.PairingError{Dir: "d"}), exitData},
		{"a file gone", act(&data.FileError{Path: "x.png", Err: &fs.PathError{Op: "open", Path: "x.png", Err: syscall.ENOENT}}), exitNoInput},
		{"full disk", act(pathErr(syscall.ENOSPC)), exitIO},
		{"quota", act(pathErr(syscall.EDQUOT)), exitIO},
		{"file-size limit", act(pathErr(syscall.EFBIG)), exitIO},
		{"read-only file system", act(pathErr(syscall.EROFS)), exitIO},
		{"I/O error", act(pathErr(syscall.EIO)), exitIO},
		{"permission", act(pathErr(syscall.EACCES)), exitIO},
		{"device", act(deviceErr(errors.New("lost"))), exitUnavailable},
		{"interrupted", act(context.Canceled), exitInterrupted},
		{"anything else", act(errors.New("boom")), exitFailure},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// Damage that only decoding finds — pixel data cut short — once stopped training mid-epoch with
// exit 1 (issue 9, cases 6 and 10). It is found before the first epoch: exit 65, the file named,
// no checkpoint.
func TestDecodeErrorBeforeTheFirstEpoch(t *testing.T) {
	dir := tinyData(t, 4, 32, 31)
	img := filepath.Join(dir, "images", "synth_0002.png")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, badinput.Truncated(b, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, "train", "--data", dir, "--out", out, "--epochs", "1", "--batch-size", "2", "--size", "32", "--sizes", "32", "--val-fraction", "0")
	if code != exitData || !strings.Contains(stderr, img) || !strings.Contains(stderr, "--skip-bad") {
		t.Errorf("exit %d, want %d naming %s and --skip-bad: %s", code, exitData, img, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, train.LatestName)); err == nil {
		t.Error("a checkpoint was written")
	}
}
