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

	res := h.do(req("GET", "/reset", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	if !strings.Contains(res.body, "no reset token yet") {
		t.Fatalf("reset page:\n%.600s", res.body)
	}
	// The token is shown once; only its hash is stored.
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
