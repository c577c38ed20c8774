// Package connmgr keeps the box connected to a set of Lightning peers: one goroutine per
// peer dials, runs the connection until it ends, and dials again after an exponential
// back-off with jitter (reset once a connection has lasted). A peer that misbehaved is
// retried only after the longest back-off. It knows nothing of the protocol: the caller
// gives the function that connects and runs a peer, so the manager is tested with fakes.
// Standard library only.
package connmgr

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 10 * time.Minute
	// DefaultStable is how long a connection must last for the back-off to start over.
	DefaultStable = time.Minute
)

// Target is a peer to keep connected.
type Target struct {
	// ID is the peer's node id in hex.
	ID   string
	Addr string
}

// Config wires a Manager.
type Config struct {
	// Run connects to t and runs the connection until it ends, calling up once it is
	// established; it returns why it ended.
	Run func(ctx context.Context, t Target, up func()) error
	// Misbehaved reports whether an error returned by Run means the peer sent invalid data.
	Misbehaved func(error) bool
	// MinBackoff, MaxBackoff and Stable tune the back-off (defaults above).
	MinBackoff, MaxBackoff, Stable time.Duration
	Log                            *slog.Logger
}

// PeerStatus is a peer's state for the page.
type PeerStatus struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	NextTry   time.Time `json:"next_try,omitzero"`
}

type peer struct {
	st     PeerStatus
	cancel context.CancelFunc
	done   chan struct{}
}

// Manager keeps peers connected.
type Manager struct {
	cfg   Config
	mu    sync.Mutex
	peers map[string]*peer
}

// New returns a manager.
func New(cfg Config) *Manager {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Stable <= 0 {
		cfg.Stable = DefaultStable
	}
	if cfg.Misbehaved == nil {
		cfg.Misbehaved = func(error) bool { return false }
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, peers: make(map[string]*peer)}
}

// Add starts keeping t connected until ctx ends or Remove. Adding a known id replaces its
// address.
func (m *Manager) Add(ctx context.Context, t Target) {
	m.Remove(t.ID)
	ctx, cancel := context.WithCancel(ctx)
	p := &peer{st: PeerStatus{ID: t.ID, Addr: t.Addr}, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.peers[t.ID] = p
	m.mu.Unlock()
	go m.loop(ctx, t, p)
}

// Remove disconnects the peer and forgets it, waiting for its goroutine to end.
func (m *Manager) Remove(id string) {
	m.mu.Lock()
	p, ok := m.peers[id]
	delete(m.peers, id)
	m.mu.Unlock()
	if ok {
		p.cancel()
		<-p.done
	}
}

// Close removes every peer.
func (m *Manager) Close() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.peers))
	for id := range m.peers {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.Remove(id)
	}
}

// Status lists the peers by id.
func (m *Manager) Status() []PeerStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PeerStatus, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, p.st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (m *Manager) update(p *peer, fn func(*PeerStatus)) {
	m.mu.Lock()
	fn(&p.st)
	m.mu.Unlock()
}

func (m *Manager) loop(ctx context.Context, t Target, p *peer) {
	defer close(p.done)
	backoff := m.cfg.MinBackoff
	log := m.cfg.Log.With("peer", t.ID, "addr", t.Addr)
	for ctx.Err() == nil {
		start := time.Now()
		m.update(p, func(s *PeerStatus) { s.Attempts++; s.NextTry = time.Time{} })
		err := m.cfg.Run(ctx, t, func() {
			m.update(p, func(s *PeerStatus) { s.Connected, s.Since, s.LastError = true, time.Now(), "" })
		})
		m.update(p, func(s *PeerStatus) {
			s.Connected = false
			if err != nil {
				s.LastError = err.Error()
			}
		})
		if ctx.Err() != nil {
			return
		}
		switch {
		case m.cfg.Misbehaved(err):
			backoff = m.cfg.MaxBackoff
			log.Warn("lightning peer misbehaved", "err", err)
		case time.Since(start) >= m.cfg.Stable:
			backoff = m.cfg.MinBackoff
		}
		// Full jitter over the upper half: peers that failed together do not return together.
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Debug("lightning peer disconnected", "err", err, "retry_in", wait)
		m.update(p, func(s *PeerStatus) { s.NextTry = time.Now().Add(wait) })
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, m.cfg.MaxBackoff)
	}
}

// String describes a target.
func (t Target) String() string { return fmt.Sprintf("%s@%s", t.ID, t.Addr) }
