package rescue

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/reset"
)

// Status is what the recovery page shows about the box and the stick.
type Status struct {
	// Reason says why the box is in recovery mode ("booted from the recovery stick", "both
	// system slots failed to start").
	Reason string `json:"reason"`
	// Disk is the internal disk ("" when none was found), DiskBytes its size.
	Disk      string `json:"disk"`
	DiskBytes int64  `json:"disk_bytes"`
	// Installed is the firmware version on the internal disk, "" when none.
	Installed string `json:"installed"`
	// Data is the data partition's content (blank, ext4, unknown; "" without one) and
	// HasDB whether it holds the box's database.
	Data  string `json:"data"`
	HasDB bool   `json:"has_db"`
	// Bundle is the version of the stick's signed release, "" without a stick.
	Bundle  string       `json:"bundle"`
	Backups []BackupFile `json:"backups"`
}

// Protected reports whether the internal disk may hold something of the owner's: a data
// partition that is neither blank nor an empty filesystem. Then every action needs the
// recovery code (or physical presence).
func (s Status) Protected() bool {
	return s.Data == "unknown" || s.HasDB
}

// Box is what the recovery page acts on (Machine on the box; a fake in tests).
type Box interface {
	Status(ctx context.Context) (Status, error)
	Reinstall(ctx context.Context, keepData bool) (ReinstallResult, error)
	Restore(ctx context.Context, file, mnemonic string, passphrase []byte) (*backup.Manifest, error)
	CheckData(ctx context.Context) DataReport
	ExportLogs(ctx context.Context) (string, error)
	EraseData(ctx context.Context) error
	Reboot(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	Box Box
	// Code is the one-time recovery code (NewCode) the caller printed on the console.
	Code string
	Log  *slog.Logger
	Now  func() time.Time
}

// Server serves the recovery page.
type Server struct {
	box  Box
	auth *auth
	log  *slog.Logger
	cop  *http.CrossOriginProtection
	mux  *http.ServeMux
	busy sync.Mutex // one action at a time
}

//go:embed recovery.html recovery.css
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "recovery.html"))

const cookieName = "anya_recovery"

// NewServer returns the recovery page's server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Box == nil || normalizeCode(cfg.Code) == "" {
		return nil, errors.New("recovery page: Box and Code are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{box: cfg.Box, auth: newAuth(cfg.Code, cfg.Now), log: cfg.Log, cop: http.NewCrossOriginProtection(), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /recovery.css", s.css)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "recovery") })
	s.mux.HandleFunc("GET /api/recovery", s.apiStatus)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /presence", s.presence)
	s.mux.HandleFunc("POST /reinstall", s.action("reinstall", s.reinstall))
	s.mux.HandleFunc("POST /restore", s.action("restore", s.restore))
	s.mux.HandleFunc("POST /check", s.action("check", s.check))
	s.mux.HandleFunc("POST /logs", s.action("logs", s.logs))
	s.mux.HandleFunc("POST /erase", s.action("erase", s.erase))
	s.mux.HandleFunc("POST /reboot", s.action("reboot", s.reboot))
	return s, nil
}

// Present tells the page that the recovery stick was pulled out and put back in: the
// browser waiting for physical presence, if any, is let in.
func (s *Server) Present() {
	if s.auth.present() {
		s.log.Info("recovery page: physical presence confirmed (the stick was put back in)")
	}
}

// Handler is the page's HTTP handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s.cop.Handler(s.mux).ServeHTTP(w, r)
	})
}

type view struct {
	Status   Status
	Err      string
	Authed   bool
	Open     bool // nothing to protect: no login needed
	Result   string
	Report   *DataReport
	Waiting  bool
	Confirm  string
	Accounts []string
}

func (s *Server) session(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, v view) {
	st, err := s.box.Status(r.Context())
	if err != nil && v.Err == "" {
		v.Err = "Reading the box: " + err.Error()
	}
	v.Status, v.Confirm = st, reset.Confirmation
	v.Open = !st.Protected()
	v.Authed = v.Open || s.auth.valid(s.session(r))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, v); err != nil {
		s.log.Error("recovery page", "err", err)
	}
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) { s.render(w, r, http.StatusOK, view{}) }

func (s *Server) css(w http.ResponseWriter, _ *http.Request) {
	b, _ := assets.ReadFile("recovery.css")
	w.Header().Set("Content-Type", "text/css")
	w.Write(b)
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.box.Status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Status
		Protected bool `json:"protected"`
		Authed    bool `json:"authed"`
	}{st, st.Protected(), !st.Protected() || s.auth.valid(s.session(r))})
}

