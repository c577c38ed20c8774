package web

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/reset"
)

func TestFactoryResetPage(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.setup()
	dataDir := filepath.Dir(h.dbPath)

	// Setup made the first token (the API returned it, see TestSetupMakesResetToken).
	res := h.do(req("GET", "/reset", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	if !strings.Contains(res.body, "This box has a reset token") {
		t.Fatalf("reset page:\n%.600s", res.body)
	}
	// A new token is shown once and replaces the first; only its hash is stored.
	res = h.form("/reset/token", nil, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	m := regexp.MustCompile(`id="reset-token-value">([A-Z2-7-]+)<`).FindStringSubmatch(res.body)
	if m == nil {
		t.Fatalf("no token shown:\n%.1000s", res.body)
	}
	token := m[1]
	if b, _ := os.ReadFile(filepath.Join(dataDir, reset.TokenFile)); strings.Contains(string(b), strings.ReplaceAll(token, "-", "")) {
		t.Fatal("the token is stored in the clear")
	}
	if err := reset.CheckToken(dataDir, token); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.do(req("GET", "/reset", "", cookie, "")).body, token) {
		t.Fatal("the token is shown again")
	}

	// Wrong confirmation, wrong password: nothing happens.
	wantStatus(t, h.form("/reset", url.Values{"password": {testPassword}, "confirm": {"erase"}}, cookie, csrf), http.StatusBadRequest)
	wantStatus(t, h.form("/reset", url.Values{"password": {"wrong password"}, "confirm": {reset.Confirmation}}, cookie, csrf), http.StatusUnauthorized)
	if reset.Pending(dataDir) || received(h.reboots) {
		t.Fatal("a refused reset was requested")
	}
	// Without the CSRF token it is refused by the guard.
	if res := h.do(req("POST", "/reset", url.Values{"password": {testPassword}, "confirm": {reset.Confirmation}}.Encode(), cookie, "")); res.StatusCode == http.StatusOK {
		t.Fatal("reset without the CSRF token")
	}
	res = h.form("/reset", url.Values{"password": {testPassword}, "confirm": {"Erase this box"}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if !reset.Pending(dataDir) {
		t.Fatal("the reset was not requested")
	}
	if !received(h.reboots) {
		t.Fatal("no reboot after the reset request")
	}
}

// TestSetupMakesResetToken: setup makes the USB reset token; the API returns it and the form
// flow shows it on the first page after setup, once.
func TestSetupMakesResetToken(t *testing.T) {
	h := newHarness(t)
	res := h.do(req("POST", "/api/setup", jsonBody(map[string]string{"password": testPassword, "name": "hall"}), nil, ""))
	wantStatus(t, res, http.StatusOK)
	token, _ := res.json(t)["reset_token"].(string)
	if token == "" {
		t.Fatalf("setup answered no reset token: %s", res.body)
	}
	if err := reset.CheckToken(filepath.Dir(h.dbPath), token); err != nil {
		t.Fatalf("the token setup returned does not check: %v", err)
	}

	h2 := newHarness(t)
	res = h2.do(req("GET", "/setup", "", nil, ""))
	wantStatus(t, res, http.StatusOK)
	res = h2.do(req("POST", "/setup", url.Values{"password": {testPassword}, "confirm": {testPassword}, "name": {"hall"}}.Encode(), nil, ""))
	wantStatus(t, res, http.StatusSeeOther)
	cookie := res.sessionCookie()
	page := h2.do(req("GET", res.Header.Get("Location"), "", cookie, ""))
	wantStatus(t, page, http.StatusOK)
	m := regexp.MustCompile(`id="setup-reset-token-value">([A-Z2-7-]+)<`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the first page after setup shows no reset token:\n%.1500s", page.body)
	}
	if err := reset.CheckToken(filepath.Dir(h2.dbPath), m[1]); err != nil {
		t.Fatalf("the token shown does not check: %v", err)
	}
	if again := h2.do(req("GET", res.Header.Get("Location"), "", cookie, "")); strings.Contains(again.body, m[1]) {
		t.Fatal("the reset token is shown a second time")
	}
}
