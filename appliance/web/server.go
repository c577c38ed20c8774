package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
)

// maxBody bounds every request body, except those of the routes that take a PSBT.
const maxBody = 64 << 10

// maxPSBTBody bounds the body of the routes that take a PSBT: one that carries the full
// previous transactions of many inputs is easily larger than maxBody.
const maxPSBTBody = 2 << 20

// Config configures a [Server].
type Config struct {
	DB      *storage.DB
	System  control.System
	Logger  *slog.Logger // nil discards the log
	Version string
	Now     func() time.Time // nil means time.Now; tests set it to move time forward
	// Wallet is the box's key custody (an *hsm.Custody). nil means the box has no wallet:
	// the pages do not mention it and the wallet routes answer 404.
	Wallet Wallet
	// Node is the Bitcoin side of the box: the wallet service and its chain backend. nil
	// means the box has none: the pages do not mention it and the node routes answer 404.
	Node Node
	// Lightning is the box's Lightning gossip node; nil: the pages do not mention it and the
	// Lightning routes answer 404.
	Lightning Lightning
	// Update configures the update page (/update, /api/update...); nil: the box does not
	// update itself, the pages do not mention it and the update routes answer 404.
	Update *UpdateConfig
	// Backups is the backup scheduler (/backups, /api/backups); nil: the box takes no
	// backups, the pages do not mention them and the backup routes answer 404.
	Backups Backups
	// Migrations gates the web subsystem's breaking schema migrations (agent.Migrate): an
	// *agent.Agent holds them back while the running slot is on trial. nil allows them.
	Migrations agent.Gate
}

// Route describes one registered route.
type Route struct {
	Method  string
	Pattern string // a net/http path pattern, such as "/api/status" or "/{$}"
	// Public routes need no session once setup is done.
	Public bool
	// PreSetup routes are served before the admin password has been set; all others then
	// redirect to /setup (pages) or answer 409 (API).
	PreSetup bool
	// OwnCSRF routes check the CSRF token themselves (a streamed multipart upload whose
	// first field is the token); the guard checks origin and session only.
	OwnCSRF bool
}

// Server serves the pages and the API. Create it with [New].
type Server struct {
	db      *storage.DB
	sys     control.System
	wallet  Wallet        // nil: no wallet feature
	node    Node          // nil: no node feature
	ln      Lightning     // nil: no Lightning feature
	update  *UpdateConfig // nil: no update feature
	backups Backups       // nil: no backups feature
	held    int           // web migrations held back until the running slot is committed
	log     *slog.Logger
	version string
	now     func() time.Time

	admin    *storage.Table[passwordHash]  // web/admin: the admin password
	settings *storage.Table[string]        // web: box_name
	sessions *storage.Table[sessionRecord] // web/sessions, keyed by the hex SHA-256 of the id

	limiter   *limiter
	pending   *pendingStore // wallets being created or restored, by session
	hashing   chan struct{} // bounds concurrent password hashing
	cop       *http.CrossOriginProtection
	setup     atomic.Bool // setup observed as done; it is never undone
	instance  string      // random per Server, tells the reboot page that the box came back
	uploading atomic.Bool // an update bundle is being received

	// What the node pages remember of each session.
	addresses    *stash[wallet.Address]  // the receive address handed out
	backendStash *stash[BackendSettings] // settings that failed their check, to save anyway
	setupTokens  *stash[string]          // the USB reset token made at setup, until shown
	proposals    *proposals              // proposals reviewed

	pages  map[string]*template.Template
	static *staticFiles

	mux     *http.ServeMux
	routes  []Route
	handler http.Handler
}

