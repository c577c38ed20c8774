package p2p

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
)

// Limits of transaction relay (see the package documentation).
const (
	// seenCapacity is how many txids are remembered to deliver each transaction once.
	seenCapacity = 50_000
	// maxTxInFlight bounds the transactions requested from one peer and not yet received.
	maxTxInFlight = 500
	// txRate and txBurst are the token bucket of transactions requested per peer
	// (per second, and at once).
	txRate  = 100
	txBurst = 1000
	// subBuffer is the capacity of a WatchMempool channel; a subscriber that lets it fill
	// up misses transactions (delivery is best effort) rather than stalling the peers.
	subBuffer = 1024
	// relayAckTimeout bounds how long WatchMempool waits for the peers to acknowledge
	// the fee filter that turns their announcements on.
	relayAckTimeout = 2 * time.Second
)

// noRelayFeeFilter is the BIP133 fee filter that asks a peer to announce no transaction:
// no transaction pays more than every bitcoin in existence per kvB.
const noRelayFeeFilter = btcutil.MaxSatoshi

// hashRing is a set of hashes that forgets the oldest once it holds its capacity.
type hashRing struct {
	set  map[chainhash.Hash]struct{}
	ring []chainhash.Hash
	next int
}

func newHashRing(capacity int) *hashRing {
	return &hashRing{set: make(map[chainhash.Hash]struct{}, capacity), ring: make([]chainhash.Hash, 0, capacity)}
}

func (r *hashRing) has(h chainhash.Hash) bool { _, ok := r.set[h]; return ok }

func (r *hashRing) add(h chainhash.Hash) {
	if r.has(h) {
		return
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, h)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = h
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[h] = struct{}{}
}

func (r *hashRing) len() int { return len(r.set) }

// txPeer is the relay state of one peer: requests in flight and its token bucket.
type txPeer struct {
	inflight int
	tokens   float64
	last     time.Time
}

func (p *txPeer) refill(now time.Time) {
	if !p.last.IsZero() {
		p.tokens = min(txBurst, p.tokens+now.Sub(p.last).Seconds()*txRate)
	}
	p.last = now
}

type txRequest struct {
	addr string
	at   time.Time
}

// txRelay receives the transactions peers announce while someone watches the mempool:
// inv(tx) → getdata(witness tx) → tx, each delivered once to every watcher.
type txRelay struct {
	m        *Manager
	watching atomic.Bool // at least one subscriber: tx invs are followed

	mu        sync.Mutex
	subs      map[int]chan *wire.MsgTx
	nextID    int
	seen      *hashRing
	inflight  map[chainhash.Hash]txRequest
	peers     map[string]*txPeer
	lastSweep time.Time
}

func newTxRelay(m *Manager) *txRelay {
	return &txRelay{m: m, subs: map[int]chan *wire.MsgTx{}, seen: newHashRing(seenCapacity),
		inflight: map[chainhash.Hash]txRequest{}, peers: map[string]*txPeer{}}
}

// feeFilter is the BIP133 fee filter to send to peers for the current watch state.
func (r *txRelay) feeFilter() int64 {
	if r.watching.Load() {
		return int64(chain.MinRelayFeeRate)
	}
	return noRelayFeeFilter
}

// sendFeeFilter asks p to announce transactions (or none) according to the watch state.
// Peers older than BIP133 cannot be told and are ignored (their tx invs are dropped when
// nobody watches).
func (r *txRelay) sendFeeFilter(p *peer.Peer, done chan<- struct{}) bool {
	if p.ProtocolVersion() < wire.FeeFilterVersion {
		return false
	}
	p.QueueMessage(wire.NewMsgFeeFilter(r.feeFilter()), done)
	return true
}