func setCookie(w http.ResponseWriter, r *http.Request, tok string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	tok, wait, ok := s.auth.login(r.PostFormValue("code"))
	if !ok {
		msg := "That is not the recovery code shown on the box's screen."
		if wait > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
			msg = fmt.Sprintf("Too many wrong codes: wait %s.", wait.Round(time.Second))
		}
		s.log.Warn("recovery page: wrong recovery code", "client", r.RemoteAddr)
		s.render(w, r, http.StatusUnauthorized, view{Err: msg})
		return
	}
	s.log.Info("recovery page: logged in with the recovery code", "client", r.RemoteAddr)
	setCookie(w, r, tok)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) presence(w http.ResponseWriter, r *http.Request) {
	tok := s.session(r)
	if tok == "" {
		tok, _ = newToken()
		setCookie(w, r, tok)
	}
	if !s.auth.requestPresence(tok) {
		s.log.Warn("recovery page: two browsers asked for physical presence at once; presence is locked for 5 minutes", "client", r.RemoteAddr)
		s.render(w, r, http.StatusConflict, view{Err: "Another browser is waiting for the stick too: presence is locked for 5 minutes. Use the recovery code from the box's screen."})
		return
	}
	s.render(w, r, http.StatusAccepted, view{Waiting: true})
}

// action wraps a state-changing handler: it must be authorized (unless the disk holds
// nothing to protect) and runs alone.
func (s *Server) action(name string, h func(w http.ResponseWriter, r *http.Request) (view, int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := s.box.Status(r.Context())
		if err != nil {
			s.render(w, r, http.StatusInternalServerError, view{Err: err.Error()})
			return
		}
		if st.Protected() && !s.auth.valid(s.session(r)) {
			s.render(w, r, http.StatusUnauthorized, view{Err: "Enter the recovery code first: this box's disk holds data."})
			return
		}
		if !s.busy.TryLock() {
			s.render(w, r, http.StatusConflict, view{Err: "Another action is running: wait until it finished."})
			return
		}
		defer s.busy.Unlock()
		s.log.Info("recovery page: "+name, "client", r.RemoteAddr)
		v, code := h(w, r)
		s.render(w, r, code, v)
	}
}

func (s *Server) reinstall(w http.ResponseWriter, r *http.Request) (view, int) {
	keep := r.PostFormValue("data") != "wipe"
	if !keep && strings.TrimSpace(strings.ToLower(r.PostFormValue("confirm"))) != reset.Confirmation {
		return view{Err: fmt.Sprintf("To wipe the data partition, type %q.", reset.Confirmation)}, http.StatusBadRequest
	}
	res, err := s.box.Reinstall(r.Context(), keep)
	if err != nil {
		s.log.Error("recovery: reinstall", "err", err)
		return view{Err: "The reinstall failed: " + err.Error()}, http.StatusUnprocessableEntity
	}
	kept := "the data partition was kept"
	if !res.KeptData {
		kept = "the data partition was cleared"
	}
	return view{Result: fmt.Sprintf("Firmware %s installed on both slots in %s; %s. Remove the stick and restart.", res.Version, res.Took.Round(time.Second), kept)}, http.StatusOK
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) (view, int) {
	file := r.PostFormValue("file")
	words := strings.Join(strings.Fields(strings.ToLower(r.PostFormValue("mnemonic"))), " ")
	pass := []byte(r.PostFormValue("passphrase"))
	defer clear(pass)
	m, err := s.box.Restore(r.Context(), file, words, pass)
	if err != nil {
		s.log.Warn("recovery: restore refused", "file", file, "err", err)
		return view{Err: Explain(err)}, http.StatusUnprocessableEntity
	}
	v := view{Result: fmt.Sprintf("Backup of %s (wallet %s, firmware %s) restored. Restart from the internal disk and set the box up with the same words.",
		m.Created.Format("2006-01-02 15:04"), m.Fingerprint, m.BoxVersion)}
	for _, a := range m.Accounts {
		v.Accounts = append(v.Accounts, a.Descriptor)
	}
	return v, http.StatusOK
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) (view, int) {
	rep := s.box.CheckData(r.Context())
	return view{Report: &rep}, http.StatusOK
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) (view, int) {
	name, err := s.box.ExportLogs(r.Context())
	if err != nil {
		return view{Err: err.Error()}, http.StatusUnprocessableEntity
	}
	return view{Result: "The logs were written to the stick: " + name}, http.StatusOK
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) (view, int) {
	if strings.TrimSpace(strings.ToLower(r.PostFormValue("confirm"))) != reset.Confirmation {
		return view{Err: fmt.Sprintf("Type %q to erase the data partition.", reset.Confirmation)}, http.StatusBadRequest
	}
	if err := s.box.EraseData(r.Context()); err != nil {
		return view{Err: "The erase failed: " + err.Error()}, http.StatusUnprocessableEntity
	}
	return view{Result: "The data partition was erased: every secret on it is gone. The box starts with the setup wizard."}, http.StatusOK
}

func (s *Server) reboot(w http.ResponseWriter, r *http.Request) (view, int) {
	if err := s.box.Reboot(r.Context()); err != nil {
		return view{Err: err.Error()}, http.StatusInternalServerError
	}
	return view{Result: "Restarting. Remove the stick to start from the internal disk."}, http.StatusOK
}
