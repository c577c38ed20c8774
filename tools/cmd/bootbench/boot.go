package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/image/qemu"
	"golang.org/x/sys/unix"
)

// bootResult is one boot. Times are from the moment QEMU was started.
type bootResult struct {
	Run          int     `json:"run,omitempty"`
	HTTPSeconds  float64 `json:"http_s,omitempty"`
	ReadySeconds float64 `json:"ready_s,omitempty"`
	BootMS       int64   `json:"boot_ms,omitempty"`
	InitMS       int64   `json:"init_ms,omitempty"`
	Error        string  `json:"error,omitempty"`
	OtherQEMU    bool    `json:"other_qemu_running,omitempty"` // another VM shared the CPUs
	Console      string  `json:"console_log,omitempty"`
}

type bencher struct {
	work, logDir string
	timeout      time.Duration
	waitIdle     time.Duration // for other QEMUs to end before a boot
}

// boot is a running VM on a fresh copy of an image.
type boot struct {
	vm      *qemu.VM
	t0      time.Time
	base    string          // http://127.0.0.1:PORT
	ctx     context.Context // ends after the boot timeout, when QEMU exits or on close
	life    context.Context // ends when QEMU exits or on close: for work after the boot
	cancel  context.CancelCauseFunc
	cleanup []func()
	shared  bool // another QEMU was running when the boot started
}

func (b *boot) close() {
	b.cancel(nil)
	for _, f := range b.cleanup {
		f()
	}
}

// start copies img and boots the copy. The boot's context ends after timeout, when QEMU exits
// or when ctx ends.
func (bb *bencher) start(ctx context.Context, img, name string, timeout time.Duration) (*boot, string, error) {
	b := &boot{}
	b.life, b.cancel = context.WithCancelCause(ctx)
	tctx, tcancel := context.WithTimeoutCause(b.life, timeout, fmt.Errorf("no HTTP answer within %v", timeout))
	b.ctx = tctx
	b.cleanup = append(b.cleanup, tcancel)
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()

	b.shared = waitIdle(ctx, bb.waitIdle)
	copyPath := filepath.Join(bb.work, name+".img")
	if err := sparseCopy(copyPath, img); err != nil {
		return nil, "", fmt.Errorf("copy image: %w", err)
	}
	b.cleanup = append(b.cleanup, func() { os.Remove(copyPath) })
	logPath := filepath.Join(bb.logDir, name+".log")
	console, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	b.cleanup = append(b.cleanup, func() { console.Close() })
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	b.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	b.t0 = time.Now()
	b.vm, err = qemu.Start(qemu.Config{Image: copyPath, HostPort: port, Console: console})
	if err != nil {
		return nil, "", err
	}
	// Runs first among the cleanups, so the console file is closed after QEMU is gone.
	b.cleanup = append([]func(){b.vm.Stop}, b.cleanup...)
	go func() {
		// A pattern that never matches: returns only when QEMU exits or the boot ends.
		_, _, _, err := b.vm.WaitFor(b.life, regexp.MustCompile(`\A\z.`), 0)
		if errors.Is(err, qemu.ErrExited) {
			b.cancel(err)
		}
	}()
	ok = true
	return b, logPath, nil
}

// waitHTTP polls path until it answers 200 and returns the time since QEMU was started.
// QEMU's user networking accepts connections on the host port before the guest listens, and
// an attempt made before the guest's network is up hangs until it times out; so a new attempt
// starts every 100 ms while earlier ones are still pending, and the first 200 counts.
func (b *boot) waitHTTP(path string) (time.Duration, error) {
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	// 48 attempts of at most 4 s: while they hang, one still starts every ~80 ms.
	hc := &http.Client{Timeout: 4 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	done := make(chan time.Duration, 1)
	inflight := make(chan struct{}, 48)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case inflight <- struct{}{}:
			go func() {
				defer func() { <-inflight }()
				req, _ := http.NewRequestWithContext(ctx, "GET", b.base+path, nil)
				resp, err := hc.Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					select {
					case done <- time.Since(b.t0):
					default:
					}
				}
			}()
		default: // enough attempts pending
		}
		select {
		case d := <-done:
			return d, nil
		case <-b.ctx.Done():
			return 0, context.Cause(b.ctx)
		case <-tick.C:
		}
	}
}

