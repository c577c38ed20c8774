package p2p

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
)

// hub lets request/response code outside a session observe peer messages (taps) and lets
// subscriptions wake on changes of the header chain or the filters (notify). Its zero value
// is ready to use.
type hub struct {
	mu   sync.Mutex
	taps map[int]func(addr string, msg wire.Message)
	subs map[int]chan struct{}
	next int
}

func (h *hub) tap(addr string, msg wire.Message) {
	h.mu.Lock()
	fs := make([]func(string, wire.Message), 0, len(h.taps))
	for _, f := range h.taps {
		fs = append(fs, f)
	}
	h.mu.Unlock()
	for _, f := range fs {
		f(addr, msg)
	}
}

// addTap observes every tapped message (it must not block) until the returned func is called.
func (h *hub) addTap(f func(addr string, msg wire.Message)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taps == nil {
		h.taps = map[int]func(string, wire.Message){}
	}
	id := h.next
	h.next++
	h.taps[id] = f
	return func() { h.mu.Lock(); delete(h.taps, id); h.mu.Unlock() }
}

func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (h *hub) subscribe() (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[int]chan struct{}{}
	}
	id := h.next
	h.next++
	c := make(chan struct{}, 1)
	h.subs[id] = c
	return c, func() { h.mu.Lock(); delete(h.subs, id); h.mu.Unlock() }
}

// route is the way from block from to the best tip: the blocks to disconnect (from first,
// down to the fork) and up to max blocks of the best chain to connect after the fork.
func (hc *HeaderChain) route(from chainhash.Hash, max int) (disc, conn []*hnode, ok bool) {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	n := hc.index[from]
	if n == nil {
		return nil, nil, false
	}
	for int(n.height) >= len(hc.best) || hc.best[n.height] != n {
		disc = append(disc, n)
		n = n.parent
	}
	end := min(len(hc.best), int(n.height)+1+max)
	conn = slices.Clone(hc.best[n.height+1 : end])
	return disc, conn, true
}

// connectedPeers are the peers with a completed handshake, by address.
func (m *Manager) connectedPeers() map[string]*peer.Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]*peer.Peer{}
	for a, p := range m.peers {
		if p.Connected() {
			out[a] = p
		}
	}
	return out
}

func (m *Manager) hasFilter(block chainhash.Hash) bool {
	m.fmu.RLock()
	defer m.fmu.RUnlock()
	return m.haveF[block]
}

// Backend serves chain.Backend from the light client: headers, filters and the best chain
// come from the validated header chain and the stored filters, blocks are fetched from a
// peer on demand (getdata) and checked against their header (merkle root, btcd's block
// sanity checks, witness commitment), and transactions are sent to every connected peer.
//
// It also implements chain.PeerReporter and chain.MempoolWatcher (transactions announced by
// the peers, see Manager.WatchMempool).
//
// Limits of a light client, reported as errors rather than guessed: EstimateFee always fails
// with chain.ErrFeeUnavailable (the transactions it sees come without the values of their
// inputs, so their fees are unknown, and it keeps no fee statistics yet); Broadcast cannot
// see a peer's mempool, so it relies on btcd's reject messages (a tx a peer neither rejects
// nor drops counts as broadcast). A peer of another network fails the version handshake
// (wrong magic), so it shows as no peer (ErrNodeDown) rather than ErrWrongNetwork; our
// headers start at Params' genesis.
type Backend struct {
	m      *Manager
	cancel context.CancelFunc
	done   chan struct{}
	closed chan struct{}
	once   sync.Once
}

var (
	_ chain.Backend        = (*Backend)(nil)
	_ chain.PeerReporter   = (*Backend)(nil)
	_ chain.MempoolWatcher = (*Backend)(nil)
)

// NewBackend creates a Manager from cfg and runs it until Close.
func NewBackend(cfg Config) (*Backend, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{m: m, cancel: cancel, done: make(chan struct{}), closed: make(chan struct{})}
	go func() { defer close(b.done); _ = m.Run(ctx) }()
	return b, nil
}

// Manager is the light client behind the backend.
func (b *Backend) Manager() *Manager { return b.m }

func (b *Backend) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

func cerr(op string, kind error, format string, args ...any) error {
	var e error
	if format != "" {
		e = fmt.Errorf(format, args...)
	}
	return &chain.Error{Op: op, Host: "p2p", Kind: kind, Err: e}
}

