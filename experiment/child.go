package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
)

// Launcher runs one chnet command (a `train`) to its end.
type Launcher interface {
	Launch(ctx context.Context, args []string) error
}

// ErrInterrupted is returned when a run stopped on a signal, having saved its position (chnet
// train exits 130 then). It wraps context.Canceled.
var ErrInterrupted = fmt.Errorf("interrupted: %w", context.Canceled)

// ErrRejected is returned when chnet refused a run's command line (exit status 64): the
// settings are wrong for every run, so the experiment stops instead of failing each in turn.
var ErrRejected = errors.New("chnet train rejected the run's settings")

// chnet's exit statuses after a usage error and after Ctrl-C or SIGTERM.
const (
	exitUsage       = 64
	exitInterrupted = 130
)

// Exec launches runs as child processes of a chnet binary, so each is an ordinary `chnet train`
// with its own memory and its own run folder and log, exactly as a user would start it.
type Exec struct {
	Path   string   // the chnet executable (os.Executable for the running one)
	Global []string // global flags placed before the command (--backend …)
	Env    []string // the child's environment; nil inherits this process's
	Stdout io.Writer
	Stderr io.Writer
}

// Launch runs `Path Global... args...` and waits for it. When ctx is cancelled the child gets
// SIGINT, saves its position and exits, and Launch returns ErrInterrupted. Where the platform
// allows (Linux), the child also gets SIGTERM if this process dies without cleaning up, so a
// killed experiment never leaves a run training on behind it.
func (e *Exec) Launch(ctx context.Context, args []string) error {
	cmd := exec.Command(e.Path, append(slices.Clone(e.Global), args...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = e.Env, e.Stdout, e.Stderr
	setParentDeathSignal(cmd)
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the thread that started the child: keep that thread
		// for the child's lifetime.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", e.Path, err)
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		if cmd.Process.Signal(os.Interrupt) != nil {
			_ = cmd.Process.Kill() // no SIGINT on this platform
		}
		err = <-done
		if err == nil {
			return nil // it finished before the signal took effect
		}
		return ErrInterrupted
	}
	var xe *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &xe) && xe.ExitCode() == exitInterrupted:
		return ErrInterrupted
	case errors.As(err, &xe) && xe.ExitCode() == exitUsage:
		return fmt.Errorf("%w (chnet %s)", ErrRejected, strings.Join(args, " "))
	}
	return fmt.Errorf("chnet %s: %w", strings.Join(args[:min(len(args), 3)], " "), err)
}
