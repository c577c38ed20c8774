package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

const (
	testVersion  = "v9.8.7-test"
	testPassword = "correct horse battery staple"
)

// clock is a settable time source for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a Server on a real database in a temporary directory, with a real
// control.Host whose Reboot and PowerOff are recorded.
type harness struct {
	t        *testing.T
	dbPath   string
	db       *storage.DB
	srv      *Server
	clock    *clock
	ring     *logring.Ring
	logs     *browsertest.LockedBuffer
	host     *control.Host
	reboots  chan struct{}
	poweroff chan struct{}

	// wallet, when set by newWalletHarness, makes open give the Server a real *hsm.Custody
	// on the same database, built by wallet.
	wallet  func(db *storage.DB, logger *slog.Logger) *hsm.Custody
	custody *hsm.Custody

	// nodeCfg, when set by newNodeHarness, makes open give the Server a Node: the real wallet
	// service (node/wallet) and chain backends (node/backend) on the same database and
	// custody, made anew at every open; node is the current one.
	nodeCfg *nodeConfig
	node    *testNode
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with a wallet made by wallet (nil: none).
func newHarnessWith(t *testing.T, wallet func(db *storage.DB, logger *slog.Logger) *hsm.Custody) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t:        t,
		dbPath:   filepath.Join(dir, "anya.db"),
		clock:    &clock{t: time.Now()},
		ring:     logring.New(1000),
		logs:     &browsertest.LockedBuffer{},
		reboots:  make(chan struct{}, 16),
		poweroff: make(chan struct{}, 16),
		wallet:   wallet,
	}
	h.host = &control.Host{
		Version: testVersion,
		DataDir: dir,
		Logs:    h.ring,
		Started: time.Now().Add(-3*time.Hour - 25*time.Minute),
		Restart: func() { h.reboots <- struct{}{} },
		Stop:    func() { h.poweroff <- struct{}{} },
	}
	h.open()
	t.Cleanup(func() {
		h.stopNode()
		if h.custody != nil {
			h.custody.Lock()
		}
		h.db.Close()
	})
	return h
}

// open opens the database and creates a Server on it.
func (h *harness) open() {
	h.t.Helper()
	db, err := storage.Open(h.dbPath, storage.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{DB: db, System: h.host, Logger: logger, Version: testVersion, Now: h.clock.Now}
	if h.wallet != nil {
		h.custody = h.wallet(db, logger)
		cfg.Wallet = h.custody
	}
	if h.nodeCfg != nil {
		h.node = newTestNode(db, h.custody, logger, *h.nodeCfg)
		cfg.Node = h.node
	}
	srv, err := New(cfg)
	if err != nil {
		h.stopNode()
		db.Close()
		h.t.Fatal(err)
	}
	h.db, h.srv = db, srv
}

// reopen closes the database and starts over with a new Server, as after a restart.
func (h *harness) reopen() {
	h.t.Helper()
	h.stopNode()
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// stopNode stops the node's wallet service and closes its backends, before the database
// they use is closed.
func (h *harness) stopNode() {
	if h.node != nil {
		h.node.stop()
		h.node = nil
	}
}

// response is a finished request.
type response struct {
	*http.Response
	body string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func (r response) sessionCookie() *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// do serves req and returns the result.
func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return response{Response: res, body: string(body)}
}

// req builds a request. A body starting with '{' is sent as JSON, any other non-empty
// body as a form.
func req(method, target, body string, cookie *http.Cookie, csrf string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		if strings.HasPrefix(body, "{") {
			r.Header.Set("Content-Type", "application/json")
		} else {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	if csrf != "" {
		r.Header.Set("X-CSRF-Token", csrf)
	}
	return r
}

// jsonBody encodes v.
func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// setup completes setup through the API and returns the session cookie and CSRF token.
func (h *harness) setup() (*http.Cookie, string) {
	h.t.Helper()
	res := h.do(req("POST", "/api/setup", jsonBody(map[string]string{"password": testPassword, "name": "living-room"}), nil, ""))
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("setup: %s %s", res.Status, res.body)
	}
	c := res.sessionCookie()
	if c == nil {
		h.t.Fatal("setup set no session cookie")
	}
	return c, res.json(h.t)["csrf"].(string)
}

// login logs in through the API and returns the session cookie and CSRF token.
func (h *harness) login() (*http.Cookie, string) {
	h.t.Helper()
	res := h.do(req("POST", "/api/login", jsonBody(map[string]string{"password": testPassword}), nil, ""))
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("login: %s %s", res.Status, res.body)
	}
	return res.sessionCookie(), res.json(h.t)["csrf"].(string)
}

// received reports whether ch gets a value within a short while.
func received(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}
