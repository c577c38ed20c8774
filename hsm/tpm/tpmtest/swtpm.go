// Package tpmtest runs swtpm, the software TPM 2.0, for tests: one process per test on free
// loopback ports, stopped in Cleanup, rebootable on the same state like a power cycle.
//
// It is for tests only, in this module's packages that need a real TPM (hsm/tpm, hsm, the
// appliance's web UI): it starts external processes (swtpm) and never belongs in a
// production binary. [Sim.Dial] gives the connection to hand to tpm.New; swtpm serves one
// connection at a time, so open the next only after the previous one is done with.
package tpmtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Sim is one swtpm process serving the TPM 2.0 command protocol on a loopback TCP port,
// with its state in a per-test directory. Rebooting it (orderly shutdown, restart on the same
// state) resets the PCRs but keeps the TPM's seeds, like a power cycle of the box.
type Sim struct {
	tb     testing.TB
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
	conns  []transport.TPMCloser
}

// Start starts swtpm for the test and stops it in Cleanup. Without swtpm the test is
// skipped, unless ANYA_REQUIRE_ALL=1 (then it fails).
func Start(tb testing.TB) *Sim {
	tb.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
			tb.Fatalf("swtpm is required (ANYA_REQUIRE_ALL=1): %v; apt-get install swtpm swtpm-tools", err)
		}
		tb.Skip("swtpm not installed (apt-get install swtpm swtpm-tools)")
	}
	s := &Sim{tb: tb, dir: tb.TempDir()}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

func (s *Sim) start() {
	s.tb.Helper()
	var lastErr error
	for range 10 {
		port, err := freePortPair()
		if err != nil {
			lastErr = err
			continue
		}
		s.out = &syncBuffer{}
		cmd := exec.Command("swtpm", "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,bindaddr=127.0.0.1,port=%d", port),
			"--ctrl", fmt.Sprintf("type=tcp,bindaddr=127.0.0.1,port=%d", port+1),
			"--flags", "not-need-init,startup-clear",
			"--tpmstate", "dir="+s.dir)
		cmd.Stdout, cmd.Stderr = s.out, s.out
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			s.tb.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if waitListening(port, exited) {
			s.cmd, s.port, s.exited = cmd, port, exited
			return
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("swtpm did not listen on %d: %s", port, s.out.String())
	}
	s.tb.Fatalf("start swtpm: %v", lastErr)
}

// Dial opens a new connection to the command port; it is closed by stop or reboot.
func (s *Sim) Dial() transport.TPMCloser {
	s.tb.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		s.tb.Fatalf("dial swtpm: %v", err)
	}
	t := transport.FromReadWriteCloser(deadlineConn{c})
	s.conns = append(s.conns, t)
	return t
}

// deadlineConn turns a hung simulator into a test failure instead of a test timeout.
type deadlineConn struct{ net.Conn }

func (c deadlineConn) Read(p []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c.Conn.Read(p)
}

// Reboot shuts the TPM down orderly and restarts it on the same state: PCRs start from zero.
// Connections opened before are closed (swtpm serves one at a time).
func (s *Sim) Reboot() {
	s.tb.Helper()
	s.closeConns()
	t := s.Dial()
	if _, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(t); err != nil {
		s.tb.Fatalf("TPM2_Shutdown: %v", err)
	}
	s.Stop()
	s.start()
}

func (s *Sim) closeConns() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

func (s *Sim) Stop() {
	s.closeConns()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Extend extends a PCR with a measurement, as firmware or the kernel would.
func (s *Sim) Extend(t transport.TPM, pcr int, measurement []byte) {
	s.tb.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: measurement}}},
	}.Execute(t)
	if err != nil {
		s.tb.Fatalf("extend PCR %d: %v", pcr, err)
	}
}

func freePortPair() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
	l.Close()
	if err != nil {
		return 0, err
	}
	l2.Close()
	return port, nil
}

func waitListening(port int, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
			c.Close()
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
