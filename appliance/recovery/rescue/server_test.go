package rescue_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
)

type fakeBox struct {
	mu      sync.Mutex
	st      rescue.Status
	calls   []string
	restErr error
}

func (f *fakeBox) Status(context.Context) (rescue.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}
func (f *fakeBox) call(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }
func (f *fakeBox) Reinstall(_ context.Context, keep bool) (rescue.ReinstallResult, error) {
	f.call("reinstall keep=" + map[bool]string{true: "yes", false: "no"}[keep])
	return rescue.ReinstallResult{Version: "1.2.0", KeptData: keep, Took: time.Second}, nil
}
func (f *fakeBox) Restore(_ context.Context, file, words string, _ []byte) (*backup.Manifest, error) {
	f.call("restore " + file)
	if f.restErr != nil {
		return nil, f.restErr
	}
	return &backup.Manifest{Header: backup.Header{Fingerprint: "73c5da0a"}}, nil
}
func (f *fakeBox) CheckData(context.Context) rescue.DataReport {
	f.call("check")
	return rescue.DataReport{Content: "ext4", Advice: "fine"}
}
func (f *fakeBox) ExportLogs(context.Context) (string, error) { f.call("logs"); return "logs.txt", nil }
func (f *fakeBox) EraseData(context.Context) error            { f.call("erase"); return nil }
func (f *fakeBox) Reboot(context.Context) error               { f.call("reboot"); return nil }

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
}

func post(t *testing.T, c *http.Client, base, path string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func TestRecoveryPageAuth(t *testing.T) {
	box := &fakeBox{st: rescue.Status{Disk: "/dev/vda", Data: "ext4", HasDB: true, Bundle: "1.2.0",
		Backups: []rescue.BackupFile{{Name: "a.anyabak"}}}}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	code := rescue.NewCode()
	srv, err := rescue.NewServer(rescue.Config{Box: box, Code: code, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := client(t)

	// A disk with data: every action needs the code.
	if st, body := post(t, c, ts.URL, "/erase", url.Values{"confirm": {"erase this box"}}); st != http.StatusUnauthorized || !strings.Contains(body, "recovery code") {
		t.Fatalf("erase without the code: %d", st)
	}
	// Cross-site posts are refused outright.
	req, _ := http.NewRequest("POST", ts.URL+"/login", strings.NewReader("code="+code))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := c.Do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
	// Five wrong codes, then a lockout that even the right code waits for.
	for i := range 5 {
		if st, _ := post(t, c, ts.URL, "/login", url.Values{"code": {"AAAAA-AAAAA"}}); st != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d", i, st)
		}
	}
	if st, body := post(t, c, ts.URL, "/login", url.Values{"code": {code}}); st != http.StatusUnauthorized || !strings.Contains(body, "wait") {
		t.Fatalf("right code while locked out: %d", st)
	}
	advance(61 * time.Second)
	if st, _ := post(t, c, ts.URL, "/login", url.Values{"code": {strings.ToLower(strings.ReplaceAll(code, "-", " "))}}); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	if st, body := post(t, c, ts.URL, "/erase", url.Values{"confirm": {"erase"}}); st != http.StatusBadRequest || !strings.Contains(body, "erase this box") {
		t.Fatalf("erase without the confirmation: %d", st)
	}
	if st, _ := post(t, c, ts.URL, "/erase", url.Values{"confirm": {"Erase this box"}}); st != http.StatusOK {
		t.Fatalf("erase: %d", st)
	}
	if st, _ := post(t, c, ts.URL, "/reinstall", url.Values{"data": {"wipe"}}); st != http.StatusBadRequest {
		t.Fatalf("wiping reinstall without the confirmation: %d", st)
	}
	if st, body := post(t, c, ts.URL, "/reinstall", url.Values{"data": {"keep"}}); st != http.StatusOK || !strings.Contains(body, "1.2.0 installed") {
		t.Fatalf("reinstall: %d", st)
	}
	box.restErr = backup.ErrTruncated
	if st, body := post(t, c, ts.URL, "/restore", url.Values{"file": {"a.anyabak"}, "mnemonic": {"x"}}); st != http.StatusUnprocessableEntity || !strings.Contains(body, "incomplete") {
		t.Fatalf("restore of a truncated backup: %d", st)
	}
	if strings.Join(box.calls, ",") != "erase,reinstall keep=yes,restore a.anyabak" {
		t.Fatalf("calls %v", box.calls)
	}

	// Physical presence: one waiting browser gets in when the stick comes back.
	p := client(t)
	if st, _ := post(t, p, ts.URL, "/presence", nil); st != http.StatusAccepted {
		t.Fatalf("presence: %d", st)
	}
	srv.Present()
	if st, _ := post(t, p, ts.URL, "/check", nil); st != http.StatusOK {
		t.Fatalf("check after presence: %d", st)
	}
	// Two browsers at once: both refused, presence locked.
	a, b := client(t), client(t)
	post(t, a, ts.URL, "/presence", nil)
	if st, _ := post(t, b, ts.URL, "/presence", nil); st != http.StatusConflict {
		t.Fatalf("second presence: %d", st)
	}
	srv.Present()
	if st, _ := post(t, a, ts.URL, "/check", nil); st != http.StatusUnauthorized {
		t.Fatalf("presence raced: %d", st)
	}

	// A blank disk has nothing to protect: the page is open.
	box.mu.Lock()
	box.st = rescue.Status{Disk: "/dev/vda", Data: "blank", Bundle: "1.2.0"}
	box.mu.Unlock()
	if st, _ := post(t, client(t), ts.URL, "/reinstall", url.Values{"data": {"keep"}}); st != http.StatusOK {
		t.Fatalf("reinstall onto a blank disk: %d", st)
	}
}
