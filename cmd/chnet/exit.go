package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"strings"
	"syscall"

	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

// Exit codes follow BSD sysexits.h where one fits, so scripts and schedulers can react.
const (
	exitFailure     = 1
	exitUsage       = 64 // bad flags or arguments
	exitData        = 65 // bad input data: images, masks, checkpoints
	exitNoInput     = 66 // an input file or folder does not exist
	exitUnavailable = 69 // the requested device is unavailable or was lost, or a run does not fit in it
	exitIO          = 74 // reading or writing failed: a full disk, a quota, a file-size limit, an I/O error
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

// fromAction marks an error returned by a command's action. An error without the mark came from
// urfave/cli before any action ran — an unknown flag or command, a bad flag value, a missing
// required flag — and is a usage error.
type fromAction struct{ err error }

func (a fromAction) Error() string { return a.err.Error() }
func (a fromAction) Unwrap() error { return a.err }

// markActions wraps every command's action to mark its errors, and makes flag errors usage
// errors without printing the whole help (urfave's default for sub-commands).
func markActions(cmds []*cli.Command) {
	for _, c := range cmds {
		if act := c.Action; act != nil {
			c.Action = func(ctx *cli.Context) error {
				if err := act(ctx); err != nil {
					return fromAction{err}
				}
				return nil
			}
		}
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageErr(err) }
		markActions(c.Subcommands)
	}
}

// exitCode chooses the exit status for err.
func exitCode(err error) int {
	var c classified
	var fe *data.FileError
	var pe *data.PairingError
	var errno syscall.Errno
	switch {
	case errors.As(err, &c):
		return c.code
	case !errors.As(err, new(fromAction)):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, fs.ErrNotExist):
		return exitNoInput
	case errors.As(err, &fe), errors.As(err, &pe):
		return exitData
	case errors.Is(err, fs.ErrPermission):
		return exitIO
	case errors.As(err, &errno) && ioErrno[errno]:
		return exitIO
	}
	return exitFailure
}

// ioErrno are the errors of a failing write or read rather than of a wrong request.
var ioErrno = map[syscall.Errno]bool{
	syscall.ENOSPC: true, syscall.EDQUOT: true, syscall.EFBIG: true, syscall.EIO: true, syscall.EROFS: true,
}

// message is err as printed: the flag errors of urfave/cli and Go's flag package are reworded
// to name flags as they are typed (--epochs, not -epochs or "epochs").
func message(err error) string {
	s := err.Error()
	if errors.As(err, new(fromAction)) {
		return s
	}
	if rest, ok := strings.CutPrefix(s, "No help topic for "); ok {
		return "unknown command " + rest
	}
	if rest, ok := strings.CutPrefix(s, "Required flag "); ok {
		return "missing --" + strings.Trim(strings.TrimSuffix(rest, " not set"), `"`)
	}
	if rest, ok := strings.CutPrefix(s, "Required flags "); ok {
		names := strings.Split(strings.Trim(strings.TrimSuffix(rest, " not set"), `"`), ", ")
		return "missing --" + strings.Join(names, ", --")
	}
	for _, p := range []string{"flag provided but not defined: ", "flag needs an argument: ", " for flag "} {
		if i := strings.Index(s, p+"-"); i >= 0 && !strings.HasPrefix(s[i+len(p):], "--") {
			s = s[:i+len(p)] + "-" + s[i+len(p):]
		}
	}
	return s
}
