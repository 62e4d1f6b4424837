package experiment

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to send the child SIGTERM when this process dies, so a
// run outlives a killed experiment only long enough to save its position.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
