//go:build !unix

package badinput

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs on this platform") }