// contended reports whether another QEMU ran at the start or runs now.
func (b *boot) contended() bool {
	return b.shared || len(otherQEMUs(b.vm.Pid())) > 0
}

// waitIdle waits up to d for QEMUs of other users of the machine to end, since they take CPU
// time from the VM under test; it reports whether one still runs.
func waitIdle(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	said := false
	for {
		pids := otherQEMUs(0)
		if len(pids) == 0 {
			return false
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "  WARNING: booting while other QEMU processes run (pids %v): timings are skewed\n", pids)
			return true
		}
		if !said {
			fmt.Fprintf(os.Stderr, "  waiting up to %v for other QEMU processes to end (pids %v)\n", d, pids)
			said = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// otherQEMUs returns the pids of running qemu-system-* processes other than except.
func otherQEMUs(except int) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == except {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(comm), "qemu-system") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ansi matches the terminal escapes OVMF writes to the console.
var ansi = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

// fail records err and prints the end of the console.
func (b *boot) fail(r *bootResult, err error) {
	r.Error = err.Error()
	fmt.Fprintf(os.Stderr, "  FAILED: %v\n", err)
	if b == nil || b.vm == nil {
		return
	}
	lines := b.vm.Lines()
	lines = lines[max(0, len(lines)-15):]
	for _, l := range lines {
		fmt.Fprintf(os.Stderr, "  | %6.1fs %s\n", l.At.Seconds(), ansi.ReplaceAllString(l.Text, ""))
	}
}

// bootAnya boots the Anya Edge image once; with setup it also sets the box up and reads its
// memory figures.
func (bb *bencher) bootAnya(ctx context.Context, img string, run int, setup bool) (bootResult, *memoryReport) {
	r := bootResult{Run: run}
	fmt.Fprintf(os.Stderr, "run %d: anya\n", run)
	b, logPath, err := bb.start(ctx, img, fmt.Sprintf("anya-%d", run), bb.timeout)
	r.Console = logPath
	if err != nil {
		b.fail(&r, err)
		return r, nil
	}
	defer b.close()

	type ready struct {
		line qemu.Line
		m    []string
		err  error
	}
	readyc := make(chan ready, 1)
	go func() {
		line, _, m, err := b.vm.WaitFor(b.ctx, qemu.ReadyLine, 0)
		readyc <- ready{line, m, err}
	}()
	d, err := b.waitHTTP("/healthz")
	if err != nil {
		b.fail(&r, fmt.Errorf("GET /healthz: %w", err))
		return r, nil
	}
	r.HTTPSeconds = d.Seconds()
	r.OtherQEMU = b.contended()
	// The line is printed when the page listens, so it is there by now or never.
	var rd ready
	select {
	case rd = <-readyc:
	case <-time.After(5 * time.Second):
		rd.err = errors.New("no ANYA-READY line 5 s after the page answered")
	}
	if rd.err != nil {
		b.fail(&r, rd.err)
		return r, nil
	}
	r.ReadySeconds = rd.line.At.Seconds()
	r.BootMS, _ = strconv.ParseInt(rd.m[1], 10, 64)
	r.InitMS, _ = strconv.ParseInt(rd.m[2], 10, 64)
	fmt.Fprintf(os.Stderr, "  HTTP after %.1f s, ready line after %.1f s (boot_ms=%d init_ms=%d)\n",
		r.HTTPSeconds, r.ReadySeconds, r.BootMS, r.InitMS)
	if !setup {
		return r, nil
	}
	mem, err := anyaMemory(b.life, b.base)
	if err != nil {
		// The boot itself counted; the memory figures are missing.
		fmt.Fprintf(os.Stderr, "  memory: %v\n", err)
		return r, nil
	}
	return r, mem
}

// anyaMemory sets the box up through its API and reads /api/status.
func anyaMemory(ctx context.Context, base string) (*memoryReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 90 * time.Second}
	var csrf string
	call := func(method, path string, body, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, raw)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	}
	var setup struct {
		CSRF string `json:"csrf"`
	}
	start := time.Now()
	if err := call("POST", "/api/setup", map[string]string{"password": "bootbench password 42", "name": "bootbench"}, &setup); err != nil {
		return nil, err
	}
	csrf = setup.CSRF
	fmt.Fprintf(os.Stderr, "  setup took %.1f s\n", time.Since(start).Seconds())
	var st struct {
		Memory struct {
			Total     uint64    `json:"total_bytes"`
			Available uint64    `json:"available_bytes"`
			Processes []process `json:"processes"`
		} `json:"memory"`
	}
	if err := call("GET", "/api/status", nil, &st); err != nil {
		return nil, err
	}
	m := &memoryReport{GuestTotal: st.Memory.Total, GuestAvailable: st.Memory.Available,
		Processes: st.Memory.Processes, When: "after setup, first boot"}
	if m.GuestTotal == 0 || len(m.Processes) == 0 {
		return nil, fmt.Errorf("/api/status has no memory figures: %+v", st.Memory)
	}
	m.GuestUsed = m.GuestTotal - m.GuestAvailable
	for _, p := range m.Processes {
		m.RSSTotal += p.RSSBytes
	}
	return m, nil
}

