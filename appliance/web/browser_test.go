package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/chromedp/chromedp"
)

// TestBrowser drives the real pages in headless Chromium at a phone's size: setup, the
// status page, logout, login, and a reboot that ends with the page coming back by itself.
// It saves screenshots named web-*.png to $ANYA_ARTIFACTS (default: a temporary directory).
// appliance/cmd/anyad's TestBrowser does the same end to end against the real anyad binary.
func TestBrowser(t *testing.T) {
	artifacts := browsertest.Artifacts(t)

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
	b := browsertest.Start(t, ts.URL, artifacts, func(m chromedp.ConsoleMessage) bool {
		return strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "status of 401") ||
			strings.HasSuffix(m.URL, "/healthz") && strings.HasPrefix(m.Text, "Failed to load resource")
	})
	step, run, screenshot, wantPath := b.Step, b.Run, b.Screenshot, b.WantPath

	// A new box sends every page to setup.
	step("open the box",
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
