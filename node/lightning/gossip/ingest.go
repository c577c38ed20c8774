package gossip

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/graphdb"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/lnwire"
)

// maxPending bounds the channel_updates kept for channels not announced yet.
const maxPending = 10_000

// maxFuture is how far in the future an update's timestamp may be.
const maxFuture = time.Hour

// Ingester validates gossip and applies what is valid to the graph and the store. It is
// safe for concurrent use by the sessions of several peers.
type Ingester struct {
	chain   chainhash.Hash
	graph   *graph.Graph
	store   *graphdb.Store // nil: memory only
	funding FundingChecker // nil: capacity unknown, funding not checked
	verify  *Verifier
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex // serialises apply
	pending map[uint64][]*lnwire.ChannelUpdate1
	// spends maps the funding outputs of channels checked on chain to their ids.
	spends map[wire.OutPoint]uint64
}

// IngesterConfig wires an Ingester.
type IngesterConfig struct {
	// Chain is the genesis hash of the network; gossip for others is ignored.
	Chain   chainhash.Hash
	Graph   *graph.Graph
	Store   *graphdb.Store
	Funding FundingChecker
	Log     *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NewIngester returns an ingester.
func NewIngester(cfg IngesterConfig) *Ingester {
	in := &Ingester{
		chain: cfg.Chain, graph: cfg.Graph, store: cfg.Store, funding: cfg.Funding,
		verify: NewVerifier(), log: cfg.Log, now: cfg.Now,
		pending: make(map[uint64][]*lnwire.ChannelUpdate1),
		spends:  make(map[wire.OutPoint]uint64),
	}
	for _, c := range cfg.Graph.Channels() {
		if op, err := wire.NewOutPointFromString(c.Outpoint); err == nil {
			in.spends[*op] = c.ID
		}
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	if in.now == nil {
		in.now = time.Now
	}
	return in
}

// Verifier is the ingester's signature verifier.
func (in *Ingester) Verifier() *Verifier { return in.verify }

// Result tells what a batch did.
type Result struct {
	Channels, Updates, Nodes int // applied
	Ignored                  int // stale, duplicate, other chain, unknown channel, bad funding
	// Invalid is the first proof of misbehaviour (wraps ErrInvalid): the sender is dropped.
	Invalid error
}

// Process validates msgs (channel_announcement, channel_update, node_announcement; other
// types are ignored) with their signatures checked in parallel, and applies and stores the
// valid ones in one transaction. A storage failure is returned as error.
func (in *Ingester) Process(ctx context.Context, msgs []lnwire.Message) (Result, error) {
	var res Result
	var anns []*lnwire.ChannelAnnouncement1
	var upds []*lnwire.ChannelUpdate1
	var nodes []*lnwire.NodeAnnouncement1
	seen := make(map[uint64]bool)
	for _, m := range msgs {
		switch m := m.(type) {
		case *lnwire.ChannelAnnouncement1:
			id := m.ShortChannelID.ToUint64()
			if m.ChainHash != in.chain || seen[id] || in.graph.HasChannel(id) {
				res.Ignored++
				continue
			}
			seen[id] = true
			anns = append(anns, m)
		case *lnwire.ChannelUpdate1:
			if m.ChainHash != in.chain {
				res.Ignored++
				continue
			}
			upds = append(upds, m)
		case *lnwire.NodeAnnouncement1:
			nodes = append(nodes, m)
		}
	}
	var batch graphdb.Batch
	changed := make(map[uint64]bool)

	// 1. Channel announcements: signatures and funding, in parallel.
	annErr := make([]error, len(anns))
	funding := make([]Funding, len(anns))
	Parallel(len(anns), func(i int) {
		if annErr[i] = in.verify.VerifyChannelAnnouncement(anns[i]); annErr[i] != nil {
			return
		}
		if in.funding != nil {
			funding[i], annErr[i] = in.funding.Funding(ctx, anns[i])
		}
	})
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, a := range anns {
		if err := annErr[i]; err != nil {
			if in.invalid(&res, err) {
				continue
			}
			if !errors.Is(err, ErrFunding) {
				return res, fmt.Errorf("gossip: check channel %v: %w", a.ShortChannelID, err)
			}
			in.log.Debug("lightning channel ignored", "scid", a.ShortChannelID, "err", err)
			res.Ignored++
			continue
		}
		c := &graph.Channel{
			ID: a.ShortChannelID.ToUint64(), Node1: a.NodeID1, Node2: a.NodeID2,
			BitcoinKey1: a.BitcoinKey1, BitcoinKey2: a.BitcoinKey2,
			Capacity: funding[i].Value, Added: in.now().Unix(), Features: featureBytes(a.Features),
		}
		if in.funding != nil {
			c.Outpoint = funding[i].Outpoint.String()
		}
		if in.graph.AddChannel(c) {
			if in.funding != nil {
				in.spends[funding[i].Outpoint] = c.ID
			}
			res.Channels++
			changed[c.ID] = true
			// Updates that arrived before the announcement.
			upds = append(upds, in.pending[c.ID]...)
			delete(in.pending, c.ID)
		}
	}

	// 2. Channel updates: find the signer, drop what is stale, verify in parallel.
	type job struct {
		u    *lnwire.ChannelUpdate1
		node [33]byte
		cap  int64
		err  error
	}
	var jobs []job
	for _, u := range upds {
		id := u.ShortChannelID.ToUint64()
		c, ok := in.graph.Channel(id)
		if !ok {
			in.park(u)
			res.Ignored++
			continue
		}
		dir := int(u.ChannelFlags & lnwire.ChanUpdateDirection)
		if u.Timestamp <= in.graph.PolicyTimestamp(id, dir) || int64(u.Timestamp) > in.now().Add(maxFuture).Unix() {
			res.Ignored++
			continue
		}
		node := c.Node1
		if dir == 1 {
			node = c.Node2
		}
		jobs = append(jobs, job{u: u, node: node, cap: c.Capacity})
	}
	in.mu.Unlock() // verification needs no lock
	Parallel(len(jobs), func(i int) { jobs[i].err = in.verify.VerifyChannelUpdate(jobs[i].u, jobs[i].node) })
	// Node announcements are self-contained: verify them in the same unlocked stretch.
	nodeErr := make([]error, len(nodes))
	Parallel(len(nodes), func(i int) { nodeErr[i] = in.verify.VerifyNodeAnnouncement(nodes[i]) })
	in.mu.Lock()
	for _, j := range jobs {
		if j.err != nil {
			in.invalid(&res, j.err)
			continue
		}
		p, ok := policyOf(j.u, j.cap)
		if !ok {
			res.Ignored++
			continue
		}
		id := j.u.ShortChannelID.ToUint64()
		if err := in.graph.UpdatePolicy(id, int(j.u.ChannelFlags&lnwire.ChanUpdateDirection), p); err != nil {
			res.Ignored++
			continue
		}
		res.Updates++
		changed[id] = true
	}

	// 3. Node announcements.
	for i, n := range nodes {
		if nodeErr[i] != nil {
			in.invalid(&res, nodeErr[i])
			continue
		}
		gn := nodeOf(n)
		if err := in.graph.SetNode(gn); err != nil {
			res.Ignored++
			continue
		}
		res.Nodes++
		batch.Nodes = append(batch.Nodes, gn)
	}

	if in.store != nil {
		for id := range changed {
			if c, ok := in.graph.Channel(id); ok {
				batch.Channels = append(batch.Channels, c)
			}
		}
		if err := in.store.Apply(batch); err != nil {
			return res, fmt.Errorf("gossip: store: %w", err)
		}
	}
	return res, nil
}

// invalid records err when it proves misbehaviour and reports whether it did.
func (in *Ingester) invalid(res *Result, err error) bool {
	if !errors.Is(err, ErrInvalid) {
		return false
	}
	if res.Invalid == nil {
		res.Invalid = err
	}
	return true
}

// park keeps an update for a channel not announced yet, within maxPending.
func (in *Ingester) park(u *lnwire.ChannelUpdate1) {
	id := u.ShortChannelID.ToUint64()
	if _, ok := in.pending[id]; !ok && len(in.pending) >= maxPending {
		return
	}
	if len(in.pending[id]) < 4 {
		in.pending[id] = append(in.pending[id], u)
	}
}

// Prune removes channels without an update for maxAge and returns how many.
func (in *Ingester) Prune(maxAge time.Duration) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	ids := in.graph.Stale(in.now(), maxAge)
	if err := in.remove(ids); err != nil {
		return 0, fmt.Errorf("gossip: prune: %w", err)
	}
	return len(ids), nil
}

// BlockConnected removes the channels whose funding outputs the block spends (closed
// channels) and returns how many. Only channels whose funding was checked on chain are
// known by outpoint.
func (in *Ingester) BlockConnected(block *wire.MsgBlock) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var ids []uint64
	for _, tx := range block.Transactions {
		for _, txin := range tx.TxIn {
			if id, ok := in.spends[txin.PreviousOutPoint]; ok {
				ids = append(ids, id)
			}
		}
	}
	if err := in.remove(ids); err != nil {
		return 0, fmt.Errorf("gossip: closed channels of block %v: %w", block.BlockHash(), err)
	}
	return len(ids), nil
}

