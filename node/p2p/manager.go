package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/storage"
)

// Config configures a Manager. Params is required.
type Config struct {
	Params *chaincfg.Params
	// Peers are host:port addresses of the peers to keep connected. When empty, peers are
	// found through Params.DNSSeeds (see Resolver and TargetPeers).
	Peers []string
	// Resolver looks up the DNS seeds (nil: net.DefaultResolver). Tests point it at a DNS
	// server of their own.
	Resolver *net.Resolver
	// TargetPeers is how many peers found through the DNS seeds are kept connected
	// (default 4).
	TargetPeers int
	// DB persists headers and filters (subsystem "p2p"); nil keeps them in memory.
	DB     *storage.DB
	Logger *slog.Logger

	// Scripts returns the wallet's output scripts to match against each block's basic
	// filter; matching blocks are fetched and passed to OnBlock.
	Scripts func() [][]byte
	// OnChange is called with every change of the best header chain (in order).
	OnChange func(Change)
	// OnBlock is called with each block whose filter matched, after its merkle root was
	// checked against its header.
	OnBlock func(Stamp, *wire.MsgBlock)

	// BanThreshold is the misbehaviour score at which a peer is disconnected and banned
	// for BanDuration (defaults 100 and 24 h).
	BanThreshold int
	BanDuration  time.Duration
	// BackoffMin and BackoffMax bound the reconnection delay (defaults 500 ms and 5 min).
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds the handshake and each request (default 30 s).
	Timeout time.Duration

	// allowSelfConns lets tests serve a fake peer from this process (btcd's peer package
	// otherwise takes the shared version nonces for a connection to itself).
	allowSelfConns bool
}

// Stats count the messages received from peers, for tests and the dashboard.
type Stats struct {
	HeadersMsgs, Headers     int64 // headers messages and headers in them
	CFHeadersMsgs, CFilters  int64
	Blocks, GetHeadersSent   int64
	Handshakes, Disconnected int64
	// Transaction relay: transactions announced (inv), requested after an inv, refused by
	// the per-peer limits, delivered to watchers, received without a request, and
	// deliveries lost to full watcher channels.
	TxAnnounced, TxRequested, TxRefused, Txs, TxUnrequested, TxDropped int64
	// SeedLookups counts DNS seed queries that returned addresses.
	SeedLookups int64
}

type stats struct {
	headersMsgs, headers, cfheadersMsgs, cfilters, blocks, getheaders, handshakes, disconnected atomic.Int64
	txAnnounced, txInvs, txInvsDropped, txs, txsUnrequested, txsDropped, seedLookups            atomic.Int64
}

// Manager keeps connections to the configured peers, syncs and validates headers and
// compact filters from them, and scores and bans misbehaving peers.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	chain *HeaderChain
	store *store
	st    stats

	mu      sync.Mutex
	scores  map[string]int
	banned  map[string]time.Time
	peers   map[string]*peer.Peer
	running map[string]bool
	runCtx  context.Context
	wg      sync.WaitGroup

	filterMu sync.Mutex // one filter sync at a time
	fmu      sync.RWMutex
	fh       map[chainhash.Hash]chainhash.Hash // block → basic filter header
	haveF    map[chainhash.Hash]bool           // blocks whose filter is stored

	hub hub      // taps on peer messages and change notifications (backend.go)
	txr *txRelay // transaction relay for WatchMempool (mempool.go)
}

