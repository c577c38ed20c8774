package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Session lifetime and bookkeeping.
const (
	sessionCookie   = "anya_session"
	sessionIdle     = 12 * time.Hour     // ends after this long without a request
	sessionLifetime = 7 * 24 * time.Hour // ends this long after login
	sessionTouch    = time.Minute        // how often a session's last use is written back
	maxSessions     = 32                 // oldest sessions are dropped beyond this
	sessionIDLen    = 32
)

// sessionRecord is what bbolt keeps of a session. The id itself is not stored.
type sessionRecord struct {
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
}

// session is the session of the current request.
type session struct {
	key string // bbolt key: hex SHA-256 of the id
	sessionRecord
}

// expired reports whether rec has ended at now.
func (rec sessionRecord) expired(now time.Time) bool {
	return now.Sub(rec.Seen) > sessionIdle || now.Sub(rec.Created) > sessionLifetime
}

// validCSRF compares token with the session's token in constant time.
func (sess *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) == 1
}

type sessionKey struct{}

func withSession(ctx context.Context, sess *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, sess)
}

// sessionFrom returns the session the guard attached to ctx, or nil.
func sessionFrom(ctx context.Context) *session {
	sess, _ := ctx.Value(sessionKey{}).(*session)
	return sess
}

// storageKey returns the bbolt key of the session whose cookie value is id, or false when
// id cannot be a session id.
func storageKey(id string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != sessionIDLen {
		return "", false
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), true
}

// randomToken returns n random bytes.
func randomToken(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newSession creates and stores a session and sets its cookie on w.
func (s *Server) newSession(w http.ResponseWriter, r *http.Request) (*session, error) {
	now := s.now()
	if err := s.pruneSessions(now); err != nil {
		// Stale sessions are refused when used; failing to delete them must not block login.
		s.log.Error("prune sessions", "err", err)
	}
	raw := randomToken(sessionIDLen)
	id := base64.RawURLEncoding.EncodeToString(raw)
	key, _ := storageKey(id)
	sess := &session{key: key, sessionRecord: sessionRecord{
		CSRF:    base64.RawURLEncoding.EncodeToString(randomToken(32)),
		Created: now,
		Seen:    now,
	}}
	if err := s.sessions.Put(key, sess.sessionRecord); err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   int(sessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return sess, nil
}

// currentSession returns the live session named by r's cookie, or nil when there is none.
// An expired session is deleted.
func (s *Server) currentSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	key, ok := storageKey(c.Value)
	if !ok {
		return nil, nil
	}
	rec, ok, err := s.sessions.Get(key)
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	if !ok {
		return nil, nil
	}
	now := s.now()
	if rec.expired(now) {
		if err := s.sessions.Delete(key); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		s.log.Info("session expired", "client", clientAddr(r))
		return nil, nil
	}
	if now.Sub(rec.Seen) >= sessionTouch {
		rec.Seen = now
		if err := s.sessions.Put(key, rec); err != nil {
			return nil, fmt.Errorf("update session: %w", err)
		}
	}
	return &session{key: key, sessionRecord: rec}, nil
}

// endSession deletes sess and clears the cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, sess *session) error {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	s.pending.drop(sess.key) // a wallet half set up in this session is forgotten
	s.addresses.drop(sess.key)
	s.backendStash.drop(sess.key)
	s.proposals.drop(sess.key)
	if err := s.sessions.Delete(sess.key); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	s.log.Info("logged out", "client", clientAddr(r))
	return nil
}

// pruneSessions deletes the expired sessions, and the least recently used ones beyond
// maxSessions-1, making room for one more.
func (s *Server) pruneSessions(now time.Time) error {
	type entry struct {
		key  string
		seen time.Time
	}
	var live []entry
	var drop []string
	err := s.sessions.ForEach(func(key string, rec sessionRecord) error {
		if rec.expired(now) {
			drop = append(drop, key)
		} else {
			live = append(live, entry{key, rec.Seen})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if extra := len(live) - (maxSessions - 1); extra > 0 {
		sort.Slice(live, func(i, j int) bool { return live[i].seen.Before(live[j].seen) })
		for _, e := range live[:extra] {
			drop = append(drop, e.key)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, key := range drop {
			if err := s.sessions.DeleteTx(tx, key); err != nil {
				return err
			}
		}
		return nil
	})
}