// remove deletes channels from the graph, the funding index and the store; in.mu is held.
func (in *Ingester) remove(ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if c, ok := in.graph.Channel(id); ok {
			if op, err := wire.NewOutPointFromString(c.Outpoint); err == nil {
				delete(in.spends, *op)
			}
		}
		in.graph.RemoveChannel(id)
	}
	if in.store != nil {
		return in.store.Apply(graphdb.Batch{Removed: ids})
	}
	return nil
}

// policyOf converts an update, refusing inconsistent limits (BOLT 7: ignore).
func policyOf(u *lnwire.ChannelUpdate1, capacity int64) (graph.Policy, bool) {
	p := graph.Policy{
		Timestamp: u.Timestamp,
		Disabled:  u.ChannelFlags&lnwire.ChanUpdateDisabled != 0,
		CLTVDelta: u.TimeLockDelta,
		MinHTLC:   uint64(u.HtlcMinimumMsat),
		FeeBase:   u.BaseFee,
		FeeRate:   u.FeeRate,
	}
	if u.MessageFlags.HasMaxHtlc() {
		p.MaxHTLC = uint64(u.HtlcMaximumMsat)
		if p.MaxHTLC < p.MinHTLC || (capacity > 0 && p.MaxHTLC > uint64(capacity)*1000) {
			return graph.Policy{}, false
		}
	}
	return p, true
}

func nodeOf(n *lnwire.NodeAnnouncement1) graph.Node {
	gn := graph.Node{
		ID: n.NodeID, Timestamp: n.Timestamp, Alias: n.Alias.String(),
		Color: colorHex(n.RGBColor), Features: featureBytes(n.Features),
	}
	for _, a := range n.Addresses {
		if _, ok := a.(*net.TCPAddr); ok {
			gn.Addresses = append(gn.Addresses, a.String())
		}
	}
	return gn
}

func colorHex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func featureBytes(f *lnwire.RawFeatureVector) []byte {
	if f == nil || f.IsEmpty() {
		return nil
	}
	var b bytesWriter
	if err := f.Encode(&b); err != nil {
		return nil
	}
	return b
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
