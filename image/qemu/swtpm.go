package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Swtpm is a software TPM 2.0 serving one VM over a unix socket. Its state directory survives
// the process, so a VM can be powered off and on again with the same TPM.
type Swtpm struct {
	Socket string
	cmd    *exec.Cmd
}

// StartSwtpm starts swtpm with its state in stateDir. It exits by itself when QEMU
// disconnects; Stop ends it otherwise.
func StartSwtpm(stateDir string) (*Swtpm, error) {
	if _, err := exec.LookPath("swtpm"); err != nil {
		return nil, fmt.Errorf("start swtpm: %w (install swtpm)", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(stateDir, "swtpm.sock")
	os.Remove(sock)
	cmd := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+stateDir,
		"--ctrl", "type=unixio,path="+sock, "--log", "level=1,file="+filepath.Join(stateDir, "swtpm.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return &Swtpm{Socket: sock, cmd: cmd}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("start swtpm: no socket at %s", sock)
}

// Stop ends swtpm if it still runs.
func (s *Swtpm) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}
