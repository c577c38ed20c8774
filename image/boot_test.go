package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/qemu"
	"github.com/diskfs/go-diskfs/filesystem"
)

// requireTool skips when a host tool is missing, unless ANYA_REQUIRE_ALL is set (make test),
// where a missing tool is a failure.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") != "" {
			t.Fatalf("%s is required: %v", path, err)
		}
		t.Skipf("%s not installed", path)
	}
}

func cacheDir() string {
	if d := os.Getenv("ANYA_CACHE"); d != "" {
		return d
	}
	d, _ := os.UserCacheDir()
	return filepath.Join(d, "anya")
}

var (
	anyadOnce sync.Once
	anyadPath string
	anyadErr  error
)

// buildAnyad builds the static linux/amd64 anyad once per test run.
func buildAnyad(t *testing.T) string {
	t.Helper()
	anyadOnce.Do(func() {
		dir, err := os.MkdirTemp("", "anyad-e2e")
		if err != nil {
			anyadErr = err
			return
		}
		anyadPath = filepath.Join(dir, "anyad")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid= -X main.version=e2e-test",
			"-o", anyadPath, "github.com/anya-edge/anya/appliance/cmd/anyad")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			anyadErr = fmt.Errorf("build anyad: %v\n%s", err, out)
		}
	})
	if anyadErr != nil {
		t.Fatal(anyadErr)
	}
	return anyadPath
}