// check fails with ErrClosed after Close and with ctx's error once ctx ended.
func (b *Backend) check(ctx context.Context, op string) error {
	if b.isClosed() {
		return cerr(op, chain.ErrClosed, "")
	}
	if err := ctx.Err(); err != nil {
		return &chain.Error{Op: op, Host: "p2p", Err: err}
	}
	return nil
}

// Params implements chain.Backend.
func (b *Backend) Params() *chaincfg.Params { return b.m.cfg.Params }

// peerHeight is the median of the heights the connected peers reported.
func (b *Backend) peerHeight() (int, int32) {
	ps := b.m.connectedPeers()
	hs := make([]int32, 0, len(ps))
	for _, p := range ps {
		hs = append(hs, max(p.LastBlock(), p.StartingHeight()))
	}
	if len(hs) == 0 {
		return 0, 0
	}
	slices.Sort(hs)
	return len(hs), hs[len(hs)/2]
}

// Ready implements chain.Backend: ErrNodeDown without a connected peer, ErrSyncing while
// the headers are behind the peers' height or the filters behind the headers.
func (b *Backend) Ready(ctx context.Context) error {
	if err := b.check(ctx, "ready"); err != nil {
		return err
	}
	st, _ := b.Status(ctx)
	if st.Peers == 0 {
		return cerr("ready", chain.ErrNodeDown, "no connected peers")
	}
	if st.Syncing {
		return cerr("ready", chain.ErrSyncing, "%s", st.Reason)
	}
	return nil
}

// Status implements chain.Backend. Best is the highest block up to which the filters are
// verified (what the wallet can use); Headers the header tip.
func (b *Backend) Status(ctx context.Context) (chain.Status, error) {
	if err := b.check(ctx, "status"); err != nil {
		return chain.Status{}, err
	}
	tip := b.m.chain.Tip()
	ft := b.m.FilterTip()
	n, ph := b.peerHeight()
	st := chain.Status{Backend: "anya p2p light client", Best: b.stamp(ft), Headers: tip.Height,
		Peers: n, PeerHeight: ph}
	target := max(ph, tip.Height)
	st.Progress = 1
	if target > 0 {
		st.Progress = float64(ft.Height) / float64(target)
	}
	switch {
	case n == 0:
		st.Syncing, st.Reason = true, "no connected peers"
	case tip.Height < ph:
		st.Syncing, st.Reason = true, fmt.Sprintf("headers at %d, peers at %d", tip.Height, ph)
	case ft.Height < tip.Height:
		st.Syncing, st.Reason = true, fmt.Sprintf("filters at %d of %d", ft.Height, tip.Height)
	}
	return st, nil
}

func (b *Backend) stamp(s Stamp) chain.BlockStamp {
	h, _, _, _ := b.m.chain.Header(s.Hash)
	return chain.BlockStamp{Height: s.Height, Hash: s.Hash, Time: h.Timestamp}
}

// BestBlock implements chain.Backend: the tip of the validated header chain.
func (b *Backend) BestBlock(ctx context.Context) (chain.BlockStamp, error) {
	if err := b.check(ctx, "bestblock"); err != nil {
		return chain.BlockStamp{}, err
	}
	return b.stamp(b.m.chain.Tip()), nil
}

// BlockHash implements chain.Backend.
func (b *Backend) BlockHash(ctx context.Context, height int32) (chainhash.Hash, error) {
	if err := b.check(ctx, "blockhash"); err != nil {
		return chainhash.Hash{}, err
	}
	h, ok := b.m.chain.HashAt(height)
	if !ok {
		return chainhash.Hash{}, cerr("blockhash", chain.ErrNotFound, "height %d beyond tip %d", height, b.m.chain.Tip().Height)
	}
	return h, nil
}

// HeaderByHash implements chain.Backend (any known header, also off the best chain).
func (b *Backend) HeaderByHash(ctx context.Context, hash chainhash.Hash) (chain.Header, error) {
	if err := b.check(ctx, "header"); err != nil {
		return chain.Header{}, err
	}
	h, height, _, ok := b.m.chain.Header(hash)
	if !ok {
		return chain.Header{}, cerr("header", chain.ErrNotFound, "block %v", hash)
	}
	return chain.Header{BlockHeader: h, Hash: hash, Height: height}, nil
}

