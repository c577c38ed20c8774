package fleet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	k, err := GenerateSoftwareKey()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := DeviceID(k.Public())
	if !ValidDeviceID(id) {
		t.Fatalf("device id %q", id)
	}
	now := time.Unix(1_800_000_000, 123e6)
	body := []byte(`{"version":"1"}`)
	a, err := SignRequest(k, rand.Reader, "POST", CheckInPath, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseAuth(a.Header())
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Timestamp != now.UnixMilli() || string(p.Nonce) != string(a.Nonce) || !p.Time().Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("parsed %+v", p)
	}
	pub := k.Public().(*ecdsa.PublicKey)
	if err := p.Verify(pub, "POST", CheckInPath, body); err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateSoftwareKey()
	for name, bad := range map[string]func() error{
		"method": func() error { return p.Verify(pub, "PUT", CheckInPath, body) },
		"path":   func() error { return p.Verify(pub, "POST", EnrollPath, body) },
		"body":   func() error { return p.Verify(pub, "POST", CheckInPath, []byte(`{"version":"2"}`)) },
		"key":    func() error { return p.Verify(other.Public().(*ecdsa.PublicKey), "POST", CheckInPath, body) },
		"time":   func() error { q := p; q.Timestamp++; return q.Verify(pub, "POST", CheckInPath, body) },
		"id": func() error {
			q := p
			q.ID = "d-000000000000000000000000"
			return q.Verify(pub, "POST", CheckInPath, body)
		},
		"nonce": func() error {
			q := p
			q.Nonce = make([]byte, NonceSize)
			return q.Verify(pub, "POST", CheckInPath, body)
		},
		"no body": func() error { return p.Verify(pub, "POST", CheckInPath, nil) },
	} {
		if bad() == nil {
			t.Errorf("verified with another %s", name)
		}
	}
	// Same fields, different order: the digest is over fixed positions.
	if string(Digest("a", "b\nc", "d", 1, nil, nil)) == string(Digest("a\nb", "c", "d", 1, nil, nil)) {
		t.Fatal("fields can shift across separators")
	}
}

func TestParseAuth(t *testing.T) {
	k, _ := GenerateSoftwareKey()
	id, _ := DeviceID(k.Public())
	good, _ := SignRequest(k, rand.Reader, "POST", "/", id, time.Now(), nil)
	h := good.Header()
	if _, err := ParseAuth(h); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"empty":          "",
		"scheme":         strings.Replace(h, AuthScheme, "Bearer", 1),
		"missing sig":    h[:strings.Index(h, ", sig=")],
		"duplicate":      h + ", ts=5",
		"unknown field":  h + ", x=1",
		"bad id":         strings.Replace(h, "id=d-", "id=e-", 1),
		"upper id":       strings.Replace(h, id, strings.ToUpper(id), 1),
		"negative ts":    strings.Replace(h, "ts=", "ts=-", 1),
		"short nonce":    strings.Replace(h, "nonce="+good.NonceString(), "nonce=AAAA", 1),
		"no value":       AuthScheme + " id=, ts=1, nonce=a, sig=b",
		"too long":       h + strings.Repeat(" ", maxAuthLen),
		"not base64 sig": strings.Replace(h, "sig=", "sig=*", 1),
	}
	for name, v := range bad {
		if _, err := ParseAuth(v); err == nil {
			t.Errorf("%s: parsed %q", name, v)
		}
	}
}

func FuzzParseAuth(f *testing.F) {
	k, _ := GenerateSoftwareKey()
	id, _ := DeviceID(k.Public())
	a, _ := SignRequest(k, rand.Reader, "POST", "/", id, time.Now(), nil)
	f.Add(a.Header())
	f.Add(AuthScheme + " id=d-000000000000000000000000, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, sig=AAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuth(h)
		if err != nil {
			return
		}
		b, err := ParseAuth(a.Header())
		if err != nil || b.ID != a.ID || b.Timestamp != a.Timestamp || string(b.Nonce) != string(a.Nonce) || string(b.Sig) != string(a.Sig) {
			t.Fatalf("%q parsed, but its re-encoding %q does not round-trip: %v", h, a.Header(), err)
		}
	})
}

func TestSoftwareKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "device.key")
	k, err := LoadOrCreateSoftwareKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode(), err)
	}
	k2, err := LoadOrCreateSoftwareKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Fatal("reloaded key differs")
	}
	if k2.Attestation() != AttestationSoftware {
		t.Fatal(k2.Attestation())
	}
	d := make([]byte, 32)
	sig, err := k2.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d, sig) {
		t.Fatalf("signature: %v", err)
	}
	if _, err := k2.Sign(rand.Reader, d[:20], crypto.SHA1); err == nil {
		t.Fatal("signed SHA-1")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadSoftwareKey(path); err == nil {
		t.Fatal("loaded a world-readable key")
	}
	os.WriteFile(filepath.Join(dir, "junk.key"), []byte("junk"), 0o600)
	if _, err := LoadOrCreateSoftwareKey(filepath.Join(dir, "junk.key")); err == nil {
		t.Fatal("loaded junk (or replaced it)")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewSoftwareKey(p384); err == nil {
		t.Fatal("accepted a P-384 key")
	}
	if tk := TPMKey(k); tk.Attestation() != AttestationTPM || tk.Public() != k.Public() {
		t.Fatal("TPMKey")
	}
}

func TestNextPoll(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	base, jitter := time.Hour, 10*time.Minute
	var lo, hi bool
	for range 10000 {
		d := NextPoll(base, jitter, r)
		if d < base-jitter || d > base+jitter {
			t.Fatalf("%v outside base±jitter", d)
		}
		lo = lo || d < base-jitter*9/10
		hi = hi || d > base+jitter*9/10
	}
	if !lo || !hi {
		t.Fatal("jitter does not cover its range")
	}
	a, b := mrand.New(mrand.NewPCG(7, 7)), mrand.New(mrand.NewPCG(7, 7))
	if NextPoll(base, jitter, a) != NextPoll(base, jitter, b) {
		t.Fatal("not deterministic for one seed")
	}
	if NextPoll(0, 0, nil) != time.Second || NextPoll(time.Second, time.Hour, nil) < time.Second {
		t.Fatal("floor of one second")
	}
	if d := NextPoll(time.Minute, 0, nil); d != time.Minute {
		t.Fatal(d)
	}
}

// TestClientProtocol runs the client against a fake server: clock-skew retry, error codes,
// relative and absolute offer URLs, and what the client sends.
func TestClientProtocol(t *testing.T) {
	k, _ := GenerateSoftwareKey()
	serverNow := time.Now()
	var calls atomic.Int32
	var offerURL atomic.Value
	offerURL.Store("/releases/stable-2/")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		a, err := ParseAuth(r.Header.Get("Authorization"))
		if err != nil || a.Verify(k.Public().(*ecdsa.PublicKey), r.Method, r.URL.EscapedPath(), body) != nil {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(ErrorResponse{Code: CodeUnauthorized, Message: "bad signature"})
			return
		}
		if d := a.Time().Sub(serverNow); d > time.Minute || d < -time.Minute {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(ErrorResponse{Code: CodeClockSkew, Message: "skew", ServerTime: serverNow.UnixMilli()})
			return
		}
		switch r.URL.Path {
		case "/fleet" + EnrollPath:
			var req EnrollRequest
			json.Unmarshal(body, &req)
			if req.Token != "good" {
				w.WriteHeader(401)
				json.NewEncoder(w).Encode(ErrorResponse{Code: CodeBadToken, Message: "unknown token"})
				return
			}
			json.NewEncoder(w).Encode(Enrollment{DeviceID: DeviceIDFromPKIX(req.PublicKey), Channel: "stable"})
		case "/fleet" + CheckInPath:
			var rep Report
			json.Unmarshal(body, &rep)
			if len(rep.LastError) > MaxErrorLen {
				w.WriteHeader(400)
				return
			}
			json.NewEncoder(w).Encode(CheckInResponse{PollSeconds: 600, Offer: &Offer{Release: "stable-2", Version: "1.2.0",
				Counter: 2, BaseURL: offerURL.Load().(string)}})
		default:
			w.WriteHeader(500)
			io.WriteString(w, "boom")
		}
	}))
	defer srv.Close()
	// The box's clock is a day behind: the first request is refused, the retry succeeds.
	behind := func() time.Time { return time.Now().Add(-24 * time.Hour) }
	c, err := NewClient(srv.URL+"/fleet/", k, Options{HTTP: srv.Client(), Now: behind})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Enroll(ctx, "bad", Hardware{Arch: "amd64"}, ""); !errors.Is(err, ErrBadToken) {
		t.Fatalf("bad token: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls: want a refused one and a retry", calls.Load())
	}
	if _, err := c.Enroll(ctx, "good", Hardware{Arch: "amd64"}, ""); err != nil {
		t.Fatal(err)
	}
	rep := Report{Version: "1.1.0", Counter: 1, Arch: "amd64", LastError: strings.Repeat("é", MaxErrorLen)}
	o, err := c.CheckIn(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if o.BaseURL != srv.URL+"/releases/stable-2/" || o.Poll != 10*time.Minute || !o.Available() {
		t.Fatalf("offer %+v", o)
	}
	offerURL.Store("https://cdn.example/stable-2/")
	if o, _ := c.CheckIn(ctx, rep); o.BaseURL != "https://cdn.example/stable-2/" {
		t.Fatalf("absolute offer URL %q", o.BaseURL)
	}
	offerURL.Store("file:///etc/")
	if _, err := c.CheckIn(ctx, rep); err == nil {
		t.Fatal("accepted a file: offer URL")
	}
	if _, err := c.CheckIn(ctx, Report{Arch: "amd64", Health: "great"}); err == nil {
		t.Fatal("sent an invalid report")
	}
	c2, _ := NewClient(srv.URL+"/elsewhere/", k, Options{HTTP: srv.Client()})
	if _, err := c2.CheckIn(ctx, rep); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("error page: %v", err)
	}
	if _, err := NewClient("ftp://x/", k, Options{}); err == nil {
		t.Fatal("ftp server URL")
	}
	if got := truncate("aé", 2); got != "a" {
		t.Fatalf("truncate split a rune: %q", got)
	}
}