func buildImage(t *testing.T, out string) image.Result {
	t.Helper()
	res, err := image.Build(context.Background(), image.Config{
		Anyad: buildAnyad(t), CacheDir: cacheDir(), Output: out,
		Version: "e2e-test", Counter: 1, Epoch: 1767225600,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func longTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and boots a disk image")
	}
	if runtime.GOOS != "linux" {
		t.Skip("linux build host only")
	}
	requireTool(t, "apt-get")
	requireTool(t, "dpkg-deb")
}

func fileSHA(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// TestImageReproducible builds the image twice from the same inputs and compares the bytes.
func TestImageReproducible(t *testing.T) {
	longTest(t)
	dir := t.TempDir()
	a := buildImage(t, filepath.Join(dir, "a.img"))
	time.Sleep(1100 * time.Millisecond) // a clock-dependent field would now differ
	b := buildImage(t, filepath.Join(dir, "b.img"))
	if a.SHA256 != b.SHA256 {
		t.Fatalf("two builds differ: %s vs %s", a.SHA256, b.SHA256)
	}
	if got := fileSHA(t, a.Path); got != a.SHA256 {
		t.Fatalf("reported SHA-256 %s, file has %s", a.SHA256, got)
	}
	t.Logf("image %s: %d MiB, kernel %s %.1f MiB, initramfs %.1f MiB, system %.1f MiB",
		a.SHA256[:16], a.Size>>20, a.Release.KernelVersion, float64(a.KernelBytes)/(1<<20), float64(a.InitramfsBytes)/(1<<20), float64(a.SystemBytes)/(1<<20))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// client talks to the box's API through the forwarded port.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	if tok, ok := out["csrf"].(string); ok && tok != "" {
		c.csrf = tok
	}
	return resp.StatusCode, out
}

// waitHTTP polls /healthz until the page answers through the forwarded port.
func (c *client) waitHTTP(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.hc.Get(c.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("page not reachable through the forwarded port: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testBox is one appliance VM under test: QEMU with the page forwarded to a free port, and
// its serial console kept (and saved as an artifact, and printed when the test fails).
type testBox struct {
	t    *testing.T
	ctx  context.Context
	port int
	vm   *qemu.VM
	mu   sync.Mutex
	out  bytes.Buffer
}

// newBox prepares a VM for img; start boots it (again, for a power cycle).
func newBox(t *testing.T, timeout time.Duration) *testBox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	b := &testBox{t: t, ctx: ctx, port: freePort(t)}
	t.Cleanup(func() {
		cancel()
		if b.vm != nil {
			b.vm.Stop()
		}
		if t.Failed() {
			t.Logf("serial console:\n%s", b.console())
		}
		if d := os.Getenv("ANYA_ARTIFACTS"); d != "" {
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, t.Name()+"-console.log"), []byte(b.console()), 0o644)
		}
	})
	return b
}

func (b *testBox) start(cfg qemu.Config) {
	b.t.Helper()
	cfg.HostPort, cfg.Console = b.port, lockedWriter{&b.mu, &b.out}
	vm, err := qemu.Start(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	b.vm = vm
}

// stop powers the VM off (kills QEMU).
func (b *testBox) stop() {
	b.vm.Stop()
	b.vm = nil
}

func (b *testBox) console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// waitFor waits for a console line of the running VM from line index from on.
func (b *testBox) waitFor(re *regexp.Regexp, from int) (qemu.Line, int) {
	b.t.Helper()
	line, i, _, err := b.vm.WaitFor(b.ctx, re, from)
	if err != nil {
		b.t.Fatal(err)
	}
	return line, i
}

// client returns an API client with a fresh cookie jar, once the page answers.
func (b *testBox) client() *client {
	b.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: b.t, base: fmt.Sprintf("http://127.0.0.1:%d", b.port), hc: &http.Client{Jar: jar, Timeout: 2 * time.Minute}}
	c.waitHTTP(time.Minute)
	return c
}

var goodbye = regexp.MustCompile(`goodbye`)

// TestBootSetupReboot boots the real image in QEMU, completes setup through the page's API,
// reboots through the API and checks the second boot kept the password and the slot.
func TestBootSetupReboot(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	res := buildImage(t, filepath.Join(t.TempDir(), "anya.img"))
	b := newBox(t, 6*time.Minute)
	b.start(qemu.Config{Image: res.Path})
	line, idx := b.waitFor(qemu.ReadyLine, 0)
	t.Logf("first boot: ready line after %.1f s of QEMU: %s", line.At.Seconds(), line.Text)

	c := b.client()
	const password = "correct horse battery staple"
	if code, out := c.do("GET", "/api/status", nil); code != http.StatusConflict {
		t.Fatalf("before setup /api/status = %d %v, want 409", code, out)
	}
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": password, "name": "e2e-box"}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	code, st := c.do("GET", "/api/status", nil)
	if code != 200 {
		t.Fatalf("status after setup: %d %v", code, st)
	}
	slot := st["slot"]
	data, _ := st["data"].(map[string]any)
	if slot != "a" || data["state"] != "formatted" || data["path"] != "/data" {
		t.Fatalf("first boot status: slot %v, data %v", slot, data)
	}
	if code, out := c.do("POST", "/api/reboot", nil); code != 200 {
		t.Fatalf("reboot: %d %v", code, out)
	}
	// The box shuts down in order, then the firmware boots it again.
	b.waitFor(goodbye, idx+1)
	line, _ = b.waitFor(qemu.ReadyLine, idx+1)
	t.Logf("second boot: ready line after %.1f s of QEMU: %s", line.At.Seconds(), line.Text)

	c2 := b.client()
	if code, _ := c2.do("POST", "/api/login", map[string]string{"password": "wrong password!!"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong password after reboot: %d, want 401", code)
	}
	if code, out := c2.do("POST", "/api/login", map[string]string{"password": password}); code != 200 {
		t.Fatalf("login after reboot: %d %v", code, out)
	}
	code, st = c2.do("GET", "/api/status", nil)
	data, _ = st["data"].(map[string]any)
	if code != 200 || st["slot"] != slot || data["state"] != "ok" {
		t.Fatalf("second boot status: %d slot %v (first %v), data %v", code, st["slot"], slot, data)
	}
	if n := strings.Count(b.console(), "data partition is blank, formatting"); n != 1 {
		t.Fatalf("data partition formatted %d times, want once", n)
	}
}

// TestDamagedDataPartitionIsReported boots an image whose data partition holds something that
// is not a filesystem: the box must say so on the console and the page, run on volatile
// state, and leave every byte of the partition as it was.
func TestDamagedDataPartitionIsReported(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	res := buildImage(t, filepath.Join(dir, "anya.img"))
	off, err := image.PartitionOffset(res.Path, image.LabelData)
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("precious bytes that are not ext4 "), 32<<10)
	f, err := os.OpenFile(res.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	b := newBox(t, 4*time.Minute)
	b.start(qemu.Config{Image: res.Path})
	b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": "a long enough password"}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	_, st := c.do("GET", "/api/status", nil)
	b.stop()
	data, _ := st["data"].(map[string]any)
	if data["state"] != "damaged" || !strings.Contains(fmt.Sprint(data["detail"]), "left untouched") {
		t.Fatalf("data status %v", data)
	}
	if !strings.Contains(b.console(), "DATA PARTITION UNUSABLE") {
		t.Errorf("console does not report the damaged partition")
	}
	got := make([]byte, len(junk))
	f, _ = os.Open(res.Path)
	defer f.Close()
	if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, junk) {
		t.Fatalf("the damaged partition was modified (%v)", err)
	}
}

// TestBootFallsBackToOtherSlot gives slot A one boot try and a broken initramfs, as a bad
// update would: the kernel panics, reboots (panic=10), systemd-boot counts the try down and
// boots slot B, whose anyad serves the page.
func TestBootFallsBackToOtherSlot(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	res := buildImage(t, filepath.Join(dir, "anya.img"))
	err := image.EditESP(res.Path, func(fsys filesystem.FileSystem) error {
		if err := fsys.Rename("/loader/entries/anya-a.conf", "/loader/entries/anya-a+1.conf"); err != nil {
			return fmt.Errorf("rename entry: %w", err)
		}
		f, err := fsys.OpenFile("/anya/a/initrd.img", os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("open initrd: %w", err)
		}
		defer f.Close()
		_, err = f.Write([]byte("not an initramfs"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b := newBox(t, 5*time.Minute)
	b.start(qemu.Config{Image: res.Path})
	b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	c.do("POST", "/api/setup", map[string]string{"password": "a long enough password"})
	_, st := c.do("GET", "/api/status", nil)
	b.stop()
	if st["slot"] != "b" {
		t.Fatalf("booted slot %v after slot A failed, want b", st["slot"])
	}
	names, err := image.ListESPDir(res.Path, "/loader/entries")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "anya-a+0-1.conf") {
		t.Fatalf("boot entries after the failed try: %v, want anya-a+0-1.conf", names)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
