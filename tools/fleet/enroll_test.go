package fleet

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

func TestEnrollment(t *testing.T) {
	h := newHarness(t)
	once := h.token(TokenRequest{Label: "one"})
	three := h.token(TokenRequest{Label: "three", Uses: 3, Channel: "beta"})
	short := h.token(TokenRequest{Label: "short", TTL: Duration(time.Minute)})
	spent := h.token(TokenRequest{Label: "spent"})
	h.enrolled(spent, nil)
	dupKey, _ := dev.GenerateSoftwareKey()
	h.enrolled(h.token(TokenRequest{Label: "dup"}), dupKey)

	tests := []struct {
		name    string
		token   string
		key     dev.Key
		advance time.Duration // clock moves before the attempt
		want    error
		channel string
	}{
		{"valid one-time token", once, nil, 0, nil, "stable"},
		{"one-time token again", once, nil, 0, dev.ErrTokenUsed, ""},
		{"unknown token", "anya-enroll-not-a-token", nil, 0, dev.ErrBadToken, ""},
		{"empty token", "", nil, 0, dev.ErrBadToken, ""},
		{"used token", spent, nil, 0, dev.ErrTokenUsed, ""},
		{"duplicate key", three, dupKey, 0, dev.ErrDuplicateKey, ""},
		{"three uses: 1", three, nil, 0, nil, "beta"},
		{"three uses: 2", three, nil, 0, nil, "beta"},
		{"three uses: 3", three, nil, 0, nil, "beta"},
		{"three uses: 4", three, nil, 0, dev.ErrTokenUsed, ""},
		{"expired token", short, nil, 2 * time.Minute, dev.ErrTokenExpired, ""},
		// A known token and an enrolled key: duplicate_key wins over the token's state, so a
		// box whose first answer was lost learns that it is enrolled.
		{"duplicate key, spent token", spent, dupKey, 0, dev.ErrDuplicateKey, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.clock.Add(tc.advance)
			d := h.newDevice(tc.key)
			e, err := d.client.Enroll(h.ctx(), tc.token, dev.Hardware{Arch: "amd64"}, "")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if e.DeviceID != d.id || e.Channel != tc.channel {
					t.Fatalf("enrollment %+v, want id %s channel %s", e, d.id, tc.channel)
				}
				// The enrolled device can check in.
				d.checkIn(t)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	tokens, err := h.admin.Tokens(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, tk := range tokens {
		used[tk.Label] = tk.Used
		if tk.Hash == "" || len(tk.ID) != 12 {
			t.Fatalf("token record %+v", tk)
		}
	}
	if used["one"] != 1 || used["three"] != 3 || used["short"] != 0 || used["spent"] != 1 {
		t.Fatalf("token uses %v", used)
	}
}

// TestEnrollRequestChecks: enrollment requests that are malformed or not signed by the key
// they enroll are refused without consuming the token.
func TestEnrollRequestChecks(t *testing.T) {
	h := newHarness(t)
	tok := h.token(TokenRequest{Uses: 10})
	key, _ := dev.GenerateSoftwareKey()
	other, _ := dev.GenerateSoftwareKey()
	pkix, _ := dev.MarshalPublicKey(key.Public())
	id := dev.DeviceIDFromPKIX(pkix)
	otherID, _ := dev.DeviceID(other.Public())
	body := func(mut func(*dev.EnrollRequest)) []byte {
		r := dev.EnrollRequest{Token: tok, PublicKey: pkix, Attestation: dev.AttestationSoftware, Hardware: dev.Hardware{Arch: "amd64"}}
		if mut != nil {
			mut(&r)
		}
		b, _ := json.Marshal(r)
		return b
	}
	now := h.clock.Now()
	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"signed by another key", signed(t, other, id, "POST", h.ts.URL, dev.EnrollPath, now, body(nil)), 401, dev.CodeUnauthorized},
		{"signed for another id", signed(t, other, otherID, "POST", h.ts.URL, dev.EnrollPath, now, body(nil)), 401, dev.CodeUnauthorized},
		{"not a P-256 key", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(func(r *dev.EnrollRequest) { r.PublicKey = []byte("junk") })), 400, dev.CodeBadRequest},
		{"unknown attestation", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(func(r *dev.EnrollRequest) { r.Attestation = "magic" })), 400, dev.CodeBadRequest},
		{"bad channel", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(func(r *dev.EnrollRequest) { r.Channel = "Beta!" })), 400, dev.CodeBadRequest},
		{"huge model", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(func(r *dev.EnrollRequest) { r.Hardware.Model = string(make([]byte, 500)) })), 400, dev.CodeBadRequest},
		{"stale", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now.Add(-time.Hour), body(nil)), 401, dev.CodeClockSkew},
		{"not JSON", signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, []byte("{")), 400, dev.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := send(t, h.ts.Client(), tc.req)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
	tokens, _ := h.admin.Tokens(h.ctx())
	if tokens[0].Used != 0 {
		t.Fatalf("refused enrollments used the token: %+v", tokens[0])
	}
	// The well-formed request enrolls; replaying it gives duplicate_key, not a second device.
	req := signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(nil))
	if status, code := send(t, h.ts.Client(), req); status != http.StatusCreated {
		t.Fatalf("enroll: %d %s", status, code)
	}
	if status, code := send(t, h.ts.Client(), signed(t, key, id, "POST", h.ts.URL, dev.EnrollPath, now, body(nil))); status != http.StatusConflict || code != dev.CodeDuplicateKey {
		t.Fatalf("second enrollment: %d %s", status, code)
	}
}

// TestRemovedDevice: a removed device is unknown; it can enroll again with a new token.
func TestRemovedDevice(t *testing.T) {
	h := newHarness(t)
	d := h.enrolled(h.token(TokenRequest{}), nil)
	d.checkIn(t)
	if err := h.admin.RemoveDevice(h.ctx(), d.id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.CheckIn(h.ctx(), d.report); !errors.Is(err, dev.ErrUnknownDevice) {
		t.Fatalf("check-in after removal: %v", err)
	}
	if _, err := d.client.Enroll(h.ctx(), h.token(TokenRequest{}), dev.Hardware{Arch: "amd64"}, ""); err != nil {
		t.Fatal(err)
	}
	d.checkIn(t)
}
