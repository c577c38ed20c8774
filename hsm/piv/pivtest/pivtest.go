// Package pivtest gives tests a real PC/SC stack with an emulated card: it starts pcscd
// (pcsc-lite) with a private reader configuration for vsmartcard's vpcd driver, and plugs a
// [pivcard.Card] into the virtual reader, so the code under test goes through
// piv-go -> pure-Go pcscd client -> pcscd -> vpcd -> emulated card.
//
// It is for tests only, in this module's packages that need a real YubiKey stack (hsm/piv,
// the appliance's web UI): it starts an external process (pcscd, as root) and never belongs
// in a production binary. A test package that uses it calls [Stop] from its TestMain after
// m.Run.
//
// # How the stack is set up
//
//   - pcscd's socket path is compiled in (/run/pcscd/pcscd.comm), so only one daemon can run
//     at a time. Start takes an exclusive flock on /tmp/anya-pcscd-test.lock for the life of
//     the test binary, so test packages running in parallel take turns.
//   - If a pcscd already answers on the socket (a developer's or the box's own), it is used
//     as it is when it has a "Virtual PCD" reader (the card is then plugged into vpcd's
//     default port from /etc/reader.conf.d/vpcd); otherwise the test is skipped.
//   - Otherwise Start writes a reader.conf.d directory with one vpcd entry on a free TCP
//     port (vpcd then listens on that port for reader "Virtual PCD 00 00" and the next for
//     "... 00 01"), runs `pcscd --foreground --config DIR`, waits for the socket, and stops
//     the daemon (SIGTERM, then SIGKILL) when the test ends. pcscd is also given
//     Pdeathsig=SIGKILL so it dies with a crashed test binary.
//
// When pcscd or the vpcd driver is missing, or the test cannot run it (not root), the test is
// skipped — unless ANYA_REQUIRE_ALL=1, then it fails. Install them with
// `apt-get install pcscd vsmartcard-vpcd`.
package pivtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm/piv/pivcard"
	"github.com/go-piv/piv-go/v2/pcsclite"
)

// Paths of Debian's packages; env ANYA_PCSCD and ANYA_VPCD_DRIVER override them.
var (
	pcscdCandidates  = []string{"/usr/sbin/pcscd", "/usr/local/sbin/pcscd"}
	driverCandidates = []string{
		"/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
		"/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
	}
	systemVPCDConf = "/etc/reader.conf.d/vpcd"
)

const lockPath = "/tmp/anya-pcscd-test.lock"

// Env is a running PC/SC stack with a vpcd reader.
type Env struct {
	// Reader is the PC/SC name of the vpcd reader the card goes into.
	Reader string
	// CardAddr is where that reader's vpcd driver waits for the card.
	CardAddr string
	// Log holds the output of the pcscd this Env started (empty when reusing one).
	Log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	shared     *Env
	sharedErr  error
	sharedSkip string
	sharedOnce sync.Once
	lockFile   *os.File
	daemon     *exec.Cmd
	daemonDone chan struct{}
)

// unavailable skips the test, or fails it under ANYA_REQUIRE_ALL=1.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
		tb.Fatalf("PC/SC test stack unavailable (ANYA_REQUIRE_ALL=1): %s", msg)
	}
	tb.Skipf("PC/SC test stack unavailable: %s (apt-get install pcscd vsmartcard-vpcd; run as root)", msg)
}

// Start returns the shared PC/SC stack of this test binary, starting it on first use. Call
// Stop from TestMain after m.Run to shut the daemon down.
func Start(tb testing.TB) *Env {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedSkip, sharedErr = start() })
	if sharedSkip != "" {
		unavailable(tb, "%s", sharedSkip)
	}
	if sharedErr != nil {
		tb.Fatalf("starting pcscd: %v", sharedErr)
	}
	return shared
}

// Stop stops the daemon started by Start, if any, and releases the lock.
func Stop() {
	if daemon != nil && daemon.Process != nil {
		daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-daemonDone:
		case <-time.After(5 * time.Second):
			daemon.Process.Kill()
			<-daemonDone
		}
		daemon = nil
	}
	if lockFile != nil {
		syscall.Flock(int(lockFile.Fd()), syscall.LOCK_UN)
		lockFile.Close()
		lockFile = nil
	}
}

