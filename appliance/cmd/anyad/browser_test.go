package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

const (
	browserVersion  = "browser-test"
	browserPassword = "correct horse battery staple"
	browserBoxName  = "test-box"
)

// TestBrowser builds the real anyad, starts it with "anyad dev" on a free port and drives
// its pages in headless Chromium at a phone's size: setup, the status page, logout, a wrong
// password, login, a reboot that restarts the services and ends with the page coming back
// by itself, and a power off that ends the process. Nothing on the page is made up by the
// test: the status, the services and the log are anyad's own. Screenshots go to
// $ANYA_ARTIFACTS (default: a temporary directory).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
			t.Fatalf("browser test: ANYA_REQUIRE_ALL=1 but Chromium is missing: %v", err)
		}
		t.Skipf("browser test: Chromium is missing: %v", err)
	}
	artifacts := os.Getenv("ANYA_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	box := startAnyad(t)
	base := "http://" + box.addr

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844),
	)
	allocCtx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}

	// Errors in the page's console, such as Content-Security-Policy violations, fail the test.
	var consoleMu sync.Mutex
	var consoleErrors []string
	defer func() { // also after t.Fatal, to help find the cause
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, e := range consoleErrors {
			t.Errorf("console: %s", e)
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Expected: the 401 answering the wrong password, and /healthz failing while
			// the services restart and after the power off.
			expected := strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "status of 401") ||
				strings.HasSuffix(m.URL, "/healthz") && strings.HasPrefix(m.Text, "Failed to load resource")
			consoleMu.Lock()
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected {
				consoleErrors = append(consoleErrors, m.String()+" at "+m.URL)
			}
			consoleMu.Unlock()
		}
	}()
	// Accept the confirm() of the Reboot and Power off buttons.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v\nanyad's log:\n%s", name, err, box.stderr.String())
		}
	}
	run := func(name string, a chromedp.Action[string]) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	screenshot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	wantPath := func(path string) {
		t.Helper()
		if loc := run("location", chromedp.Location()); loc != base+path {
			t.Fatalf("at %s, want %s", loc, base+path)
		}
	}
	wantText := func(what string, sel string, want string) {
		t.Helper()
		if got := run(what, chromedp.Text(chromedp.CSS(sel))); got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	// wantFact checks the value of a labelled fact of the status page, such as "Mode".
	wantFact := func(label, want string) {
		t.Helper()
		sel := chromedp.Search(fmt.Sprintf(`//dt[normalize-space()=%q]/following-sibling::dd`, label))
		if got := run("fact "+label, chromedp.Text(sel)); got != want {
			t.Errorf("%s: %q, want %q", label, got, want)
		}
	}
	statusHas := func(wants ...string) {
		t.Helper()
		text := run("status text", chromedp.Text(chromedp.CSS("main")))
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("status page lacks %q:\n%s", want, text)
			}
		}
	}

	// A new box sends every page to setup.
	step("open the box",
		chromedp.EmulateViewport(390, 844), // headless windows are at least 500 pixels wide
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	wantPath("/setup")
	step("fill in setup",
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), browserPassword),
		chromedp.SendKeys(chromedp.ID("name"), browserBoxName),
	)
	screenshot("setup.png")
	step("submit setup", chromedp.Click(chromedp.CSS(`form[action="/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".facts")))
	wantPath("/")

	// The status page shows what anyad reports about itself.
	wantText("box name", ".chip", browserBoxName)
	wantText("service", ".services .service-name", "services")
	wantText("service state", ".services .service-state .badge", "running")
	wantText("reboot button", `form[action="/reboot"] button`, "Reboot")
	wantFact("Version", browserVersion)
	wantFact("Mode", "dev")
	wantFact("Data directory", box.dataDir)
	if proc := strings.Join(strings.Fields(run("memory", chromedp.Text(chromedp.CSS(".procs li")))), " "); !strings.HasPrefix(proc, fmt.Sprintf("anyad pid %d ", box.cmd.Process.Pid)) || !strings.HasSuffix(proc, "iB") {
		t.Errorf("memory of anyad: %q, want its pid %d and a size", proc, box.cmd.Process.Pid)
	}
	statusHas("used of", "Host directory",
		`msg="setup complete: admin password set" box_name=`+browserBoxName)
	screenshot("status.png")

	// Log out, then log in through the form, first with a wrong password.
	step("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	wantPath("/login")
	step("wrong password",
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".alert-error")),
	)
	wantText("login error", ".alert-error", "Wrong password.")
	screenshot("login-error.png")
	step("log in",
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".facts")),
	)
	wantPath("/")
	wantText("restarts before the reboot", `.services td[data-label="Restarts"]`, "0")

	// Reboot: anyad dev restarts its services; the page waits for them and returns to the
	// status page by itself.
	// The wait page is read the moment it appears: it leaves by itself once the box is back.
	const waitText = `document.querySelector("main").innerText`
	step("reboot", chromedp.Click(chromedp.CSS(`form[action="/reboot"] button`)),
		chromedp.WaitVisible(chromedp.ID("wait")))
	if text := run("wait text", chromedp.Evaluate[string](waitText)); !strings.Contains(text, "Rebooting…") {
		t.Errorf("reboot page says %q", text)
	}
	screenshot("rebooting.png")
	step("back after reboot", chromedp.WaitVisible(chromedp.CSS(".facts")))
	wantPath("/")
	wantText("restarts after the reboot", `.services td[data-label="Restarts"]`, "1")
	wantText("service state after the reboot", ".services .service-state .badge", "running")
	statusHas(`msg="reboot requested: restarting services"`)

	// Power off: anyad exits with status 0.
	step("power off", chromedp.Click(chromedp.CSS(`form[action="/poweroff"] button`)),
		chromedp.WaitVisible(chromedp.ID("wait")))
	if text := run("wait text", chromedp.Evaluate[string](waitText)); !strings.Contains(text, "Powering off…") {
		t.Errorf("power off page says %q", text)
	}
	select {
	case <-box.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("anyad still runs 30 s after Power off\nanyad's log:\n%s", box.stderr.String())
	}
	if code := box.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("anyad exited with status %d after Power off\nanyad's log:\n%s", code, box.stderr.String())
	}
	// anyad waits control.ShutdownGrace before acting, so the "Powering off" page has
	// loaded its style sheet and script, and says so once the box stops answering.
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(octx, chromedp.WaitVisible(chromedp.CSS(`#wait [data-state="off"]`))); err != nil {
		t.Errorf("the page does not say that the box is off: %v", err)
	}
	screenshot("poweroff.png")
}

// anyad is a running "anyad dev" process.
type anyad struct {
	cmd     *exec.Cmd
	addr    string // host:port of the page, from the ANYA-READY line
	dataDir string
	stderr  *lockedBuffer
	exited  chan struct{} // closed when the process has exited; cmd.ProcessState is then set
}

// startAnyad builds anyad with version browserVersion, starts "anyad dev" on a free port of
// 127.0.0.1 with a new data directory, and waits for its ANYA-READY line. The process is
// killed when the test ends, unless it has exited by then.
func startAnyad(t *testing.T) *anyad {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "anyad")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+browserVersion, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build anyad: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()

	a := &anyad{dataDir: t.TempDir(), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command(bin, "dev", "-data", a.dataDir, "-listen", listen)
	a.cmd.Stderr = a.stderr
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if line := s.Text(); strings.HasPrefix(line, "ANYA-READY ") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		a.cmd.Wait() // after stdout is read to its end, as os/exec requires
		close(a.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-a.exited:
			return
		default:
		}
		a.cmd.Process.Kill()
		<-a.exited
	})

	select {
	case line := <-ready:
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "addr="); ok {
				a.addr = v
			}
		}
		if a.addr != listen {
			t.Fatalf("ANYA-READY line %q: want addr=%s", line, listen)
		}
		t.Logf("anyad: %s", line)
	case <-a.exited:
		t.Fatalf("anyad exited before it was ready: %v\n%s", a.cmd.ProcessState, a.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("anyad was not ready within a minute\n%s", a.stderr.String())
	}
	return a
}

// lockedBuffer collects a process's output for the test's messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
