package web

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/anya-edge/anya/hsm"
)

// layoutData is what the shared layout shows around every page.
type layoutData struct {
	Title    string
	BoxName  string
	Firmware string // version of anyad, shown in the footer
	LoggedIn bool
	CSRF     string
	Narrow   bool // a single centered card: setup, login and messages
	// Nav shows the links between the box's status and the wallet's pages; NodeNav the
	// wallet's links in it, UpdateNav the link to the update page, LightningNav the link
	// to the Lightning page.
	Nav, NodeNav, UpdateNav, LightningNav bool
	BackupsNav                            bool // the box takes backups: the status page links to them
	// ResetToken is the USB reset token made at setup, shown once on the first page the new
	// session sees (package reset; it can be replaced later on /reset).
	ResetToken string
}

type setupData struct {
	layoutData
	Name   string
	Errors fieldErrors
}

type loginData struct {
	layoutData
	Error string
}

type statusData struct {
	layoutData
	statusView
	Wallet walletView
}

// waitData is the page shown while the box reboots or powers off.
type waitData struct {
	layoutData
	Action   string // "reboot" or "poweroff", read by app.js
	Instance string // the X-Anya-Instance of this run of anyad
}

type errorData struct {
	layoutData
	Heading string
	Message string
}

// layout returns the layout data for a page of r.
func (s *Server) layout(r *http.Request, title string, narrow bool) layoutData {
	l := layoutData{Title: title, Firmware: s.version, Narrow: narrow}
	if done, _ := s.setupDone(); done {
		l.BoxName = s.boxName()
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		l.LoggedIn, l.CSRF = true, sess.CSRF
		l.NodeNav, l.UpdateNav, l.LightningNav, l.BackupsNav = s.node != nil, s.update != nil, s.ln != nil, s.backups != nil
		l.Nav = l.NodeNav || l.UpdateNav || l.LightningNav
		if tok, ok := s.setupTokens.get(sess.key, s.now()); ok {
			s.setupTokens.drop(sess.key)
			l.ResetToken = tok
		}
	}
	return l
}

// render answers with the page name filled with data. The page is rendered completely
// before anything is sent, so a failure yields a clean error.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	t := s.pages[name]
	if t == nil {
		s.log.Error("render page: no such page", "page", name)
		http.Error(w, "internal error: no such page", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error: rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// errorPage answers with a page explaining what went wrong.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	s.render(w, status, "error", errorData{layoutData: s.layout(r, heading, true), Heading: heading, Message: msg})
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if done, err := s.setupDone(); err != nil || done {
		if err != nil {
			s.internalError(w, r, false, "read setup state", err)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "setup", setupData{layoutData: s.layout(r, "Set up", true)})
}

func (s *Server) setupForm(w http.ResponseWriter, r *http.Request) {
	if done, err := s.setupDone(); err != nil || done {
		if err != nil {
			s.internalError(w, r, false, "read setup state", err)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read: "+err.Error())
		return
	}
	password := r.PostForm.Get("password")
	name, errs := validateSetup(password, r.PostForm.Get("confirm"), r.PostForm.Get("name"))
	if len(errs) > 0 {
		s.render(w, http.StatusBadRequest, "setup", setupData{
			layoutData: s.layout(r, "Set up", true),
			Name:       r.PostForm.Get("name"),
			Errors:     errs,
		})
		return
	}
	if err := s.completeSetup(r.Context(), password, name); err != nil {
		if errors.Is(err, errAlreadySetUp) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s.internalError(w, r, false, "setup", err)
		return
	}
	sess, err := s.newSession(w, r)
	if err != nil {
		s.internalError(w, r, false, "create session", err)
		return
	}
	if tok := s.setupResetToken(r); tok != "" {
		s.setupTokens.put(sess.key, tok, s.now(), stashLifetime)
	}
	if s.wallet != nil { // step 2: the wallet, which the owner may skip
		if st, err := s.wallet.Status(); err == nil && st.State == hsm.StateNone {
			http.Redirect(w, r, "/wallet/setup", http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	sess, err := s.currentSession(r)
	if err != nil {
		s.internalError(w, r, false, "read session", err)
		return
	}
	if sess != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login", loginData{layoutData: s.layout(r, "Log in", true)})
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read: "+err.Error())
		return
	}
	res, err := s.login(r, r.PostForm.Get("password"))
	if err != nil {
		s.internalError(w, r, false, "check password", err)
		return
	}
	if !res.ok {
		status := http.StatusUnauthorized
		if res.wait > 0 {
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(res.wait)))
		}
		s.render(w, status, "login", loginData{layoutData: s.layout(r, "Log in", true), Error: res.message()})
		return
	}
	if _, err := s.newSession(w, r); err != nil {
		s.internalError(w, r, false, "create session", err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logoutForm(w http.ResponseWriter, r *http.Request) {
	if err := s.endSession(w, r, sessionFrom(r.Context())); err != nil {
		s.internalError(w, r, false, "log out", err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	s.renderStatus(w, r, http.StatusOK, nil)
}

// renderStatus answers with the status page; edit, when not nil, adds what a wallet form
// has to say to the Wallet card.
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, code int, edit func(*walletView)) {
	ctx := r.Context()
	st, stErr := s.sys.Status(ctx)
	if stErr != nil {
		s.log.Error("status page: read status", "err", stErr)
	}
	stats, statsErr := s.db.Stats()
	if statsErr != nil {
		s.log.Error("status page: read storage stats", "err", statsErr)
	}
	entries, logErr := s.sys.Log(ctx, 0, statusLogLines)
	if logErr != nil {
		s.log.Error("status page: read log", "err", logErr)
	}
	v := newStatusView(s.now(), st, stErr, stats, statsErr, entries, logErr)
	data := statusData{layoutData: s.layout(r, "Status", false), statusView: v}
	if s.wallet != nil {
		data.Wallet = s.walletCard(r)
		data.Wallet.CSRF = data.CSRF
		if edit != nil {
			edit(&data.Wallet)
		}
	}
	s.render(w, code, "status", data)
}

func (s *Server) rebootForm(w http.ResponseWriter, r *http.Request) {
	if err := s.reboot(r); err != nil {
		s.errorPage(w, r, http.StatusInternalServerError, "Reboot failed", err.Error())
		return
	}
	s.render(w, http.StatusOK, "wait", s.waitData(r, "Rebooting", "reboot"))
}

func (s *Server) powerOffForm(w http.ResponseWriter, r *http.Request) {
	if err := s.powerOff(r); err != nil {
		s.errorPage(w, r, http.StatusInternalServerError, "Power off failed", err.Error())
		return
	}
	s.render(w, http.StatusOK, "wait", s.waitData(r, "Powering off", "poweroff"))
}

// waitData is the page shown after a reboot or power off was requested. It has no logout
// button: the box is going away.
func (s *Server) waitData(r *http.Request, title, action string) waitData {
	l := s.layout(r, title, true)
	l.LoggedIn, l.CSRF = false, ""
	return waitData{layoutData: l, Action: action, Instance: s.instance}
}
