package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
)

// Config configures a Server.
type Config struct {
	// Store keeps the state. Required.
	Store Store
	// Root is the fleet's trusted root metadata (the 1.root.json the boxes ship): releases
	// are verified against it before they are accepted. Without it no release can be added.
	Root []byte
	// Releases is where bundles live: a local directory, served under /releases/, or the
	// http(s) base URL of a CDN or any static file server (then nothing is served here).
	// Each release is a bundle directory below it.
	Releases string
	// AdminToken is the bearer token of the admin API and page. Required.
	AdminToken string

	// Window is how far a device request's timestamp may be from the clock
	// (dev.DefaultWindow when zero).
	Window time.Duration
	// Poll is the check-in interval suggested to devices (one hour when zero).
	Poll time.Duration
	// Now is the clock (time.Now when nil); Rand the source of tokens (crypto/rand when nil).
	Now  func() time.Time
	Rand io.Reader
	// HTTP fetches bundle metadata from a CDN (http.DefaultClient when nil).
	HTTP *http.Client
	Log  *slog.Logger // slog.Default() when nil
}

// Server is the fleet server. Its methods are the admin operations; Handler serves the device
// API, the admin API and page, and the releases directory.
type Server struct {
	store    Store
	root     []byte
	relDir   *os.Root // local releases directory, or nil
	relURL   *url.URL // CDN base, or nil
	adminSum [sha256.Size]byte
	session  []byte // key of the admin page's cookies
	window   time.Duration
	poll     time.Duration
	now      func() time.Time
	rand     io.Reader
	http     *http.Client
	log      *slog.Logger

	keysMu sync.RWMutex
	keys   map[string]*ecdsa.PublicKey // parsed device keys by id
}

// New returns a Server. Close releases its releases directory (not the Store).
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("fleet: no store")
	}
	if len(cfg.AdminToken) < 16 {
		return nil, errors.New("fleet: the admin token must have at least 16 characters")
	}
	s := &Server{store: cfg.Store, root: cfg.Root, window: cfg.Window, poll: cfg.Poll, now: cfg.Now,
		rand: cfg.Rand, http: cfg.HTTP, log: cfg.Log, keys: map[string]*ecdsa.PublicKey{}}
	if len(s.root) > 0 {
		if _, err := release.NewState(s.root); err != nil {
			return nil, fmt.Errorf("fleet: trusted root: %w", err)
		}
	}
	s.adminSum = sha256.Sum256([]byte(cfg.AdminToken))
	sk := sha256.Sum256([]byte("anya-fleet-admin-session\x00" + cfg.AdminToken))
	s.session = sk[:]
	switch {
	case strings.HasPrefix(cfg.Releases, "http://"), strings.HasPrefix(cfg.Releases, "https://"):
		u, err := url.Parse(cfg.Releases)
		if err != nil {
			return nil, fmt.Errorf("fleet: releases URL: %w", err)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		s.relURL = u
	case cfg.Releases != "":
		if err := os.MkdirAll(cfg.Releases, 0o755); err != nil {
			return nil, fmt.Errorf("fleet: releases directory: %w", err)
		}
		r, err := os.OpenRoot(cfg.Releases)
		if err != nil {
			return nil, fmt.Errorf("fleet: releases directory: %w", err)
		}
		s.relDir = r
	}
	if s.window <= 0 {
		s.window = dev.DefaultWindow
	}
	if s.poll <= 0 {
		s.poll = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.http == nil {
		s.http = http.DefaultClient
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Close releases the releases directory.
func (s *Server) Close() error {
	if s.relDir != nil {
		return s.relDir.Close()
	}
	return nil
}

// Handler serves everything:
//
//	POST /v1/device/enroll, /v1/device/checkin   device API (signed requests)
//	/api/v1/...                                  admin JSON API (bearer token)
//	/admin/                                      admin page
//	GET /releases/...                            bundles, with a local releases directory
//	GET /healthz                                 liveness
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+dev.EnrollPath, s.handleEnroll)
	mux.HandleFunc("POST "+dev.CheckInPath, s.handleCheckIn)
	s.adminRoutes(mux)
	s.pageRoutes(mux)
	if s.relDir != nil {
		mux.Handle("GET /releases/", s.releasesHandler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	return mux
}

// NewHTTPServer returns an http.Server for h with the timeouts a server facing the internet
// needs: headers within 10 s, request bodies (all small) within a minute, idle connections
// closed after two. There is no write timeout, so that large payloads can be downloaded
// from /releases/ over slow links.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

// httpError is a refusal with its HTTP status and a stable code.
type httpError struct {
	status     int
	code       string
	msg        string
	serverTime int64
}

func (e *httpError) Error() string { return e.msg }

func errf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}

// writeError answers with err: its own status and code for an *httpError, 500 (logged, not
// shown) otherwise.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.log.Error("fleet: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = errf(http.StatusInternalServerError, dev.CodeInternal, "internal error")
	}
	writeJSON(w, he.status, dev.ErrorResponse{Code: he.code, Message: he.msg, ServerTime: he.serverTime})
}

// readBody reads a request body of at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errf(http.StatusRequestEntityTooLarge, dev.CodeTooLarge, "body larger than %d bytes", max)
		}
		return nil, errf(http.StatusBadRequest, dev.CodeBadRequest, "read body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes a JSON object; unknown fields are ignored (newer clients may send more).
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errf(http.StatusBadRequest, dev.CodeBadRequest, "malformed JSON: %v", err)
	}
	return nil
}
