package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// clock is a settable clock shared by the server and the simulated devices.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testAdminToken = "test-admin-token-0123456789abcdef"

type harness struct {
	t      testing.TB
	dir    string
	clock  *clock
	store  *BoltStore
	srv    *Server
	ts     *httptest.Server
	admin  *AdminClient
	root   []byte
	keys   string
	relDir string
}

// newHarness starts a server on a loopback httptest server with a bbolt store and the demo
// releases of the given counters signed into its releases directory (none added yet).
func newHarness(t testing.TB, counters ...uint64) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: &clock{t: time.Now().UTC().Truncate(time.Millisecond)}}
	h.keys, h.relDir = filepath.Join(h.dir, "keys"), filepath.Join(h.dir, "releases")
	var err error
	if h.root, err = SignDemo(h.keys, h.relDir, "amd64", counters...); err != nil {
		t.Fatal(err)
	}
	if h.store, err = OpenBoltStore(filepath.Join(h.dir, "fleet.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	h.srv, err = New(Config{Store: h.store, Root: h.root, Releases: h.relDir, AdminToken: testAdminToken,
		Now: h.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.srv.Close() })
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)
	h.admin = &AdminClient{URL: h.ts.URL, Token: testAdminToken, HTTP: h.ts.Client()}
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (h *harness) ctx() context.Context { return context.Background() }

// token creates an enrollment token.
func (h *harness) token(req TokenRequest) string {
	h.t.Helper()
	t, err := h.admin.CreateToken(h.ctx(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return t.Secret
}

// addRelease adds the demo release with counter n to channel at percent.
func (h *harness) addRelease(channel string, n uint64, percent float64, p *Policy) Release {
	h.t.Helper()
	r, err := h.admin.AddRelease(h.ctx(), AddRelease{Channel: channel, Dir: "stable-" + itoa(n), Percent: &percent, Policy: p})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// simDevice is a simulated box.
type simDevice struct {
	key    dev.Key
	client *dev.Client
	id     string
	report dev.Report
}

func (h *harness) newDevice(key dev.Key) *simDevice {
	h.t.Helper()
	if key == nil {
		k, err := dev.GenerateSoftwareKey()
		if err != nil {
			h.t.Fatal(err)
		}
		key = k
	}
	c, err := dev.NewClient(h.ts.URL, key, dev.Options{HTTP: h.ts.Client(), Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return &simDevice{key: key, client: c, id: c.DeviceID(),
		report: dev.Report{Version: "1.1.0", Counter: 1, Slot: "a", Arch: "amd64", Health: dev.HealthOK}}
}

// enrolled returns a new device enrolled with token.
func (h *harness) enrolled(token string, key dev.Key) *simDevice {
	h.t.Helper()
	d := h.newDevice(key)
	if _, err := d.client.Enroll(h.ctx(), token, dev.Hardware{Arch: "amd64", Model: "sim"}, ""); err != nil {
		h.t.Fatalf("enroll: %v", err)
	}
	return d
}

func (d *simDevice) checkIn(t testing.TB) dev.Offer {
	t.Helper()
	o, err := d.client.CheckIn(context.Background(), d.report)
	if err != nil {
		t.Fatalf("check-in of %s: %v", d.id, err)
	}
	return o
}

// signed builds a device request signed by key for id at time now.
func signed(t testing.TB, key dev.Key, id, method, url, path string, now time.Time, body []byte) *http.Request {
	t.Helper()
	a, err := dev.SignRequest(key, rand.Reader, method, path, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", a.Header())
	return req
}

// send sends req and returns the status and the error code of the answer.
func send(t testing.TB, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er dev.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, er.Code
}
