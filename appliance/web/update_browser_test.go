package web

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/anya-edge/anya/appliance/update/agent"
)

// TestUpdateBrowser installs a signed bundle through the update page in headless Chromium
// at a phone's size, with the real agent on a disk image: the file chosen in the form is
// uploaded (the CSRF token first, as the page's form sends it), installed into slot b, and
// the box restarts. The new version then fails its health check, and back on the old one the
// page says so. Screenshots update-*.png go to $ANYA_ARTIFACTS.
func TestUpdateBrowser(t *testing.T) {
	artifacts := browsertest.Artifacts(t)
	b := newUpdBox(t)
	v2 := updMakeRelease(t, "2.0.0", 20)
	bundle := filepath.Join(t.TempDir(), "anya-2.0.0.tar")
	if err := os.WriteFile(bundle, b.bundle(v2), 0o644); err != nil {
		t.Fatal(err)
	}

	login := func(run *updRun) *browsertest.Browser {
		// Expected: /healthz failing once the box "restarted" (its server stopped) while the
		// wait page polls it.
		br := browsertest.Start(t, run.ts.URL, artifacts, func(m chromedp.ConsoleMessage) bool {
			return strings.HasSuffix(m.URL, "/healthz") && strings.HasPrefix(m.Text, "Failed to load resource")
		})
		br.Log = func() string { return "log:\n" + b.logs.String() }
		br.Step("log in", chromedp.Navigate(run.ts.URL+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
			chromedp.SendKeys(chromedp.ID("password"), "correct horse battery staple"),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(".facts")))
		br.Step("open the update page", chromedp.Click(chromedp.CSS(`nav a[href="/update"]`)),
			chromedp.WaitVisible(chromedp.ID("update-history")))
		br.WantPath("/update")
		br.FitsWidth("update page")
		return br
	}

	run := b.start("a", b.v1, "anya-a.conf", 0)
	br := login(run)
	if got := br.Run("version", chromedp.Text(chromedp.ID("update-version"))); got != "1.0.0" {
		t.Errorf("running version %q", got)
	}
	br.Screenshot("update-page.png")
	br.Step("upload v2", chromedp.SetUploadFiles(chromedp.ID("bundle"), []string{bundle}),
		chromedp.Click(chromedp.CSS(`form[action="/update/upload"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("wait")))
	br.Screenshot("update-installed.png")
	select {
	case <-run.reboots:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot after the upload")
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf"}) {
		t.Fatalf("entries after the upload: %v", got)
	}
	run.stop()

	// v2's trial fails its health check; the box is back on v1.
	b.rename("anya-b+3.conf", "anya-b+2-1.conf")
	run = b.start("b", v2, "anya-b+2-1.conf", 0)
	err := run.agent.Confirm(context.Background(), []agent.Check{{Name: "node", Run: func(context.Context) error {
		return agent.Permanent(errors.New("the node could not be reached"))
	}}}, agent.ConfirmOptions{Deadline: time.Minute})
	if !errors.Is(err, agent.ErrHealth) {
		t.Fatalf("Confirm: %v", err)
	}
	run.stop()
	run = b.start("a", b.v1, "anya-a.conf", 0)
	br = login(run)
	text := br.Run("fallback", chromedp.Text(chromedp.ID("update-fallback")))
	if !strings.Contains(text, "Update to 2.0.0 failed: the new version failed its health check: node: the node could not be reached") {
		t.Errorf("fallback says %q", text)
	}
	br.Screenshot("update-fallback.png")
}