// reconcile turns announcements on at every connected peer while there are subscribers
// and off when there are none. Turning them on, it waits (up to relayAckTimeout or ctx)
// until the peers have processed the filter: a ping sent after it is answered only then.
// The state changes under m.mu, which sessions hold when they send a new peer its filter.
func (r *txRelay) reconcile(ctx context.Context) {
	m := r.m
	var (
		pmu     sync.Mutex
		pending = map[uint64]bool{}
		armed   bool
		all     = make(chan struct{})
	)
	// The tap is in place before the pings go out, so no pong can be missed.
	untap := m.hub.addTap(func(_ string, msg wire.Message) {
		pong, ok := msg.(*wire.MsgPong)
		if !ok {
			return
		}
		pmu.Lock()
		defer pmu.Unlock()
		if pending[pong.Nonce] {
			delete(pending, pong.Nonce)
			if armed && len(pending) == 0 {
				close(all)
			}
		}
	})
	defer untap()

	m.mu.Lock()
	r.mu.Lock()
	on := len(r.subs) > 0
	r.mu.Unlock()
	if r.watching.Load() == on {
		m.mu.Unlock()
		return
	}
	r.watching.Store(on)
	told := 0
	for _, p := range m.peers {
		if !p.Connected() || !r.sendFeeFilter(p, nil) {
			continue
		}
		told++
		if on {
			nonce := rand.Uint64()
			pmu.Lock()
			pending[nonce] = true
			pmu.Unlock()
			p.QueueMessage(wire.NewMsgPing(nonce), nil)
		}
	}
	m.mu.Unlock()
	m.log.Debug("transaction relay", "on", on, "peers", told)

	pmu.Lock()
	armed = true
	done := len(pending) == 0
	pmu.Unlock()
	if done {
		return
	}
	t := time.NewTimer(relayAckTimeout)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	case <-ctx.Done():
	}
}

// subscribe adds a watcher; the channel is closed when ctx ends or stop closes.
func (r *txRelay) subscribe(ctx context.Context, stop <-chan struct{}) <-chan *wire.MsgTx {
	ch := make(chan *wire.MsgTx, subBuffer)
	r.mu.Lock()
	id := r.nextID
	r.nextID++
	r.subs[id] = ch
	r.mu.Unlock()
	r.reconcile(ctx)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		r.mu.Lock()
		delete(r.subs, id)
		close(ch)
		r.mu.Unlock()
		r.reconcile(context.Background())
	}()
	return ch
}

func (r *txRelay) peer(addr string) *txPeer {
	p := r.peers[addr]
	if p == nil {
		p = &txPeer{tokens: txBurst}
		r.peers[addr] = p
	}
	return p
}

// sweep forgets requests older than the request timeout (at most once a second).
func (r *txRelay) sweep(now time.Time) {
	if now.Sub(r.lastSweep) < time.Second {
		return
	}
	r.lastSweep = now
	for h, req := range r.inflight {
		if now.Sub(req.at) > r.m.cfg.Timeout {
			delete(r.inflight, h)
			if p := r.peers[req.addr]; p != nil && p.inflight > 0 {
				p.inflight--
			}
		}
	}
}

// wanted picks, from a peer's inv, the transactions to request from it: not delivered
// yet, not requested from another peer, within the peer's in-flight limit and rate.
// It records the requests.
func (r *txRelay) wanted(addr string, invs []*wire.InvVect, now time.Time) []*wire.InvVect {
	if !r.watching.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(now)
	p := r.peer(addr)
	p.refill(now)
	var want []*wire.InvVect
	for _, iv := range invs {
		if iv == nil || (iv.Type != wire.InvTypeTx && iv.Type != wire.InvTypeWitnessTx) {
			continue
		}
		if r.seen.has(iv.Hash) {
			continue
		}
		if _, ok := r.inflight[iv.Hash]; ok {
			continue
		}
		if p.inflight >= maxTxInFlight || p.tokens < 1 {
			r.m.st.txInvsDropped.Add(1)
			continue
		}
		p.tokens--
		p.inflight++
		r.inflight[iv.Hash] = txRequest{addr: addr, at: now}
		want = append(want, wire.NewInvVect(wire.InvTypeWitnessTx, &iv.Hash))
	}
	return want
}