func findFile(env string, candidates []string) string {
	if p := os.Getenv(env); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

func socketAnswers() bool {
	ctx, err := pcsclite.EstablishContextOptions(pcsclite.Options{Timeout: 3 * time.Second})
	if err != nil {
		return false
	}
	ctx.Release()
	return true
}

// start returns (env, skipReason, err).
func start() (*Env, string, error) {
	pcscd := findFile("ANYA_PCSCD", pcscdCandidates)
	if pcscd == "" && os.Getenv("ANYA_PCSCD") == "" {
		if p, err := exec.LookPath("pcscd"); err == nil {
			pcscd = p
		}
	}
	driver := findFile("ANYA_VPCD_DRIVER", driverCandidates)
	if pcscd == "" {
		return nil, "pcscd not installed", nil
	}
	if driver == "" {
		return nil, "vsmartcard-vpcd driver (libifdvpcd.so) not installed", nil
	}

	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, "", fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("lock: %w", err)
	}
	lockFile = f

	if socketAnswers() {
		return reuseRunning()
	}
	if os.Geteuid() != 0 {
		return nil, "starting pcscd needs root (it owns /run/pcscd)", nil
	}

	port, err := freePortPair()
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "anya-pcscd-")
	if err != nil {
		return nil, "", err
	}
	conf := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n",
		port, driver, port)
	if err := os.WriteFile(filepath.Join(dir, "vpcd"), []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	log := &syncBuffer{}
	cmd := exec.Command(pcscd, "--foreground", "--config", dir, "--error")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Sprintf("cannot run %s: %v", pcscd, err), nil
	}
	daemon, daemonDone = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(daemonDone); os.RemoveAll(dir) }()

	deadline := time.Now().Add(10 * time.Second)
	for !socketAnswers() {
		select {
		case <-daemonDone:
			return nil, "", fmt.Errorf("pcscd exited at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("pcscd did not open its socket in 10 s: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	env := &Env{Reader: "Virtual PCD 00 00", CardAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Log: log}
	return env, "", env.waitReader()
}

// reuseRunning uses an already running pcscd if it has a vpcd reader.
func reuseRunning() (*Env, string, error) {
	port := 0x8C7B
	if b, err := os.ReadFile(systemVPCDConf); err == nil {
		if m := regexp.MustCompile(`(?m)^\s*DEVICENAME\s+\S*:(0x[0-9a-fA-F]+|\d+)`).FindSubmatch(b); m != nil {
			if v, err := strconv.ParseUint(string(m[1]), 0, 16); err == nil {
				port = int(v)
			}
		}
	}
	env := &Env{Reader: "Virtual PCD 00 00", CardAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Log: &syncBuffer{}}
	if err := env.waitReader(); err != nil {
		return nil, "a pcscd is already running without a vpcd reader (" + err.Error() + ")", nil
	}
	return env, "", nil
}

func (e *Env) waitReader() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := e.states()
		if err == nil {
			for _, s := range st {
				if s.Name == e.Reader {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reader %q not listed (%v, %v)", e.Reader, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *Env) states() ([]pcsclite.ReaderState, error) {
	ctx, err := pcsclite.EstablishContextOptions(pcsclite.Options{Timeout: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	defer ctx.Release()
	return ctx.ReaderStates()
}

// CardPresent reports whether pcscd sees a card in the reader.
func (e *Env) CardPresent() bool {
	st, err := e.states()
	if err != nil {
		return false
	}
	for _, s := range st {
		if s.Name == e.Reader {
			return s.CardPresent()
		}
	}
	return false
}

// Insert plugs card into the reader, waits until pcscd sees it, and unplugs it when the test
// ends.
func (e *Env) Insert(tb testing.TB, card *pivcard.Card) *pivcard.Plug {
	tb.Helper()
	if e.CardPresent() {
		tb.Fatalf("reader %q already holds a card", e.Reader)
	}
	p, err := card.Plug(e.CardAddr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Remove(tb, p) })
	if err := e.waitPresence(true); err != nil {
		tb.Fatalf("%v\npcscd log:\n%s", err, e.Log.String())
	}
	return p
}

// Remove unplugs p and waits until pcscd notices.
func (e *Env) Remove(tb testing.TB, p *pivcard.Plug) {
	tb.Helper()
	select {
	case <-p.Done():
		return // already removed
	default:
	}
	if err := p.Unplug(); err != nil {
		tb.Errorf("unplug: %v", err)
	}
	if err := e.waitPresence(false); err != nil {
		tb.Errorf("%v", err)
	}
}

func (e *Env) waitPresence(want bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for e.CardPresent() != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd did not see the card %s within 10 s", map[bool]string{true: "inserted", false: "removed"}[want])
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil
}

// freePortPair finds a TCP port p such that p and p+1 are free (vpcd listens on both).
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= 65535 {
			continue
		}
		ok := true
		for _, q := range []int{p, p + 1} {
			l2, err := net.Listen("tcp", ":"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for vpcd")
}

// Tail returns the last n lines of the daemon's log, for failure messages.
func (e *Env) Tail(n int) string {
	sc := bufio.NewScanner(strings.NewReader(e.Log.String()))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
