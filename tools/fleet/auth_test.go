package fleet

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// TestCheckInAuthentication: every way a check-in can be forged, replayed or damaged is
// refused with the right code, and the device's state is not touched.
func TestCheckInAuthentication(t *testing.T) {
	h := newHarness(t)
	tok := h.token(TokenRequest{Uses: 2})
	d := h.enrolled(tok, nil)
	other := h.enrolled(tok, nil)
	stranger, _ := dev.GenerateSoftwareKey()
	strangerID, _ := dev.DeviceID(stranger.Public())
	body, _ := json.Marshal(d.report)
	now := h.clock.Now()
	url, path := h.ts.URL, dev.CheckInPath

	replayed := signed(t, d.key, d.id, "POST", url, path, now, body)
	replayedHeader := replayed.Header.Get("Authorization")
	if status, code := send(t, h.ts.Client(), replayed); status != 200 {
		t.Fatalf("first check-in: %d %s", status, code)
	}
	// A request signed before the last one was forgotten: once 16 newer requests arrived,
	// its timestamp is at or below the floor.
	old := signed(t, d.key, d.id, "POST", url, path, now.Add(-time.Second), body)
	for i := range replayKeep {
		if status, code := send(t, h.ts.Client(), signed(t, d.key, d.id, "POST", url, path, now.Add(time.Duration(i+1)*time.Millisecond), body)); status != 200 {
			t.Fatalf("check-in %d: %d %s", i, status, code)
		}
	}

	withHeader := func(hdr string) *http.Request {
		r := signed(t, d.key, d.id, "POST", url, path, now, body)
		r.Header.Set("Authorization", hdr)
		return r
	}
	tampered := func(mut func(a *dev.Auth)) *http.Request {
		r := signed(t, d.key, d.id, "POST", url, path, now.Add(time.Second), body)
		a, err := dev.ParseAuth(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		mut(&a)
		r.Header.Set("Authorization", a.Header())
		return r
	}
	otherBody, _ := json.Marshal(dev.Report{Version: "9.9.9", Counter: 99, Arch: "amd64", Health: dev.HealthOK})
	// The signature covers body; the request carries otherBody.
	bodySwapped := signed(t, d.key, d.id, "POST", url, path, now.Add(2*time.Second), body)
	bodySwapped.Body = io.NopCloser(bytes.NewReader(otherBody))
	bodySwapped.ContentLength = int64(len(otherBody))

	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"no authorization", withHeader(""), 401, dev.CodeUnauthorized},
		{"other scheme", withHeader("Bearer abc"), 401, dev.CodeUnauthorized},
		{"garbled header", withHeader(dev.AuthScheme + " id=x"), 401, dev.CodeUnauthorized},
		{"bad signature", tampered(func(a *dev.Auth) { a.Sig[len(a.Sig)-1] ^= 1 }), 401, dev.CodeUnauthorized},
		{"signature of another request", tampered(func(a *dev.Auth) {
			b := signed(t, d.key, d.id, "POST", url, "/other", now, body)
			a2, _ := dev.ParseAuth(b.Header.Get("Authorization"))
			a.Sig = a2.Sig
		}), 401, dev.CodeUnauthorized},
		{"timestamp changed after signing", tampered(func(a *dev.Auth) { a.Timestamp++ }), 401, dev.CodeUnauthorized},
		{"nonce changed after signing", tampered(func(a *dev.Auth) { a.Nonce[0] ^= 1 }), 401, dev.CodeUnauthorized},
		{"another device's id", tampered(func(a *dev.Auth) { a.ID = other.id }), 401, dev.CodeUnauthorized},
		{"signed by another device", signed(t, other.key, d.id, "POST", url, path, now.Add(3*time.Second), body), 401, dev.CodeUnauthorized},
		{"body tampered", bodySwapped, 401, dev.CodeUnauthorized},
		{"stale timestamp", signed(t, d.key, d.id, "POST", url, path, now.Add(-6*time.Minute), body), 401, dev.CodeClockSkew},
		{"future timestamp", signed(t, d.key, d.id, "POST", url, path, now.Add(6*time.Minute), body), 401, dev.CodeClockSkew},
		{"replayed nonce", withHeader(replayedHeader), 401, dev.CodeReplay},
		{"below the replay floor", old, 401, dev.CodeReplay},
		{"unknown device", signed(t, stranger, strangerID, "POST", url, path, now, body), 401, dev.CodeUnknownDevice},
		{"invalid report", signed(t, d.key, d.id, "POST", url, path, now.Add(4*time.Second), []byte(`{"arch":"amd64","health":"great"}`)), 400, dev.CodeBadRequest},
		{"too large", signed(t, d.key, d.id, "POST", url, path, now.Add(5*time.Second), make([]byte, dev.MaxBodySize+1)), 413, dev.CodeTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := send(t, h.ts.Client(), tc.req)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
	got, err := h.admin.Devices(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if g.ID == d.id && (g.CheckIns != 1+replayKeep || g.Report.Version != "1.1.0") {
			t.Fatalf("refused requests changed the device: %d check-ins, version %q", g.CheckIns, g.Report.Version)
		}
	}
}

// TestReplayState: the replay bookkeeping on its own.
func TestReplayState(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth := func(ts time.Time) dev.Auth {
		a := dev.Auth{ID: "d-000000000000000000000000", Timestamp: ts.UnixMilli(), Nonce: make([]byte, dev.NonceSize)}
		rand.Read(a.Nonce)
		return a
	}
	var d Device
	a := auth(now)
	if err := checkReplay(&d, a, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := checkReplay(&d, a, now, time.Minute); err == nil {
		t.Fatal("replay accepted")
	}
	// Out of order but unseen: accepted.
	if err := checkReplay(&d, auth(now.Add(-time.Second)), now, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Requests older than the window are forgotten and raise the floor.
	later := now.Add(2 * time.Minute)
	if err := checkReplay(&d, auth(later), later, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(d.Seen) != 1 || d.Floor != now.UnixMilli() {
		t.Fatalf("seen %d, floor %d", len(d.Seen), d.Floor)
	}
	if err := checkReplay(&d, a, later, time.Minute); err == nil {
		t.Fatal("replay of a forgotten request accepted")
	}
	// A burst: never more than replayKeep remembered.
	for i := range 3 * replayKeep {
		if err := checkReplay(&d, auth(later.Add(time.Duration(i+1)*time.Millisecond)), later, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.Seen) != replayKeep {
		t.Fatalf("%d remembered", len(d.Seen))
	}
	var he *httpError
	if err := checkReplay(&d, auth(later), later, time.Minute); !errors.As(err, &he) || he.code != dev.CodeReplay {
		t.Fatalf("below the floor: %v", err)
	}
}

// TestClockSkewCorrection: a device whose clock is an hour off is refused once, learns the
// server's time from the refusal and succeeds.
func TestClockSkewCorrection(t *testing.T) {
	h := newHarness(t)
	k, _ := dev.GenerateSoftwareKey()
	wrong := func() time.Time { return h.clock.Now().Add(-time.Hour) }
	c, err := dev.NewClient(h.ts.URL, k, dev.Options{HTTP: h.ts.Client(), Now: wrong})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(h.ctx(), h.token(TokenRequest{}), dev.Hardware{Arch: "amd64"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckIn(h.ctx(), dev.Report{Version: "1", Counter: 1, Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
}
