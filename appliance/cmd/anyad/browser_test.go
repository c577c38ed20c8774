package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/chromedp/chromedp"
)

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
	artifacts := browsertest.Artifacts(t)

	box := startAnyad(t)
	base := "http://" + box.addr

	// Expected in the console: the 401 answering the wrong password, and /healthz failing
	// while the services restart and after the power off.
	b := browsertest.Start(t, base, artifacts, func(m chromedp.ConsoleMessage) bool {
		return strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "status of 401") ||
			strings.HasSuffix(m.URL, "/healthz") && strings.HasPrefix(m.Text, "Failed to load resource")
	})
	b.Log = func() string { return "anyad's log:\n" + box.stderr.String() }
	step, run, screenshot, wantPath := b.Step, b.Run, b.Screenshot, b.WantPath
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
	// The wizard's second step offers the wallet; this test leaves it for later.
	step("submit setup", chromedp.Click(chromedp.CSS(`form[action="/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".skip a")))
	wantPath("/wallet/setup")
	step("skip the wallet", chromedp.Click(chromedp.CSS(".skip a")), chromedp.WaitVisible(chromedp.CSS(".facts")))
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
	octx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
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
	stderr  *browsertest.LockedBuffer
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

	a := &anyad{dataDir: t.TempDir(), stderr: &browsertest.LockedBuffer{}, exited: make(chan struct{})}
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
