package regtest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes btcd exit if the test binary is killed (e.g. by -timeout) before its
// Cleanup runs.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
