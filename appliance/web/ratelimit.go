package web

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits on password guessing, per client.
const (
	freeAttempts   = 5                // attempts without delay
	firstDelay     = 2 * time.Second  // delay after the last free attempt; doubles with each further one
	maxDelay       = 15 * time.Minute // cap of the delay
	forgetAfter    = 24 * time.Hour   // a client idle this long starts afresh
	maxLimitedKeys = 1024             // clients tracked at once
)

// limiter counts password attempts per client. It is safe for concurrent use.
//
// An attempt is counted when it starts, before the password is checked, so parallel
// attempts cannot slip past the count; a correct password then clears it.
type limiter struct {
	mu      sync.Mutex
	clients map[string]*attempts
}

type attempts struct {
	count int       // attempts since the last success
	last  time.Time // last attempt
	until time.Time // no attempt before this time
}

func newLimiter() *limiter {
	return &limiter{clients: make(map[string]*attempts)}
}

// attempt records an attempt by key at now. It returns false and how long to wait when the
// client must wait before trying again.
func (l *limiter) attempt(key string, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.clients[key]
	if a != nil && now.Before(a.until) {
		return a.until.Sub(now), false
	}
	if a == nil || now.Sub(a.last) > forgetAfter {
		if a == nil {
			l.makeRoom(now)
		}
		a = &attempts{}
		l.clients[key] = a
	}
	a.count++
	a.last = now
	if a.count >= freeAttempts {
		d := maxDelay
		if shift := a.count - freeAttempts; shift < 20 {
			d = min(firstDelay<<shift, maxDelay)
		}
		a.until = now.Add(d)
	}
	return 0, true
}

// succeeded clears the attempts of key.
func (l *limiter) succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.clients, key)
}

// count returns the attempts recorded for key since its last success.
func (l *limiter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.clients[key]; a != nil {
		return a.count
	}
	return 0
}

// makeRoom keeps the table below maxLimitedKeys: it drops the clients that would start
// afresh anyway, and if that is not enough, the one idle longest. l.mu must be held.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.clients) < maxLimitedKeys {
		return
	}
	for k, a := range l.clients {
		if now.Sub(a.last) > forgetAfter && !now.Before(a.until) {
			delete(l.clients, k)
		}
	}
	for len(l.clients) >= maxLimitedKeys {
		var oldest string
		var t time.Time
		for k, a := range l.clients {
			if oldest == "" || a.last.Before(t) {
				oldest, t = k, a.last
			}
		}
		delete(l.clients, oldest)
	}
}

// clientAddr is the address of the peer of the connection. X-Forwarded-For is ignored on
// purpose: nothing sits in front of anyad, so any client could forge it.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limitKey is the key under which r's attempts are counted: the client's IPv4 address, or
// its IPv6 /64, since one IPv6 host usually owns a whole /64.
func limitKey(r *http.Request) string {
	addr, err := netip.ParseAddr(clientAddr(r))
	if err != nil {
		return clientAddr(r)
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64)
	return p.String()
}
