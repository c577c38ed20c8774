package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/recovery/reset"
	"github.com/anya-edge/anya/storage"
)

// Bounds of GET /api/log.
const (
	defaultLogLines = 200
	maxLogLines     = 1000
)

// statusReply is the answer of GET /api/status.
type statusReply struct {
	control.Status
	Storage storage.Stats `json:"storage"`
	BoxName string        `json:"box_name"`
}

// csrfReply answers a login, a setup and GET /api/session.
type csrfReply struct {
	CSRF string `json:"csrf"`
}

type doneReply struct {
	Status string `json:"status"`
}

func (s *Server) apiSetup(w http.ResponseWriter, r *http.Request) {
	if done, err := s.setupDone(); err != nil || done {
		if err != nil {
			s.internalError(w, r, true, "read setup state", err)
			return
		}
		writeError(w, http.StatusConflict, "setup is already done")
		return
	}
	var in struct {
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	name, errs := validateSetup(in.Password, in.Password, in.Name)
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, errs.String())
		return
	}
	if err := s.completeSetup(r.Context(), in.Password, name); err != nil {
		if errors.Is(err, errAlreadySetUp) {
			writeError(w, http.StatusConflict, "setup is already done")
			return
		}
		s.internalError(w, r, true, "setup", err)
		return
	}
	sess, err := s.newSession(w, r)
	if err != nil {
		s.internalError(w, r, true, "create session", err)
		return
	}
	writeJSON(w, http.StatusOK, setupReply{CSRF: sess.CSRF, ResetToken: s.setupResetToken(r), ResetFile: reset.RequestFile})
}

// setupReply answers POST /api/setup: the session's CSRF token and the USB reset token,
// which is shown only this once.
type setupReply struct {
	CSRF       string `json:"csrf"`
	ResetToken string `json:"reset_token,omitempty"`
	ResetFile  string `json:"reset_file,omitempty"`
}

func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	res, err := s.login(r, in.Password)
	if err != nil {
		s.internalError(w, r, true, "check password", err)
		return
	}
	switch {
	case res.wait > 0:
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(res.wait)))
		writeError(w, http.StatusTooManyRequests, res.message())
		return
	case !res.ok:
		writeError(w, http.StatusUnauthorized, res.message())
		return
	}
	sess, err := s.newSession(w, r)
	if err != nil {
		s.internalError(w, r, true, "create session", err)
		return
	}
	writeJSON(w, http.StatusOK, csrfReply{CSRF: sess.CSRF})
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.endSession(w, r, sessionFrom(r.Context())); err != nil {
		s.internalError(w, r, true, "log out", err)
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "logged out"})
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, csrfReply{CSRF: sessionFrom(r.Context()).CSRF})
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.sys.Status(r.Context())
	if err != nil {
		s.internalError(w, r, true, "read status", err)
		return
	}
	stats, err := s.db.Stats()
	if err != nil {
		s.internalError(w, r, true, "read storage stats", err)
		return
	}
	writeJSON(w, http.StatusOK, statusReply{Status: st, Storage: stats, BoxName: s.boxName()})
}

func (s *Server) apiLog(w http.ResponseWriter, r *http.Request) {
	after, max, ok := listQuery(w, r, defaultLogLines, maxLogLines)
	if !ok {
		return
	}
	entries, err := s.sys.Log(r.Context(), after, max)
	if err != nil {
		s.internalError(w, r, true, "read log", err)
		return
	}
	if entries == nil {
		entries = []control.LogEntry{}
	}
	writeJSON(w, http.StatusOK, entries)
}

func (s *Server) apiReboot(w http.ResponseWriter, r *http.Request) {
	if err := s.reboot(r); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "rebooting"})
}

func (s *Server) apiPowerOff(w http.ResponseWriter, r *http.Request) {
	if err := s.powerOff(r); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "powering off"})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal error: encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// listQuery reads the query of a list read in pages: the number after which it starts
// ("after", default 0) and how many it holds at the most ("max", def when not given, 1 to
// limit). It answers 400 and returns false when either is not valid.
func listQuery(w http.ResponseWriter, r *http.Request, def, limit int) (after uint64, max int, ok bool) {
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after must be a non-negative integer, not %q", v))
			return 0, 0, false
		}
		after = n
	}
	max = def
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("max must be an integer from 1 to %d, not %q", limit, v))
			return 0, 0, false
		}
		max = n
	}
	return after, max, true
}

// writeError answers {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// decodeJSON decodes r's body, a single JSON object, into dst. On failure it answers the
// request with a message saying what is wrong and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	status, msg := decodeBody(r, dst)
	if status != 0 {
		writeError(w, status, msg)
		return false
	}
	return true
}

func decodeBody(r *http.Request, dst any) (status int, msg string) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return http.StatusUnsupportedMediaType, "Content-Type must be application/json"
		}
	} else {
		return http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			return http.StatusBadRequest, "invalid JSON: the body must hold a single JSON object"
		}
		return 0, ""
	}
	var (
		syntax     *json.SyntaxError
		typeErr    *json.UnmarshalTypeError
		tooLarge   *http.MaxBytesError
		unknownMsg = "json: unknown field "
	)
	switch {
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "invalid JSON: the body is empty, expected a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "invalid JSON: the body ends in the middle of a value"
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &syntax):
		return http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return http.StatusBadRequest, fmt.Sprintf("invalid JSON: expected an object, got %s", typeErr.Value)
		}
		return http.StatusBadRequest, fmt.Sprintf("invalid JSON: field %q must be a %s, got %s",
			typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), unknownMsg):
		return http.StatusBadRequest, "invalid JSON: unknown field " + strings.TrimPrefix(err.Error(), unknownMsg)
	}
	return http.StatusBadRequest, "invalid JSON: " + err.Error()
}