// HeaderByHeight implements chain.Backend.
func (b *Backend) HeaderByHeight(ctx context.Context, height int32) (chain.Header, error) {
	hash, err := b.BlockHash(ctx, height)
	if err != nil {
		return chain.Header{}, err
	}
	return b.HeaderByHash(ctx, hash)
}

// BlockByHash implements chain.Backend: the block is asked of each connected peer in turn
// (getdata) until one returns it with the merkle root of the header we validated.
func (b *Backend) BlockByHash(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error) {
	const op = "getblock"
	if err := b.check(ctx, op); err != nil {
		return nil, err
	}
	if _, _, _, ok := b.m.chain.Header(hash); !ok {
		return nil, cerr(op, chain.ErrNotFound, "block %v: unknown header", hash)
	}
	peers := b.m.connectedPeers()
	if len(peers) == 0 {
		return nil, cerr(op, chain.ErrNodeDown, "block %v: no connected peers", hash)
	}
	var errs []error
	notFound := 0
	for addr, p := range peers {
		blk, err := b.fetchBlock(ctx, addr, p, hash)
		if err == nil {
			return blk, nil
		}
		if ctx.Err() != nil || b.isClosed() {
			return nil, b.check(ctx, op)
		}
		if errors.Is(err, chain.ErrNotFound) {
			notFound++
		}
		errs = append(errs, err)
	}
	kind := chain.ErrNodeDown
	if notFound == len(peers) {
		kind = chain.ErrNotFound
	}
	return nil, &chain.Error{Op: op, Host: "p2p", Kind: kind, Err: errors.Join(errs...)}
}

func (b *Backend) fetchBlock(ctx context.Context, addr string, p *peer.Peer, hash chainhash.Hash) (*wire.MsgBlock, error) {
	got := make(chan wire.Message, 1)
	untap := b.m.hub.addTap(func(from string, msg wire.Message) {
		if from != addr {
			return
		}
		switch v := msg.(type) {
		case *wire.MsgBlock:
			if v.BlockHash() != hash {
				return
			}
		case *wire.MsgNotFound:
			if !slices.ContainsFunc(v.InvList, func(iv *wire.InvVect) bool { return iv.Hash == hash }) {
				return
			}
		default:
			return
		}
		select {
		case got <- msg:
		default:
		}
	})
	defer untap()
	gd := wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessBlock, &hash))
	p.QueueMessage(gd, nil)
	msg, err := b.wait(ctx, p, got)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	blk, ok := msg.(*wire.MsgBlock)
	if !ok {
		return nil, fmt.Errorf("%s: %w", addr, chain.ErrNotFound)
	}
	if err := checkBlock(blk, hash, b.m.cfg.Params, b.m.chain.clock); err != nil {
		b.m.misbehave(addr, p, b.m.cfg.BanThreshold, err.Error())
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	b.m.st.blocks.Add(1)
	return blk, nil
}

// wait returns the first message on got, failing when p disconnects, ctx ends, the backend
// closes or the request times out.
func (b *Backend) wait(ctx context.Context, p *peer.Peer, got <-chan wire.Message) (wire.Message, error) {
	timeout := time.NewTimer(b.m.cfg.Timeout)
	defer timeout.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case msg := <-got:
			return msg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.closed:
			return nil, chain.ErrClosed
		case <-timeout.C:
			return nil, errors.New("request timed out")
		case <-tick.C:
			if !p.Connected() {
				return nil, errDisconnected
			}
		}
	}
}

// FilterByHash implements chain.Backend from the verified, stored filters (they are kept
// only with Config.DB). A block of the best chain whose filter is not fetched yet fails
// with ErrSyncing.
func (b *Backend) FilterByHash(ctx context.Context, hash chainhash.Hash) (*gcs.Filter, error) {
	const op = "getcfilter"
	if err := b.check(ctx, op); err != nil {
		return nil, err
	}
	if b.m.store == nil {
		return nil, cerr(op, chain.ErrUnsupported, "the light client keeps filters only with a database (Config.DB)")
	}
	if !b.m.hasFilter(hash) {
		return nil, b.missing(op, hash, "filter")
	}
	f, err := b.m.Filter(hash)
	if err != nil {
		return nil, cerr(op, chain.ErrNotFound, "%v", err)
	}
	return f, nil
}