// bootAnchor boots the gokrazy image once; with memory it also reads the guest's memory
// through the anchor's HTTP server.
func (bb *bencher) bootAnchor(ctx context.Context, img string, run int, memory bool) (bootResult, *memoryReport) {
	r := bootResult{Run: run}
	fmt.Fprintf(os.Stderr, "run %d: anchor (gokrazy)\n", run)
	b, logPath, err := bb.start(ctx, img, fmt.Sprintf("anchor-%d", run), bb.timeout)
	r.Console = logPath
	if err != nil {
		b.fail(&r, err)
		return r, nil
	}
	defer b.close()
	d, err := b.waitHTTP("/")
	if err != nil {
		b.fail(&r, fmt.Errorf("GET /: %w", err))
		return r, nil
	}
	r.HTTPSeconds = d.Seconds()
	r.OtherQEMU = b.contended()
	fmt.Fprintf(os.Stderr, "  HTTP after %.1f s\n", r.HTTPSeconds)
	if !memory {
		return r, nil
	}
	mem, err := anchorMemory(b.life, b.base)
	if err != nil {
		fmt.Fprintf(os.Stderr, "  memory: %v\n", err)
		return r, nil
	}
	return r, mem
}

// anchorMemory reads /proc/meminfo and the status of gokrazy's init and of the HTTP server.
func anchorMemory(ctx context.Context, base string) (*memoryReport, error) {
	hc := &http.Client{Timeout: 20 * time.Second}
	get := func(name string) (map[string]uint64, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/proc/"+name, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /proc/%s: %s", name, resp.Status)
		}
		return parseKB(resp.Body), nil
	}
	mi, err := get("meminfo")
	if err != nil {
		return nil, err
	}
	m := &memoryReport{GuestTotal: mi["MemTotal"], GuestAvailable: mi["MemAvailable"],
		When: "right after the first HTTP 200, first boot"}
	if m.GuestTotal == 0 {
		return nil, errors.New("/proc/meminfo has no MemTotal")
	}
	m.GuestUsed = m.GuestTotal - m.GuestAvailable
	for _, p := range []struct {
		path, name string
		pid        int
	}{{"1/status", "init (gokrazy)", 1}, {"self/status", "HTTP server", 0}} {
		st, err := get(p.path)
		if err != nil {
			return nil, err
		}
		m.Processes = append(m.Processes, process{Name: p.name, PID: p.pid, RSSBytes: st["VmRSS"]})
		m.RSSTotal += st["VmRSS"]
	}
	return m, nil
}

// parseKB parses "Key:   123 kB" lines into bytes.
func parseKB(r io.Reader) map[string]uint64 {
	out := map[string]uint64{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		f := strings.Fields(v)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			out[k] = n << 10
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sparseCopy copies src to dst, keeping holes: the images are over a GiB but mostly empty.
func sparseCopy(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	fd := int(in.Fd())
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			data = off // no hole support: copy the rest
		} else if err != nil {
			return err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = st.Size()
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(out, io.LimitReader(in, hole-data)); err != nil {
			return err
		}
		off = hole
	}
	return out.Close()
}
