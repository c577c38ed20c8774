package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives the real pages in headless Chromium at a phone's size: setup, the
// status page, logout, login, and a reboot that ends with the page coming back by itself.
// It saves screenshots named web-*.png to $ANYA_ARTIFACTS (default: a temporary directory).
// appliance/cmd/anyad's TestBrowser does the same end to end against the real anyad binary.
func TestBrowser(t *testing.T) {
	artifacts := browserArtifacts(t)

	// The host is the real control.Host of development mode with its defaults (no
	// supervised services), and the log on the page is what the server itself logs.
	h := newHarness(t)
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(h.logs, h.ring), nil))
	srv, err := New(Config{DB: h.db, System: h.host, Logger: logger, Version: testVersion, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}

	// The test server stands in for the box. A reboot makes it unreachable for a moment,
	// then a new Server on the same database answers, as after anyad restarts.
	var current atomic.Pointer[Server]
	var down atomic.Bool
	current.Store(srv)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "rebooting", http.StatusServiceUnavailable)
			return
		}
		current.Load().Handler().ServeHTTP(w, r)
	}))
	defer ts.Close()
	rebooted := make(chan struct{})
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-h.reboots:
		case <-finished:
			return
		}
		time.Sleep(time.Second) // services stop first; the page and its assets load meanwhile
		down.Store(true)
		time.Sleep(3 * time.Second)
		srv, err := New(Config{DB: h.db, System: h.host, Logger: logger, Version: testVersion, Now: h.clock.Now})
		if err != nil {
			t.Errorf("restart: %v", err)
			return
		}
		current.Store(srv)
		down.Store(false)
		close(rebooted)
	}()

	// Expected in the console: the 401 answering the wrong password, and /healthz failing
	// while the box is down.
	b := startBrowser(t, ts.URL, artifacts, func(m chromedp.ConsoleMessage) bool {
		return strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "status of 401") ||
			strings.HasSuffix(m.URL, "/healthz") && strings.HasPrefix(m.Text, "Failed to load resource")
	})
	step, run, screenshot, wantPath := b.step, b.run, b.screenshot, b.wantPath

	// A new box sends every page to setup.
	step("open the box",
		chromedp.EmulateViewport(390, 844), // headless windows are at least 500 pixels wide
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	wantPath("/setup")
	step("fill in setup",
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), testPassword),
		chromedp.SendKeys(chromedp.ID("name"), "test-box"),
	)
	screenshot("web-setup.png")
	step("submit setup", chromedp.Click(chromedp.CSS(`form[action="/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".facts")))
	wantPath("/")

	statusHas := func(wants ...string) {
		t.Helper()
		text := run("status text", chromedp.Text(chromedp.CSS("main")))
		for _, want := range wants {
			if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
				t.Errorf("status page lacks %q:\n%s", want, text)
			}
		}
	}
	statusHas(testVersion, "dev", "Host directory", "database file", "No services are running",
		"Memory", "used of", "anyad", `msg="setup complete: admin password set" box_name=test-box`)
	if b := run("reboot button", chromedp.Text(chromedp.CSS(`form[action="/reboot"] button`))); b != "Reboot" {
		t.Errorf("reboot button says %q", b)
	}
	if name := run("box name", chromedp.Text(chromedp.CSS(".chip"))); name != "test-box" {
		t.Errorf("box name shows %q", name)
	}
	screenshot("web-setup-status.png")

	// Log out, then log in through the form, first with a wrong password.
	step("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	wantPath("/login")
	step("wrong password",
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".alert-error")),
	)
	if msg := run("login error", chromedp.Text(chromedp.CSS(".alert-error"))); msg != "Wrong password." {
		t.Errorf("login error says %q", msg)
	}
	screenshot("web-login-error.png")
	step("log in",
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".facts")),
	)
	wantPath("/")
	statusHas(`msg="login failed: wrong password"`, `msg="logged in"`)

	// Reboot: the page waits for the box and returns to the status page by itself.
	step("reboot", chromedp.Click(chromedp.CSS(`form[action="/reboot"] button`)),
		chromedp.WaitVisible(chromedp.ID("wait")))
	if text := run("wait text", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "Rebooting") {
		t.Errorf("reboot page says %q", text)
	}
	screenshot("web-rebooting.png")
	select {
	case <-rebooted:
	case <-time.After(20 * time.Second):
		t.Fatal("Restart was not called")
	}
	step("back after reboot", chromedp.WaitVisible(chromedp.CSS(".facts")))
	wantPath("/")
	statusHas(`msg="reboot requested"`)
}

// browser is headless Chromium at a phone's size, with what the browser tests share.
type browser struct {
	t         *testing.T
	ctx       context.Context
	base      string
	artifacts string
}

// browserArtifacts returns where screenshots go, or skips the test when Chromium is missing.
func browserArtifacts(t *testing.T) string {
	t.Helper()
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
	return artifacts
}

// startBrowser starts Chromium for pages under base. Errors in the page's console, such as
// Content-Security-Policy violations, fail the test unless expected says otherwise; dialogs
// (the confirm() of the Reboot button) are accepted.
func startBrowser(t *testing.T, base, artifacts string, expected func(m chromedp.ConsoleMessage) bool) *browser {
	t.Helper()
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
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}

	var consoleMu sync.Mutex
	var consoleErrors []string
	t.Cleanup(func() { // also after t.Fatal, to help find the cause
		cancel()
		cancelAlloc()
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, e := range consoleErrors {
			t.Errorf("console: %s", e)
		}
	})
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && (expected == nil || !expected(m)) {
				consoleMu.Lock()
				consoleErrors = append(consoleErrors, m.String()+" at "+m.URL)
				consoleMu.Unlock()
			}
		}
	}()
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &browser{t: t, ctx: ctx, base: base, artifacts: artifacts}
}

func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
}

func (b *browser) run(name string, a chromedp.Action[string]) string {
	b.t.Helper()
	return runAction(b, name, a)
}

// runAction runs a with the usual timeout and returns its result.
func runAction[T any](b *browser, name string, a chromedp.Action[T]) T {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
	return v
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := runAction(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

func (b *browser) wantPath(path string) {
	b.t.Helper()
	if loc := b.run("location", chromedp.Location()); loc != b.base+path {
		b.t.Fatalf("at %s, want %s", loc, b.base+path)
	}
}

// fitsWidth fails the test when the page is wider than the phone's screen.
func (b *browser) fitsWidth(what string) {
	b.t.Helper()
	w := runAction(b, what+": width", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if len(w) != 2 || w[0] > w[1] {
		b.t.Errorf("%s: the page is %v pixels wide, wider than the screen", what, w)
	}
}