// FilterHeaderByHash implements chain.Backend from the verified filter headers.
func (b *Backend) FilterHeaderByHash(ctx context.Context, hash chainhash.Hash) (chainhash.Hash, error) {
	const op = "getcfilterheader"
	if err := b.check(ctx, op); err != nil {
		return chainhash.Hash{}, err
	}
	fh, ok := b.m.FilterHeader(hash)
	if !ok {
		return chainhash.Hash{}, b.missing(op, hash, "filter header")
	}
	return fh, nil
}

func (b *Backend) missing(op string, hash chainhash.Hash, what string) error {
	if _, _, best, ok := b.m.chain.Header(hash); ok && best {
		return cerr(op, chain.ErrSyncing, "%s of block %v not fetched yet", what, hash)
	}
	return cerr(op, chain.ErrNotFound, "no %s for block %v", what, hash)
}

// Broadcast implements chain.Backend. The tx is sent to every connected peer, followed by
// a ping: btcd processes a tx before it reads the next message, so the pong comes after
// any reject for it. A peer that rejects with "already have transaction" counts as
// accepting; one transaction accepted by any peer is broadcast. Without peers it fails
// with ErrNodeDown.
func (b *Backend) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	const op = "sendrawtransaction"
	txid := tx.TxHash()
	if err := b.check(ctx, op); err != nil {
		return txid, err
	}
	peers := b.m.connectedPeers()
	if len(peers) == 0 {
		return txid, cerr(op, chain.ErrNodeDown, "no connected peers to broadcast %v to", txid)
	}
	type result struct {
		addr string
		err  error
	}
	res := make(chan result, len(peers))
	for addr, p := range peers {
		go func() { res <- result{addr, b.sendTx(ctx, addr, p, tx, txid)} }()
	}
	var rej *chain.RejectError
	var errs []error
	accepted := false
	for range peers {
		r := <-res
		switch {
		case r.err == nil:
			accepted = true
		case errors.As(r.err, &rej):
		default:
			errs = append(errs, fmt.Errorf("%s: %w", r.addr, r.err))
		}
	}
	switch {
	case accepted:
		return txid, nil
	case rej != nil:
		return txid, &chain.Error{Op: op, Host: "p2p", Err: rej}
	}
	if err := b.check(ctx, op); err != nil {
		return txid, err
	}
	return txid, &chain.Error{Op: op, Host: "p2p", Kind: chain.ErrNodeDown, Err: errors.Join(errs...)}
}

func (b *Backend) sendTx(ctx context.Context, addr string, p *peer.Peer, tx *wire.MsgTx, txid chainhash.Hash) error {
	nonce := rand.Uint64()
	got := make(chan wire.Message, 2)
	untap := b.m.hub.addTap(func(from string, msg wire.Message) {
		if from != addr {
			return
		}
		switch v := msg.(type) {
		case *wire.MsgReject:
			if v.Cmd != wire.CmdTx || v.Hash != txid {
				return
			}
		case *wire.MsgPong:
			if v.Nonce != nonce {
				return
			}
		default:
			return
		}
		select {
		case got <- msg:
		default:
		}
	})
	defer untap()
	p.QueueMessageWithEncoding(tx, nil, wire.WitnessEncoding)
	p.QueueMessage(wire.NewMsgPing(nonce), nil)
	msg, err := b.wait(ctx, p, got)
	if err != nil {
		return err
	}
	r, ok := msg.(*wire.MsgReject)
	if !ok {
		return nil // pong: processed without a reject
	}
	switch {
	case strings.Contains(r.Reason, "already have transaction"):
		return nil
	case strings.Contains(r.Reason, "already exists in blockchain"):
		return &chain.RejectError{Code: btcjson.ErrRPCTxAlreadyInChain, Reason: r.Reason}
	}
	return &chain.RejectError{Code: btcjson.ErrRPCTxRejected, Reason: fmt.Sprintf("%s (%v)", r.Reason, r.Code)}
}

// EstimateFee implements chain.Backend: always chain.ErrFeeUnavailable. The light client
// does not see a mempool and keeps no statistics of confirmed fees yet, so the caller falls
// back to its own default (for example chain.MinRelayFeeRate).
func (b *Backend) EstimateFee(ctx context.Context, target uint32) (chain.FeeRate, error) {
	if err := b.check(ctx, "estimatefee"); err != nil {
		return 0, err
	}
	return 0, cerr("estimatefee", chain.ErrFeeUnavailable, "the p2p light client has no fee estimator")
}

