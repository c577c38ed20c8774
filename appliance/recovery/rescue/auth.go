package rescue

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// codeAlphabet has no characters that are easily confused when read off a screen (0/O, 1/I/L).
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewCode returns a one-time recovery code: 10 characters of a 31-letter alphabet (about 49
// bits), shown as XXXXX-XXXXX.
func NewCode() string {
	b := make([]byte, 10)
	out := make([]byte, 0, 11)
	for i := range b {
		// Rejection sampling keeps the characters uniform.
		for {
			var c [1]byte
			rand.Read(c[:])
			if int(c[0]) < 256-256%len(codeAlphabet) {
				b[i] = codeAlphabet[int(c[0])%len(codeAlphabet)]
				break
			}
		}
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, b[i])
	}
	return string(out)
}

func normalizeCode(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
}

// Guard limits for the code.
const (
	freeAttempts   = 5
	firstLockout   = time.Minute
	maxLockout     = 30 * time.Minute
	sessionTTL     = 2 * time.Hour
	presenceWindow = 2 * time.Minute
)

// auth is the recovery page's access control (see the package documentation): the one-time
// code from the console, or physical presence (the stick pulled out and put back while a
// browser waits), each giving a session; counted wrong codes lock everybody out for a
// while, since the code is the same for everybody.
type auth struct {
	code string
	now  func() time.Time

	mu       sync.Mutex
	sessions map[[32]byte]time.Time // SHA-256 of the cookie → expiry
	wrong    int
	until    time.Time // locked out until
	// pending is the one browser waiting for physical presence (hash of its cookie).
	pending        [32]byte
	pendingSince   time.Time
	presenceLocked time.Time
}

func newAuth(code string, now func() time.Time) *auth {
	return &auth{code: normalizeCode(code), now: now, sessions: map[[32]byte]time.Time{}}
}

func newToken() (string, [32]byte) {
	var b [32]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	return tok, sha256.Sum256([]byte(tok))
}

// login checks a typed code; it returns a session token, or the time to wait.
func (a *auth) login(code string) (token string, wait time.Duration, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Before(a.until) {
		return "", a.until.Sub(now), false
	}
	got, want := sha256.Sum256([]byte(normalizeCode(code))), sha256.Sum256([]byte(a.code))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		a.wrong++
		if a.wrong >= freeAttempts {
			d := firstLockout << (a.wrong - freeAttempts)
			if d > maxLockout || d <= 0 {
				d = maxLockout
			}
			a.until = now.Add(d)
		}
		return "", 0, false
	}
	a.wrong = 0
	tok, h := newToken()
	a.sessions[h] = now.Add(sessionTTL)
	return tok, 0, true
}

// valid reports whether token is a live session.
func (a *auth) valid(token string) bool {
	if token == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h := sha256.Sum256([]byte(token))
	exp, ok := a.sessions[h]
	if !ok {
		return false
	}
	if a.now().After(exp) {
		delete(a.sessions, h)
		return false
	}
	return true
}

// requestPresence registers the browser with token as the one waiting for the stick to be
// pulled and put back. A second browser asking while one waits cancels both and locks
// presence for a while: someone else on the network is trying too.
func (a *auth) requestPresence(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Before(a.presenceLocked) {
		return false
	}
	h := sha256.Sum256([]byte(token))
	if a.pending != ([32]byte{}) && a.pending != h && now.Sub(a.pendingSince) < presenceWindow {
		a.pending = [32]byte{}
		a.presenceLocked = now.Add(5 * time.Minute)
		return false
	}
	a.pending, a.pendingSince = h, now
	return true
}

// present is called when the stick was put back in: the waiting browser gets a session.
func (a *auth) present() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.pending == ([32]byte{}) || now.Sub(a.pendingSince) >= presenceWindow || now.Before(a.presenceLocked) {
		return false
	}
	a.sessions[a.pending] = now.Add(sessionTTL)
	a.pending = [32]byte{}
	return true
}