// New returns a server for cfg, after bringing the "web" subsystem's storage up to date.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("web: Config.DB is nil")
	}
	if cfg.System == nil {
		return nil, errors.New("web: Config.System is nil")
	}
	s := &Server{
		db:           cfg.DB,
		sys:          cfg.System,
		wallet:       cfg.Wallet,
		node:         cfg.Node,
		ln:           cfg.Lightning,
		update:       cfg.Update,
		backups:      cfg.Backups,
		log:          cfg.Logger,
		version:      cfg.Version,
		now:          cfg.Now,
		admin:        storage.NewTable[passwordHash](cfg.DB, bucketWeb, bucketAdmin),
		settings:     storage.NewTable[string](cfg.DB, bucketWeb),
		sessions:     storage.NewTable[sessionRecord](cfg.DB, bucketWeb, bucketSessions),
		limiter:      newLimiter(),
		pending:      newPendingStore(),
		addresses:    newStash[wallet.Address](),
		backendStash: newStash[BackendSettings](),
		setupTokens:  newStash[string](),
		proposals:    newProposals(),
		hashing:      make(chan struct{}, maxConcurrentHashes),
		cop:          http.NewCrossOriginProtection(),
		mux:          http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	held, err := agent.Migrate(s.db, cfg.Migrations, subsystem, migrations())
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if s.held = held; held > 0 {
		s.log.Warn("web: breaking migrations held back until the update is committed", "held", held)
	}
	if _, err := s.setupDone(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	s.instance = hex.EncodeToString(id[:])

	if s.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if s.static, err = newStaticFiles(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s.register()
	s.handler = s.logRequests(securityHeaders(s.mux))
	return s, nil
}

// Handler returns the handler serving every route in [Server.Routes].
func (s *Server) Handler() http.Handler { return s.handler }

// HeldMigrations is how many of the web subsystem's migrations New held back because the
// running slot is on trial (see Config.Migrations); after the commit, a new Server runs them.
func (s *Server) HeldMigrations() int { return s.held }

// Routes lists every registered route, in registration order.
func (s *Server) Routes() []Route {
	return append([]Route(nil), s.routes...)
}

// register declares every route of the server. Keep this the only place that adds routes.
func (s *Server) register() {
	const get, post = http.MethodGet, http.MethodPost
	type access struct{ public, preSetup, ownCSRF bool }
	var (
		open       = access{public: true, preSetup: true} // assets and health check
		beforeAuth = access{public: true}                 // login: no session yet
		setupOnly  = access{preSetup: true}               // setup: no session before it, refused after
		session    = access{}                             // everything else
		upload     = access{ownCSRF: true}                // a session; the handler checks CSRF
	)
	uploadBody := int64(0)
	if s.update != nil {
		uploadBody = s.update.maxUpload() + 1<<20 // the bundle and the form around it
	}
	const psbtBody = maxPSBTBody
	for _, r := range []struct {
		method, pattern string
		access
		h     http.HandlerFunc
		limit int64 // body limit of unsafe requests; 0 means maxBody
	}{
		{get, "/static/", open, s.serveStatic, 0},
		{get, "/healthz", open, s.healthz, 0},

		{get, "/setup", setupOnly, s.setupPage, 0},
		{post, "/setup", setupOnly, s.setupForm, 0},
		{post, "/api/setup", setupOnly, s.apiSetup, 0},

		{get, "/login", beforeAuth, s.loginPage, 0},
		{post, "/login", beforeAuth, s.loginForm, 0},
		{post, "/api/login", beforeAuth, s.apiLogin, 0},

		{get, "/{$}", session, s.statusPage, 0},
		{post, "/logout", session, s.logoutForm, 0},
		{post, "/reboot", session, s.rebootForm, 0},
		{post, "/poweroff", session, s.powerOffForm, 0},

		// The wallet pages: setup (step 2 of the first setup, or later from the status page),
		// unlocking, protection, signing.
		{get, "/wallet/setup", session, s.walletSetupPage, 0},
		{post, "/wallet/create", session, s.walletCreateForm, 0},
		{get, "/wallet/words", session, s.walletWordsPage, 0},
		{get, "/wallet/confirm", session, s.walletConfirmPage, 0},
		{post, "/wallet/confirm", session, s.walletConfirmForm, 0},
		{get, "/wallet/restore", session, s.walletRestorePage, 0},
		{post, "/wallet/restore", session, s.walletRestoreForm, 0},
		{get, "/wallet/protect", session, s.walletProtectPage, 0},
		{post, "/wallet/protect", session, s.walletProtectForm, 0},
		{post, "/wallet/cancel", session, s.walletCancelForm, 0},
		{post, "/wallet/unlock", session, s.walletUnlockForm, 0},
		{post, "/wallet/recover", session, s.walletRecoverForm, 0},
		{post, "/wallet/lock", session, s.walletLockForm, 0},
		{get, "/wallet/protection", session, s.walletProtectionPage, 0},
		{post, "/wallet/protection", session, s.walletProtectionForm, 0},
		{get, "/wallet/sign", session, s.walletSignPage, 0},
		{post, "/wallet/review", session, s.walletReviewForm, psbtBody},
		{post, "/wallet/sign", session, s.walletSignForm, psbtBody},
		{post, "/wallet/download", session, s.walletDownloadForm, psbtBody},

		// The node pages: the wallet's dashboard, its chain backend, receive, send, history.
		{get, "/node", session, s.nodeDashboardPage, 0},
		{get, "/node/backend", session, s.nodeBackendPage, 0},
		{post, "/node/backend", session, s.nodeBackendForm, 0},
		{get, "/node/receive", session, s.nodeReceivePage, 0},
		{post, "/node/receive", session, s.nodeReceiveNew, 0},
		{get, "/node/send", session, s.nodeSendPage, 0},
		{post, "/node/send", session, s.nodeSendForm, 0},
		{post, "/node/confirm", session, s.nodeConfirmForm, 0},
		{get, "/node/history", session, s.nodeHistoryPage, 0},
		{get, "/node/bump", session, s.nodeSpeedupPage, 0},
		{post, "/node/bump", session, s.nodeSpeedupForm, 0},
		{get, "/node/cpfp", session, s.nodeSpeedupPage, 0},
		{post, "/node/cpfp", session, s.nodeSpeedupForm, 0},

		{post, "/api/logout", session, s.apiLogout, 0},
		{get, "/api/session", session, s.apiSession, 0},
		{get, "/api/status", session, s.apiStatus, 0},
		{get, "/api/log", session, s.apiLog, 0},
		{post, "/api/reboot", session, s.apiReboot, 0},
		{post, "/api/poweroff", session, s.apiPowerOff, 0},

		{get, "/api/wallet", session, s.apiWallet, 0},
		{post, "/api/wallet/mnemonic", session, s.apiWalletMnemonic, 0},
		{post, "/api/wallet/setup", session, s.apiWalletSetup, 0},
		{post, "/api/wallet/unlock", session, s.apiWalletUnlock, 0},
		{post, "/api/wallet/recover", session, s.apiWalletRecover, 0},
		{post, "/api/wallet/lock", session, s.apiWalletLock, 0},
		{post, "/api/wallet/protection", session, s.apiWalletProtection, 0},
		{post, "/api/wallet/summary", session, s.apiWalletSummary, psbtBody},
		{post, "/api/wallet/sign", session, s.apiWalletSign, psbtBody},
		{get, "/api/wallet/audit", session, s.apiWalletAudit, 0},
		{post, "/api/wallet/audit/verify", session, s.apiWalletAuditVerify, 0},

		{get, "/api/node", session, s.apiNode, 0},
		{get, "/api/node/backend", session, s.apiNodeBackend, 0},
		{post, "/api/node/backend", session, s.apiNodeBackendSave, 0},
		{post, "/api/node/address", session, s.apiNodeAddress, 0},
		{get, "/api/node/fees", session, s.apiNodeFees, 0},
		{get, "/api/node/history", session, s.apiNodeHistory, 0},
		{post, "/api/node/propose", session, s.apiNodePropose, 0},
		{post, "/api/node/bump", session, s.apiNodeBump, 0},
		{post, "/api/node/cpfp", session, s.apiNodeCPFP, 0},
		{post, "/api/node/send", session, s.apiNodeSend, 0},

		// The Lightning page: the gossip node's graph, peers, and route queries.
		{get, "/lightning", session, s.lightningPage, 0},
		{post, "/lightning/peer", session, s.lightningPeerForm, 0},
		{get, "/api/lightning", session, s.apiLightning, 0},
		{post, "/api/lightning/peer", session, s.apiLightningPeer, 0},
		{get, "/api/lightning/route", session, s.apiLightningRoute, 0},

		// Updates: the running and offered versions, the history, installing a release.
		{get, "/update", session, s.updatePage, 0},
		{post, "/update/now", session, s.updateNowForm, 0},
		{post, "/update/upload", upload, s.updateUploadForm, uploadBody},
		{post, "/update/usb", session, s.updateUSBForm, 0},
		{post, "/update/fleet", session, s.updateFleetForm, 0},
		{post, "/update/fleet/leave", session, s.updateFleetLeaveForm, 0},
		{get, "/api/update/fleet", session, s.apiUpdateFleet, 0},
		{post, "/api/update/fleet", session, s.apiUpdateFleetEnroll, 0},
		{post, "/api/update/fleet/leave", session, s.apiUpdateFleetLeave, 0},
		{get, "/api/update", session, s.apiUpdate, 0},
		{get, "/api/update/history", session, s.apiUpdateHistory, 0},
		{post, "/api/update/now", session, s.apiUpdateNow, 0},
		{post, "/api/update/upload", session, s.apiUpdateUpload, uploadBody},
		{post, "/api/update/usb", session, s.apiUpdateUSB, 0},

		// Backups (backups.go).
		{get, "/backups", session, s.backupsPage, 0},
		{post, "/backups/now", session, s.backupNowForm, 0},
		{get, "/backups/file/{name}", session, s.backupDownload, 0},
		{get, "/api/backups", session, s.apiBackups, 0},
		{post, "/api/backups", session, s.apiBackupNow, 0},

		// Factory reset and the USB reset token (reset.go).
		{get, "/reset", session, s.resetPage, 0},
		{post, "/reset", session, s.resetForm, 0},
		{post, "/reset/token", session, s.resetTokenForm, 0},
		{post, "/api/reset", session, s.apiReset, 0},
		{post, "/api/reset/token", session, s.apiResetToken, 0},
	} {
		h := r.h
		for _, f := range s.features() {
			if f.covers(r.pattern) {
				h = s.needFeature(f, h)
			}
		}
		limit := r.limit
		if limit == 0 {
			limit = maxBody
		}
		s.handle(Route{Method: r.method, Pattern: r.pattern, Public: r.public, PreSetup: r.preSetup, OwnCSRF: r.ownCSRF}, limit, h)
	}
}

// feature is an optional part of the box: its routes answer 404 when it is absent.
type feature struct {
	present  func() bool // asked at each request
	prefixes []string    // the routes' patterns: equal to one, or starting with one and "/"
	noun     string      // what the box lacks: "wallet", "Bitcoin node"
	title    string      // the error page's title
}

func (f feature) covers(pattern string) bool {
	for _, p := range f.prefixes {
		if pattern == p || strings.HasPrefix(pattern, p+"/") {
			return true
		}
	}
	return false
}

func (s *Server) features() []feature {
	return []feature{
		{func() bool { return s.wallet != nil }, []string{"/wallet", "/api/wallet"}, "wallet", "No wallet"},
		{func() bool { return s.node != nil }, []string{"/node", "/api/node"}, "Bitcoin node", "No Bitcoin node"},
		{func() bool { return s.ln != nil }, []string{"/lightning", "/api/lightning"}, "Lightning node", "No Lightning node"},
		{func() bool { return s.update != nil }, []string{"/update", "/api/update"}, "update agent", "No updates"},
		{func() bool { return s.backups != nil }, []string{"/backups", "/api/backups"}, "backups", "No backups"},
	}
}

// needFeature answers 404 when the box lacks f. It runs after the guard, so these routes
// refuse a request without a session the same way every other route does.
func (s *Server) needFeature(f feature, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if f.present() {
			next(w, r)
			return
		}
		if isAPI(r.URL.Path) {
			writeError(w, http.StatusNotFound, "this box has no "+f.noun)
			return
		}
		s.errorPage(w, r, http.StatusNotFound, f.title, "This box has no "+f.noun+".")
	}
}

// handle records rt and serves it through the guard its flags call for, with request bodies
// limited to limit bytes.
func (s *Server) handle(rt Route, limit int64, h http.HandlerFunc) {
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.Method+" "+rt.Pattern, s.guard(rt, limit, h))
}

