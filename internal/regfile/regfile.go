// Package regfile opens input files only when they are regular files. A FIFO named like an image
// blocks open(2) until some writer appears, and /dev/zero or /dev/urandom never end: a program
// reading either hangs or exhausts memory. Open refuses them by what they are, and opens without
// blocking, so a FIFO put in place after a check cannot hang the reader either.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular reports a path that is a directory, FIFO, socket or device.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading if it is a regular file (symbolic links are followed) and returns
// it with its size.
func Open(path string) (*os.File, int64, error) {
	// O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; for a
	// regular file it changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode()))}
	}
	return f, st.Size(), nil
}

// ErrTooLarge reports a file larger than the caller's limit.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads a whole regular file of at most max bytes (max ≤ 0: no limit).
func ReadFile(path string, max int64) ([]byte, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if max > 0 && size > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, max)}
	}
	var r io.Reader = f
	if max > 0 {
		// The file may grow while it is read: one byte past the limit tells.
		r = io.LimitReader(f, max+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if max > 0 && int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, max)}
	}
	return b, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}
