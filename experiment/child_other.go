//go:build !linux

package experiment

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death signal: there a run
// keeps going if its experiment is killed, and the folder lock is released with the experiment.
func setParentDeathSignal(*exec.Cmd) {}