// guard enforces, in order: same-origin for state-changing requests, the setup state, a
// valid session, and the session's CSRF token.
func (s *Server) guard(rt Route, limit int64, next http.HandlerFunc) http.Handler {
	api := isAPI(rt.Pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unsafe := !safeMethod(r.Method)
		if unsafe {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if err := s.cop.Check(r); err != nil {
				s.log.Warn("refused cross-origin request", "method", r.Method, "path", r.URL.Path,
					"origin", r.Header.Get("Origin"), "client", clientAddr(r))
				s.refuse(w, r, api, http.StatusForbidden, "cross-origin request refused")
				return
			}
		}

		done, err := s.setupDone()
		if err != nil {
			s.internalError(w, r, api, "read setup state", err)
			return
		}
		if !done {
			if rt.PreSetup {
				next(w, r)
				return
			}
			if api {
				writeError(w, http.StatusConflict, "setup required")
				return
			}
			http.Redirect(w, r, "/setup", http.StatusSeeOther)
			return
		}
		if rt.Public {
			next(w, r)
			return
		}

		sess, err := s.currentSession(r)
		if err != nil {
			s.internalError(w, r, api, "read session", err)
			return
		}
		if sess == nil {
			if api {
				writeError(w, http.StatusUnauthorized, "login required")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		// An OwnCSRF route's multipart form carries the token as its first field, which the
		// handler reads: reading it here would spool the whole body first.
		ownCSRF := rt.OwnCSRF && !api && r.Header.Get("X-CSRF-Token") == "" && isMultipart(r)
		if unsafe && !ownCSRF && !sess.validCSRF(csrfToken(r, api)) {
			s.log.Warn("refused request without a valid CSRF token", "method", r.Method, "path", r.URL.Path,
				"client", clientAddr(r))
			s.refuse(w, r, api, http.StatusForbidden, "missing or invalid CSRF token; reload the page and try again")
			return
		}
		next(w, r.WithContext(withSession(r.Context(), sess)))
	})
}

// csrfToken returns the token a request carries: the X-CSRF-Token header, or for pages the
// form field csrf.
func csrfToken(r *http.Request, api bool) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" || api {
		return t
	}
	return r.PostFormValue("csrf")
}

func isAPI(path string) bool { return strings.HasPrefix(path, "/api/") }

func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// refuse answers a request the guard turned away.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, api bool, status int, msg string) {
	if api {
		writeError(w, status, msg)
		return
	}
	s.errorPage(w, r, status, http.StatusText(status), msg)
}

// internalError logs err and answers 500 without details.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, api bool, what string, err error) {
	s.log.Error(what, "method", r.Method, "path", r.URL.Path, "err", err)
	msg := "internal error: " + what + " failed; see the box's log"
	if api {
		writeError(w, http.StatusInternalServerError, msg)
		return
	}
	s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", msg)
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; "+
			"frame-ancestors 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store") // the static file handler relaxes this for assets
		next.ServeHTTP(w, r)
	})
}

// logRequests logs each request at debug level: method, path (never the query), status.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"client", clientAddr(r), "duration", time.Since(start).Round(time.Microsecond))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// healthz answers "ok" while the server runs; X-Anya-Instance changes when anyad restarts.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Anya-Instance", s.instance)
	w.Write([]byte("ok"))
}
