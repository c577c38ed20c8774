package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// fieldErrors maps a form field to what is wrong with it.
type fieldErrors map[string]string

// fieldOrder is the order of the fields in the forms, for fieldErrors.String.
var fieldOrder = []string{"password", "confirm", "name", "words", "mnemonic", "bip39_passphrase",
	"protection", "passphrase", "pin", "recovery", "recovery_confirm", "psbt",
	"kind", "host", "user", "pass", "cookie_file", "cert", "no_tls", "peers",
	"address", "amount", "label", "send_all", "fee_rate", "target", "lock_time", "relative_lock", "txid", "proposal"}

// String joins the messages, in the order of the forms.
func (e fieldErrors) String() string {
	var msgs []string
	for _, f := range fieldOrder {
		if m, ok := e[f]; ok {
			msgs = append(msgs, f+": "+m)
		}
	}
	return strings.Join(msgs, " ")
}

// validateSetup checks the setup input. It returns the box name in canonical form (trimmed,
// lower case; "" when none was given) and what is wrong, field by field.
func validateSetup(password, confirm, name string) (string, fieldErrors) {
	errs := fieldErrors{}
	if msg := checkPassword(password); msg != "" {
		errs["password"] = msg
	} else if confirm != password {
		errs["confirm"] = "The two passwords do not match."
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name != "" && !validBoxName(name) {
		errs["name"] = "Use 1 to 63 characters: lowercase letters a–z, digits and hyphens, " +
			"not starting or ending with a hyphen."
	}
	return name, errs
}

// loginResult is the outcome of a password check.
type loginResult struct {
	ok   bool
	wait time.Duration // > 0: refused without checking, the client must wait this long
}

func (res loginResult) message() string {
	switch {
	case res.wait > 0:
		return fmt.Sprintf("Too many wrong passwords. Wait %s before trying again.",
			humanDuration(time.Duration(retrySeconds(res.wait))*time.Second))
	case !res.ok:
		return "Wrong password."
	}
	return ""
}

// login checks password for the client of r, within the guessing limits.
func (s *Server) login(r *http.Request, password string) (loginResult, error) {
	res, err := s.checkAdmin(r, password, "login")
	if err == nil && res.ok {
		s.log.Info("logged in", "client", clientAddr(r))
	}
	return res, err
}

// checkAdmin checks the admin password for the client of r, within the guessing limits; what
// names the check in the log ("login", or an operation that asks for the password again).
func (s *Server) checkAdmin(r *http.Request, password, what string) (loginResult, error) {
	key := limitKey(r)
	if wait, ok := s.limiter.attempt(key, s.now()); !ok {
		s.log.Warn(what+" refused: too many wrong passwords", "client", clientAddr(r), "wait", wait.Round(time.Second))
		return loginResult{wait: wait}, nil
	}
	h, found, err := s.admin.Get(keyPassword)
	if err != nil {
		return loginResult{}, fmt.Errorf("read admin password: %w", err)
	}
	if !found {
		return loginResult{}, fmt.Errorf("no admin password is stored")
	}
	ok, err := s.verifyPassword(r.Context(), h, password)
	if err != nil {
		return loginResult{}, err
	}
	if !ok {
		s.log.Warn(what+" failed: wrong password", "client", clientAddr(r), "attempts", s.limiter.count(key))
		return loginResult{}, nil
	}
	s.limiter.succeeded(key)
	return loginResult{ok: true}, nil
}

// retrySeconds rounds a wait up to whole seconds, for Retry-After.
func retrySeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// reboot asks PID 1 to reboot the box.
func (s *Server) reboot(r *http.Request) error {
	s.log.Info("reboot requested", "client", clientAddr(r))
	if err := s.sys.Reboot(r.Context()); err != nil {
		s.log.Error("reboot", "err", err)
		return fmt.Errorf("could not reboot: %w", err)
	}
	return nil
}

// powerOff asks PID 1 to power the box off.
func (s *Server) powerOff(r *http.Request) error {
	s.log.Info("power off requested", "client", clientAddr(r))
	if err := s.sys.PowerOff(r.Context()); err != nil {
		s.log.Error("power off", "err", err)
		return fmt.Errorf("could not power off: %w", err)
	}
	return nil
}
