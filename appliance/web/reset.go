package web

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/anya-edge/anya/appliance/recovery/reset"
)

// Factory reset (package appliance/recovery/reset): the page asks for the admin password and
// the typed confirmation, records the request on the data partition and reboots; PID 1 erases
// the data partition before anything opens it. The USB reset token is shown once when it is
// made (only its SHA-256 is stored, beside the database) and lets a request file on a USB
// stick do the same when the password is lost.

type resetData struct {
	layoutData
	HasToken     bool
	Token        string // shown once, right after it was made
	Confirmation string
	Err          string
}

// dataDir is the data partition's directory: the database's.
func (s *Server) dataDir() string { return filepath.Dir(s.db.Path()) }

func (s *Server) hasResetToken() bool {
	_, err := os.Stat(filepath.Join(s.dataDir(), reset.TokenFile))
	return !errors.Is(err, fs.ErrNotExist)
}

func (s *Server) resetView(r *http.Request) resetData {
	return resetData{layoutData: s.layout(r, "Factory reset", false), HasToken: s.hasResetToken(), Confirmation: reset.Confirmation}
}

// setupResetToken makes the box's first USB reset token when setup completes. A failure is
// logged and not fatal: the owner can make one on /reset later.
func (s *Server) setupResetToken(r *http.Request) string {
	tok, err := reset.NewToken(s.dataDir())
	if err != nil {
		s.log.Warn("setup: no USB reset token was made", "err", err)
		return ""
	}
	s.log.Info("setup: a USB reset token was made", "client", clientAddr(r))
	return tok
}

func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "reset", s.resetView(r))
}

func (s *Server) resetTokenForm(w http.ResponseWriter, r *http.Request) {
	tok, err := reset.NewToken(s.dataDir())
	if err != nil {
		s.internalError(w, r, false, "reset token", err)
		return
	}
	s.log.Info("a new USB reset token was made", "client", clientAddr(r))
	v := s.resetView(r)
	v.Token = tok
	s.render(w, http.StatusOK, "reset", v)
}

// requestReset checks the password and the confirmation, records the request and reboots.
// It returns the HTTP status and a message for the owner when it refuses.
func (s *Server) requestReset(r *http.Request, password, confirm string) (int, string) {
	if !strings.EqualFold(strings.TrimSpace(confirm), reset.Confirmation) {
		return http.StatusBadRequest, `Type "` + reset.Confirmation + `" to confirm.`
	}
	res, err := s.checkAdmin(r, password, "factory reset")
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	if msg := res.message(); msg != "" {
		if res.wait > 0 {
			return http.StatusTooManyRequests, msg
		}
		return http.StatusUnauthorized, msg
	}
	if err := reset.Request(s.dataDir(), "the page, "+clientAddr(r)); err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	s.log.Warn("FACTORY RESET requested on the page: the box restarts and erases its data partition", "client", clientAddr(r))
	if err := s.reboot(r); err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	return http.StatusOK, ""
}

func (s *Server) resetForm(w http.ResponseWriter, r *http.Request) {
	code, msg := s.requestReset(r, r.PostFormValue("password"), r.PostFormValue("confirm"))
	if code != http.StatusOK {
		v := s.resetView(r)
		v.Err = msg
		s.render(w, code, "reset", v)
		return
	}
	s.render(w, http.StatusOK, "wait", s.waitData(r, "Factory reset", "reboot"))
}

func (s *Server) apiReset(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
		Confirm  string `json:"confirm"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if code, msg := s.requestReset(r, in.Password, in.Confirm); code != http.StatusOK {
		writeError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "resetting"})
}

func (s *Server) apiResetToken(w http.ResponseWriter, r *http.Request) {
	tok, err := reset.NewToken(s.dataDir())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "file": reset.RequestFile})
}
