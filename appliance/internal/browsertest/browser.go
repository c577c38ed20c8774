package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is the Chromium the tests run.
const ChromiumPath = "/usr/bin/chromium"

// The size of the phone the pages are shown on.
const (
	Width  = 390
	Height = 844
)

// stepTimeout bounds each Step, Run and Screenshot.
const stepTimeout = 30 * time.Second

// Artifacts returns where screenshots go: $ANYA_ARTIFACTS, or a temporary directory. It skips
// the test with -short or when Chromium is missing, unless ANYA_REQUIRE_ALL=1 makes the
// latter fail it.
func Artifacts(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
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

// Browser is headless Chromium at a phone's size, showing pages under Base.
type Browser struct {
	// Ctx is the browser's tab, for actions with a timeout of their own.
	Ctx       context.Context
	Base      string // the pages' URL without a path, such as "http://127.0.0.1:8080"
	Artifacts string // where Screenshot saves

	// Log, when set, returns text (such as the server's log) that a failed Step adds to its
	// message.
	Log func() string

	t testing.TB
}

// Start starts Chromium for pages under base, with a viewport of Width×Height (headless
// windows are at least 500 pixels wide), and stops it when the test ends. Errors in the
// page's console, such as Content-Security-Policy violations, fail the test unless expected
// (which may be nil) says they are expected; dialogs, such as the confirm() of a button,
// are accepted.
func Start(t testing.TB, base, artifacts string, expected func(m chromedp.ConsoleMessage) bool) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(Width, Height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(Width, Height)); err != nil { // starts the browser
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
	return &Browser{Ctx: ctx, Base: base, Artifacts: artifacts, t: t}
}

// Step runs actions, failing the test if they do not succeed within 30 seconds.
func (b *Browser) Step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.Ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		if b.Log != nil {
			b.t.Fatalf("%s: %v\n%s", name, err, b.Log())
		}
		b.t.Fatalf("%s: %v", name, err)
	}
}

// Run returns the text a produces, such as chromedp.Text or chromedp.Location.
func (b *Browser) Run(name string, a chromedp.Action[string]) string {
	b.t.Helper()
	return Run(b, name, a)
}

// Run returns what a produces within 30 seconds, failing the test if it fails.
func Run[T any](b *Browser, name string, a chromedp.Action[T]) T {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.Ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
	return v
}

// Screenshot saves the whole page as name in the artifacts directory.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	png := Run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(b.Artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// WantPath fails the test unless the page shown is Base+path.
func (b *Browser) WantPath(path string) {
	b.t.Helper()
	if loc := b.Run("location", chromedp.Location()); loc != b.Base+path {
		b.t.Fatalf("at %s, want %s", loc, b.Base+path)
	}
}

// FitsWidth marks the test failed when the page is wider than the phone's screen.
func (b *Browser) FitsWidth(what string) {
	b.t.Helper()
	// The layout is judged once it settled: on a loaded machine the stylesheet and the
	// deferred script may still be applying when the element the test waited for appears.
	deadline := time.Now().Add(3 * time.Second)
	for {
		w := Run(b, what+": width", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if len(w) == 2 && w[0] <= w[1] {
			return
		}
		if time.Now().After(deadline) {
			b.t.Errorf("%s: the page is %v pixels wide, wider than the screen", what, w)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
