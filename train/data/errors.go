package data

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, matched with errors.Is. Every error for a file is a *FileError that names it.
var (
	// ErrTooLarge: the file's bytes or its declared pixel count exceed Limits.
	ErrTooLarge = errors.New("image too large")
	// ErrNotImage: the bytes are no image format Go's standard library knows.
	ErrNotImage = errors.New("not an image (unknown format)")
	// ErrUnsupported: a real image format (BMP, TIFF) that the standard library cannot decode.
	ErrUnsupported = errors.New("image format not supported")
	// ErrCorrupt: the header parsed but the pixel data is truncated or damaged.
	ErrCorrupt = errors.New("corrupt or truncated image")
	// ErrSizeMismatch: a mask's size differs from its image's.
	ErrSizeMismatch = errors.New("mask size differs from image size")
	// ErrLabelCoded: a mask holds only 0 and one small value (0/1 label maps), which the ≥128
	// threshold would silently turn into an empty mask.
	ErrLabelCoded = errors.New("mask looks label-coded (values 0 and k < 128)")
)

// FileError reports a problem with one file, in the style of io/fs.PathError.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return "data: " + e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

func fileErr(path string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) && fe.Path == path {
		return err
	}
	return &FileError{Path: path, Err: err}
}

// PairingError lists every orphan and ambiguous file of a dataset folder at once, so a user can
// fix them all in one go instead of meeting them one per run.
type PairingError struct {
	Dir          string
	OrphanImages []string // images with no mask (paths)
	OrphanMasks  []string // masks with no image (paths)
	Duplicates   []string // one base name with several files (e.g. a.jpg and a.png), as "name: file, file"
}

func (e *PairingError) Error() string {
	var b strings.Builder
	n := len(e.OrphanImages) + len(e.OrphanMasks) + len(e.Duplicates)
	fmt.Fprintf(&b, "data: %s: %d unpaired or ambiguous files", e.Dir, n)
	for _, p := range e.OrphanImages {
		fmt.Fprintf(&b, "\n  image without mask: %s", p)
	}
	for _, p := range e.OrphanMasks {
		fmt.Fprintf(&b, "\n  mask without image: %s", p)
	}
	for _, p := range e.Duplicates {
		fmt.Fprintf(&b, "\n  ambiguous name: %s", p)
	}
	return b.String()
}
