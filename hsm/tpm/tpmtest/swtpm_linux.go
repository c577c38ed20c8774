package tpmtest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes swtpm exit if the test binary is killed (e.g. by -timeout) before its
// Cleanup runs.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