// New loads the stored chain (if cfg.DB is set) and returns a Manager; Run connects.
func New(cfg Config) (*Manager, error) {
	if cfg.Params == nil {
		return nil, errors.New("p2p: no chain params")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BanThreshold <= 0 {
		cfg.BanThreshold = 100
	}
	if cfg.BanDuration <= 0 {
		cfg.BanDuration = 24 * time.Hour
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TargetPeers <= 0 {
		cfg.TargetPeers = 4
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "p2p"),
		scores: map[string]int{}, banned: map[string]time.Time{}, peers: map[string]*peer.Peer{},
		running: map[string]bool{}, fh: map[chainhash.Hash]chainhash.Hash{}, haveF: map[chainhash.Hash]bool{}}
	m.txr = newTxRelay(m)
	if cfg.DB != nil {
		st, err := openStore(cfg.DB)
		if err != nil {
			return nil, err
		}
		m.store = st
		if err := m.loadFilters(); err != nil {
			return nil, err
		}
	}
	hc, err := NewHeaderChain(cfg.Params, m.store)
	if err != nil {
		return nil, err
	}
	m.chain = hc
	return m, nil
}

func (m *Manager) loadFilters() error {
	err := m.store.fheaders.ForEach(func(k, v string) error {
		b, err1 := chainhash.NewHashFromStr(k)
		h, err2 := chainhash.NewHashFromStr(v)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		m.fh[*b] = *h
		return nil
	})
	if err != nil {
		return fmt.Errorf("p2p: load filter headers: %w", err)
	}
	err = m.store.filters.ForEach(func(k, _ string) error {
		b, err := chainhash.NewHashFromStr(k)
		if err == nil {
			m.haveF[*b] = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("p2p: load filters: %w", err)
	}
	return nil
}

// Chain is the validated header chain.
func (m *Manager) Chain() *HeaderChain { return m.chain }

// Stats returns the message counters.
func (m *Manager) Stats() Stats {
	return Stats{HeadersMsgs: m.st.headersMsgs.Load(), Headers: m.st.headers.Load(),
		CFHeadersMsgs: m.st.cfheadersMsgs.Load(), CFilters: m.st.cfilters.Load(),
		Blocks: m.st.blocks.Load(), GetHeadersSent: m.st.getheaders.Load(),
		Handshakes: m.st.handshakes.Load(), Disconnected: m.st.disconnected.Load(),
		TxAnnounced: m.st.txAnnounced.Load(), TxRequested: m.st.txInvs.Load(), TxRefused: m.st.txInvsDropped.Load(), Txs: m.st.txs.Load(),
		TxUnrequested: m.st.txsUnrequested.Load(), TxDropped: m.st.txsDropped.Load(),
		SeedLookups: m.st.seedLookups.Load()}
}

// Score is the misbehaviour score of the peer at addr.
func (m *Manager) Score(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scores[addr]
}

// Banned reports whether addr is banned now.
func (m *Manager) Banned(addr string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.banned[addr])
}

// Connected lists the addresses of the peers with a completed handshake.
func (m *Manager) Connected() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for a, p := range m.peers {
		if p.Connected() {
			out = append(out, a)
		}
	}
	return out
}

// Run connects to the configured peers, or to peers found through the DNS seeds when none
// are configured, and keeps them connected until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.runCtx = ctx
	m.mu.Unlock()
	for _, a := range m.cfg.Peers {
		m.AddPeer(a)
	}
	switch {
	case len(m.cfg.Peers) > 0:
	case len(m.cfg.Params.DNSSeeds) == 0:
		m.log.Warn("no peers configured and the network has no DNS seeds", "network", m.cfg.Params.Name)
	default:
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.discover(ctx)
		}()
	}
	<-ctx.Done()
	m.wg.Wait()
	return nil
}

// AddPeer starts keeping a connection to addr (Run must have started).
func (m *Manager) AddPeer(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[addr] || m.runCtx == nil {
		return
	}
	m.running[addr] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.keep(m.runCtx, addr)
	}()
}

// misbehave adds points to addr's score and disconnects and bans it at the threshold.
func (m *Manager) misbehave(addr string, p *peer.Peer, points int, reason string) {
	m.mu.Lock()
	m.scores[addr] += points
	score := m.scores[addr]
	ban := score >= m.cfg.BanThreshold
	if ban {
		m.banned[addr] = time.Now().Add(m.cfg.BanDuration)
	}
	m.mu.Unlock()
	m.log.Warn("peer misbehaved", "peer", addr, "points", points, "score", score, "reason", reason, "banned", ban)
	if ban && p != nil {
		p.Disconnect()
	}
}

