package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// Exit codes follow BSD sysexits.h where one fits, so scripts and schedulers can react.
const (
	exitFailure     = 1
	exitUsage       = 64 // bad flags or arguments
	exitData        = 65 // bad input data: images, masks, checkpoints
	exitNoInput     = 66 // an input file or folder does not exist
	exitUnavailable = 69 // the requested device is unavailable or was lost
	exitIO          = 74 // reading or writing failed
	exitInterrupted = 130
)

// classified wraps an error with its exit code.
type classified struct {
	code int
	err  error
}

func (c classified) Error() string { return c.err.Error() }
func (c classified) Unwrap() error { return c.err }

func usageErr(err error) error  { return classified{exitUsage, err} }
func dataErr(err error) error   { return classified{exitData, err} }
func deviceErr(err error) error { return classified{exitUnavailable, err} }

// usagef formats a usage error naming a flag: usagef("--epochs", "must be at least 1, got %d", n).
func usagef(flag, format string, args ...any) error {
	return usageErr(fmt.Errorf("%s: %s", flag, fmt.Sprintf(format, args...)))
}

// exitCode chooses the exit status for err.
func exitCode(err error) int {
	var c classified
	switch {
	case errors.As(err, &c):
		return c.code
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, fs.ErrNotExist):
		return exitNoInput
	case errors.Is(err, fs.ErrPermission):
		return exitIO
	}
	return exitFailure
}