// onInv requests the announced transactions we want.
func (r *txRelay) onInv(addr string, p *peer.Peer, msg *wire.MsgInv) {
	n := 0
	for _, iv := range msg.InvList {
		if iv.Type == wire.InvTypeTx || iv.Type == wire.InvTypeWitnessTx {
			n++
		}
	}
	if n == 0 {
		return
	}
	r.m.st.txAnnounced.Add(int64(n))
	want := r.wanted(addr, msg.InvList, time.Now())
	if len(want) == 0 {
		return
	}
	r.m.st.txInvs.Add(int64(len(want)))
	gd := wire.NewMsgGetDataSizeHint(uint(len(want)))
	for _, iv := range want {
		_ = gd.AddInvVect(iv) // len(want) ≤ maxTxInFlight < MaxInvPerMsg
	}
	p.QueueMessage(gd, nil)
}

// errInsaneTx marks a requested transaction that cannot be valid.
var errInsaneTx = errors.New("transaction fails sanity checks")

// received handles a transaction from addr: it is delivered if we asked that peer for it
// and have not delivered it yet. Unrequested transactions are ignored; a requested one that
// fails btcd's context-free sanity checks is an error (the peer misbehaves).
func (r *txRelay) received(addr string, tx *wire.MsgTx) error {
	txid := tx.TxHash()
	r.mu.Lock()
	defer r.mu.Unlock()
	req, ok := r.inflight[txid]
	if !ok || req.addr != addr {
		r.m.st.txsUnrequested.Add(1)
		return nil
	}
	delete(r.inflight, txid)
	if p := r.peers[addr]; p != nil && p.inflight > 0 {
		p.inflight--
	}
	if err := blockchain.CheckTransactionSanity(btcutil.NewTx(tx)); err != nil {
		return errors.Join(errInsaneTx, err)
	}
	if r.seen.has(txid) {
		return nil
	}
	r.seen.add(txid)
	r.seen.add(tx.WitnessHash())
	r.m.st.txs.Add(1)
	first := true
	for _, ch := range r.subs {
		out := tx
		if !first {
			out = tx.Copy() // each watcher owns its transaction
		}
		first = false
		select {
		case ch <- out:
		default: // the subscriber is not keeping up
			r.m.st.txsDropped.Add(1)
		}
	}
	return nil
}

// onTx is the listener for tx messages.
func (r *txRelay) onTx(addr string, p *peer.Peer, tx *wire.MsgTx) {
	if err := r.received(addr, tx); err != nil {
		r.m.misbehave(addr, p, r.m.cfg.BanThreshold, err.Error())
	}
}

// notFound releases the requests a peer could not serve.
func (r *txRelay) notFound(addr string, msg *wire.MsgNotFound) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, iv := range msg.InvList {
		if req, ok := r.inflight[iv.Hash]; ok && req.addr == addr {
			delete(r.inflight, iv.Hash)
			if p := r.peers[addr]; p != nil && p.inflight > 0 {
				p.inflight--
			}
		}
	}
}

// peerGone forgets a disconnected peer's requests and state.
func (r *txRelay) peerGone(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, req := range r.inflight {
		if req.addr == addr {
			delete(r.inflight, h)
		}
	}
	delete(r.peers, addr)
}

// WatchMempool delivers the transactions that peers announce from now on, each once,
// until ctx ends (then the channel is closed). While at least one watch is active the
// peers are asked to announce transactions (BIP133 fee filter at the minimum relay fee);
// otherwise they are asked to announce none. The transactions are checked for
// context-free sanity only: the light client cannot verify their inputs, so a peer can
// invent an unconfirmed transaction (it never confirms).
func (m *Manager) WatchMempool(ctx context.Context) <-chan *wire.MsgTx {
	return m.txr.subscribe(ctx, nil)
}