// keep connects to addr and reconnects with exponential back-off and jitter until ctx ends.
func (m *Manager) keep(ctx context.Context, addr string) {
	delay := m.cfg.BackoffMin
	for ctx.Err() == nil {
		m.mu.Lock()
		until := m.banned[addr]
		m.mu.Unlock()
		if wait := time.Until(until); wait > 0 {
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		ok, err := m.session(ctx, addr)
		m.st.disconnected.Add(1)
		if ctx.Err() != nil {
			return
		}
		if ok {
			delay = m.cfg.BackoffMin
		}
		m.log.Info("peer disconnected", "peer", addr, "err", err, "retry", delay)
		jitter := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		if !sleep(ctx, delay+jitter) {
			return
		}
		delay = min(delay*2, m.cfg.BackoffMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchedConn records whether reading the socket failed, which tells a connection that
// broke (no fault of the peer) from bytes that arrived but do not decode (misbehaviour).
type watchedConn struct {
	net.Conn
	readErr atomic.Bool
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.readErr.Store(true)
	}
	return n, err
}

// conn is one live connection: the btcd peer and the messages its listeners forwarded.
type conn struct {
	addr   string
	p      *peer.Peer
	inbox  chan wire.Message
	done   chan struct{}
	verack chan struct{}
	inv    atomic.Bool // a block was announced while we were busy
}

func (c *conn) deliver(msg wire.Message) {
	select {
	case c.inbox <- msg:
	case <-c.done:
	}
}

// session runs one connection to addr: handshake, header sync, filter sync, then follows
// announcements until the peer goes away. ok reports a completed handshake.
func (m *Manager) session(ctx context.Context, addr string) (ok bool, err error) {
	c := &conn{addr: addr, inbox: make(chan wire.Message, 64), done: make(chan struct{}), verack: make(chan struct{})}
	var verackOnce sync.Once
	var wc *watchedConn
	pcfg := &peer.Config{
		NewestBlock: func() (*chainhash.Hash, int32, error) {
			t := m.chain.Tip()
			return &t.Hash, t.Height, nil
		},
		UserAgentName:    "anya",
		UserAgentVersion: "0.1",
		ChainParams:      m.cfg.Params,
		// Announcements of transactions are governed by BIP133 fee filters instead (see
		// txRelay): on while someone watches the mempool, off otherwise.
		DisableRelayTx: false,
		// Witness: peers then decode the witness transactions Backend.Broadcast sends.
		Services:       wire.SFNodeWitness,
		AllowSelfConns: m.cfg.allowSelfConns,
		Listeners: peer.MessageListeners{
			OnVerAck:    func(*peer.Peer, *wire.MsgVerAck) { verackOnce.Do(func() { close(c.verack) }) },
			OnHeaders:   func(_ *peer.Peer, msg *wire.MsgHeaders) { c.deliver(msg) },
			OnCFHeaders: func(_ *peer.Peer, msg *wire.MsgCFHeaders) { c.deliver(msg) },
			OnCFilter:   func(_ *peer.Peer, msg *wire.MsgCFilter) { c.deliver(msg) },
			OnBlock:     func(_ *peer.Peer, msg *wire.MsgBlock, _ []byte) { m.hub.tap(addr, msg); c.deliver(msg) },
			OnNotFound: func(_ *peer.Peer, msg *wire.MsgNotFound) {
				m.txr.notFound(addr, msg)
				m.hub.tap(addr, msg)
				c.deliver(msg)
			},
			OnTx:     func(p *peer.Peer, msg *wire.MsgTx) { m.txr.onTx(addr, p, msg) },
			OnReject: func(_ *peer.Peer, msg *wire.MsgReject) { m.hub.tap(addr, msg) },
			OnPong:   func(_ *peer.Peer, msg *wire.MsgPong) { m.hub.tap(addr, msg) },
			OnInv: func(p *peer.Peer, msg *wire.MsgInv) {
				block := false
				for _, iv := range msg.InvList {
					if iv.Type == wire.InvTypeBlock || iv.Type == wire.InvTypeWitnessBlock {
						block = true
						break
					}
				}
				if block {
					c.inv.Store(true)
					c.deliver(msg)
				}
				m.txr.onInv(addr, p, msg)
			},
			OnRead: func(p *peer.Peer, _ int, _ wire.Message, err error) {
				// Bytes that arrived but do not make a message (bad magic, checksum or
				// length, a payload that does not decode) are the peer's fault; a broken
				// connection is not, nor are unknown commands (newer protocol features).
				if err == nil || errors.Is(err, wire.ErrUnknownMessage) || wc == nil || wc.readErr.Load() {
					return
				}
				m.misbehave(addr, p, m.cfg.BanThreshold, "malformed message: "+err.Error())
			},
		},
	}
	p, err := peer.NewOutboundPeer(pcfg, addr)
	if err != nil {
		return false, fmt.Errorf("p2p: peer %s: %w", addr, err)
	}
	c.p = p
	d := net.Dialer{Timeout: m.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Errorf("p2p: dial %s: %w", addr, err)
	}
	wc = &watchedConn{Conn: nc}
	p.AssociateConnection(wc)
	go func() { p.WaitForDisconnect(); close(c.done) }()
	defer func() {
		p.Disconnect()
		<-c.done
		m.mu.Lock()
		delete(m.peers, addr)
		m.mu.Unlock()
		m.txr.peerGone(addr)
	}()
	select {
	case <-c.verack:
	case <-c.done:
		return false, fmt.Errorf("p2p: %s: disconnected during handshake", addr)
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(m.cfg.Timeout):
		return false, fmt.Errorf("p2p: %s: handshake timed out", addr)
	}
	m.st.handshakes.Add(1)
	m.mu.Lock()
	m.peers[addr] = p
	m.txr.sendFeeFilter(p, nil) // under m.mu: see txRelay.reconcile
	m.mu.Unlock()
	m.log.Info("peer connected", "peer", addr, "agent", p.UserAgent(), "height", p.StartingHeight(),
		"services", p.Services())
	for {
		c.inv.Store(false)
		if err := m.syncHeaders(ctx, c); err != nil {
			return true, err
		}
		if p.Services()&wire.SFNodeCF != 0 {
			if err := m.syncFilters(ctx, c); err != nil {
				return true, err
			}
		}
		if c.inv.Load() {
			continue
		}
		// Wait for an announcement.
		if _, err := m.await(ctx, c, 0, func(msg wire.Message) bool { _, ok := msg.(*wire.MsgInv); return ok }); err != nil {
			return true, err
		}
	}
}

var errDisconnected = errors.New("peer disconnected")

// await returns the next message for which want is true, dropping the others; timeout 0
// waits until the peer goes away.
func (m *Manager) await(ctx context.Context, c *conn, timeout time.Duration, want func(wire.Message) bool) (wire.Message, error) {
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	for {
		select {
		case msg := <-c.inbox:
			if want(msg) {
				return msg, nil
			}
		case <-c.done:
			return nil, fmt.Errorf("p2p: %s: %w", c.addr, errDisconnected)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tc:
			return nil, fmt.Errorf("p2p: %s: request timed out", c.addr)
		}
	}
}

// syncHeaders asks for headers after our best chain (block locator) until the peer has
// no more, validating and storing each batch.
func (m *Manager) syncHeaders(ctx context.Context, c *conn) error {
	for {
		// Not peer.PushGetHeadersMsg: it silently drops a request with the same locator as
		// the previous one, which is exactly what a block announcement at an unchanged tip
		// (or after headers that did not connect) needs to send, and the reply would never
		// come.
		gh := wire.NewMsgGetHeaders()
		for _, h := range m.chain.Locator() {
			if err := gh.AddBlockLocatorHash(h); err != nil {
				return fmt.Errorf("p2p: %s: getheaders: %w", c.addr, err)
			}
		}
		c.p.QueueMessage(gh, nil)
		m.st.getheaders.Add(1)
		msg, err := m.await(ctx, c, m.cfg.Timeout, func(msg wire.Message) bool { _, ok := msg.(*wire.MsgHeaders); return ok })
		if err != nil {
			return err
		}
		hm := msg.(*wire.MsgHeaders)
		n, err := m.HandleHeaders(c.addr, c.p, hm)
		if err != nil {
			return err
		}
		if n < wire.MaxBlockHeadersPerMsg {
			return nil
		}
	}
}

// HandleHeaders validates and applies a headers message from the peer at addr (p may be
// nil), scoring the peer for invalid or unconnected headers. It returns the number of
// headers in the message.
func (m *Manager) HandleHeaders(addr string, p *peer.Peer, msg *wire.MsgHeaders) (int, error) {
	m.st.headersMsgs.Add(1)
	m.st.headers.Add(int64(len(msg.Headers)))
	if len(msg.Headers) > wire.MaxBlockHeadersPerMsg {
		m.misbehave(addr, p, m.cfg.BanThreshold, "too many headers")
		return 0, fmt.Errorf("p2p: %s: %d headers in one message", addr, len(msg.Headers))
	}
	hs := make([]wire.BlockHeader, len(msg.Headers))
	for i, h := range msg.Headers {
		if h == nil {
			m.misbehave(addr, p, m.cfg.BanThreshold, "nil header")
			return 0, fmt.Errorf("p2p: %s: nil header", addr)
		}
		hs[i] = *h
	}
	ch, err := m.chain.Process(hs)
	if len(ch.Connected) > 0 || len(ch.Disconnected) > 0 {
		tip := m.chain.Tip()
		m.log.Info("best chain changed", "peer", addr, "tip", tip, "connected", len(ch.Connected),
			"disconnected", len(ch.Disconnected))
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(ch)
		}
		m.hub.notify()
	}
	switch {
	case errors.Is(err, ErrInvalidHeader):
		m.misbehave(addr, p, m.cfg.BanThreshold, err.Error())
		return len(hs), fmt.Errorf("p2p: %s: %w", addr, err)
	case errors.Is(err, ErrOrphanHeader):
		// A reply to our locator must connect; an unsolicited announcement may not.
		m.misbehave(addr, p, 20, err.Error())
		return len(hs), nil
	case err != nil:
		return len(hs), err
	}
	return len(hs), nil
}