// subBatch bounds the blocks connected per step of a subscription.
const subBatch = 500

// Subscribe implements chain.Backend from the header chain's change notifications. Blocks
// are reported connected once their filter is stored (so FilterByHash works for them);
// disconnections are reported at once. Losing every peer is reported as BackendDown,
// regaining one as BackendUp. A starting block unknown to the header chain ends the
// subscription with EventLost.
func (b *Backend) Subscribe(ctx context.Context, from *chain.BlockStamp) (<-chan chain.Event, error) {
	if err := b.check(ctx, "subscribe"); err != nil {
		return nil, err
	}
	last := b.m.chain.Tip().Hash
	if from != nil {
		last = from.Hash
	}
	wake, unsub := b.m.hub.subscribe()
	out := make(chan chain.Event, 64)
	go func() {
		defer close(out)
		defer unsub()
		send := func(ev chain.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
			case <-b.closed:
			}
			return false
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		down := false
		for {
			if n := len(b.m.connectedPeers()); n == 0 && !down {
				down = true
				if !send(chain.Event{Kind: chain.BackendDown, Err: cerr("subscribe", chain.ErrNodeDown, "no connected peers")}) {
					return
				}
			} else if n > 0 && down {
				down = false
				if !send(chain.Event{Kind: chain.BackendUp}) {
					return
				}
			}
			disc, conn, ok := b.m.chain.route(last, subBatch)
			if !ok {
				send(chain.Event{Kind: chain.EventLost, Err: cerr("subscribe", chain.ErrNotFound, "block %v is unknown to the header chain", last)})
				return
			}
			for _, n := range disc {
				ev := chain.Event{Kind: chain.BlockDisconnected, Prev: n.header.PrevBlock,
					Block: chain.BlockStamp{Height: n.height, Hash: n.hash, Time: n.header.Timestamp}}
				if !send(ev) {
					return
				}
				last = n.header.PrevBlock
			}
			more := len(conn) == subBatch
			for _, n := range conn {
				if !b.m.hasFilter(n.hash) {
					more = false
					break
				}
				ev := chain.Event{Kind: chain.BlockConnected, Prev: n.header.PrevBlock,
					Block: chain.BlockStamp{Height: n.height, Hash: n.hash, Time: n.header.Timestamp}}
				if !send(ev) {
					return
				}
				last = n.hash
			}
			if more {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			case <-wake:
			case <-tick.C:
			}
		}
	}()
	return out, nil
}

// Close implements chain.Backend: it disconnects the peers and stops the manager; later
// calls fail with ErrClosed. The database (Config.DB) stays open: it belongs to the caller.
func (b *Backend) Close() error {
	b.once.Do(func() {
		close(b.closed)
		b.cancel()
		<-b.done
	})
	return nil
}

// Peers implements chain.PeerReporter: the peers with a completed handshake, by address,
// with the height they reported (or announced since) and their misbehaviour score. The
// light client only dials out, so no peer is inbound. After Close it is empty.
func (b *Backend) Peers() []chain.Peer {
	if b.isClosed() {
		return nil
	}
	ps := b.m.connectedPeers()
	out := make([]chain.Peer, 0, len(ps))
	for addr, p := range ps {
		out = append(out, chain.Peer{Addr: addr, Agent: p.UserAgent(),
			Height: max(p.LastBlock(), p.StartingHeight()), Score: b.m.Score(addr), Inbound: p.Inbound()})
	}
	slices.SortFunc(out, func(a, b chain.Peer) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// WatchMempool implements chain.MempoolWatcher with the transactions the peers announce
// (Manager.WatchMempool): each is delivered once, until ctx ends or the backend is closed,
// then the channel is closed. Transactions already in the peers' mempools when the watch
// starts are not announced again and so are not delivered.
func (b *Backend) WatchMempool(ctx context.Context) (<-chan *wire.MsgTx, error) {
	if err := b.check(ctx, "watchmempool"); err != nil {
		return nil, err
	}
	return b.m.txr.subscribe(ctx, b.closed), nil
}
