package lightning

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/lightning/connmgr"
	"github.com/anya-edge/anya/node/lightning/gossip"
	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/graphdb"
	"github.com/anya-edge/anya/node/lightning/peer"
	"github.com/anya-edge/anya/node/lightning/route"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/keychain"
)

// Defaults of Config.
const (
	DefaultPruneInterval = time.Hour
	// DefaultMaxAge is BOLT 7's two weeks without an update, after which a channel is pruned.
	DefaultMaxAge = 14 * 24 * time.Hour
)

// Config wires a Node.
type Config struct {
	// Key is the node identity (hsm.NodeKey).
	Key    keychain.SingleKeyECDH
	Params *chaincfg.Params
	DB     *storage.DB
	// Chain, when set, is used to check channel funding outputs.
	Chain chain.Backend
	// Peers are kept connected from Run on ("pubkey@host:port").
	Peers []string
	// PruneInterval and MaxAge control pruning (defaults above).
	PruneInterval, MaxAge time.Duration
	// Peer tunes connections; Key is filled in from Key.
	Peer peer.Config
	// Session tunes gossip; Chain, Ingester, Graph and callbacks are filled in.
	Session gossip.SessionConfig
	// MinBackoff and MaxBackoff tune reconnection (connmgr defaults when zero).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
}

// Node is the box's Lightning gossip node.
type Node struct {
	cfg    Config
	graph  *graph.Graph
	store  *graphdb.Store
	ingest *gossip.Ingester
	mgr    *connmgr.Manager
	finder *route.Finder
	log    *slog.Logger

	mu       sync.Mutex
	lastSync time.Time
	syncs    int
}

// New opens the graph store, loads the graph, and prepares the node; Run connects it.
func New(cfg Config) (*Node, error) {
	if cfg.Key == nil || cfg.Params == nil || cfg.DB == nil {
		return nil, errors.New("lightning: Key, Params and DB are required")
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = DefaultPruneInterval
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	store, err := graphdb.Open(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("lightning: %w", err)
	}
	g := graph.New()
	start := time.Now()
	nc, nn, err := store.Load(g)
	if err != nil {
		return nil, fmt.Errorf("lightning: %w", err)
	}
	meta, err := store.Meta()
	if err != nil {
		return nil, fmt.Errorf("lightning: %w", err)
	}
	cfg.Log.Info("lightning graph loaded", "channels", nc, "nodes", nn, "took", time.Since(start))
	n := &Node{cfg: cfg, graph: g, store: store, log: cfg.Log, lastSync: meta.LastSync,
		finder: &route.Finder{Graph: g, Model: route.NewModel()}}
	var funding gossip.FundingChecker
	if cfg.Chain != nil {
		funding = &gossip.ChainFunding{Backend: cfg.Chain}
	}
	n.ingest = gossip.NewIngester(gossip.IngesterConfig{Chain: *cfg.Params.GenesisHash, Graph: g, Store: store, Funding: funding, Log: cfg.Log})
	n.mgr = connmgr.New(connmgr.Config{
		Run:        n.runPeer,
		Misbehaved: func(err error) bool { return errors.Is(err, gossip.ErrInvalid) },
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Log: cfg.Log,
	})
	return n, nil
}

// PubKey is the node id.
func (n *Node) PubKey() *btcec.PublicKey { return n.cfg.Key.PubKey() }

// Graph is the node's graph (read it; gossip writes it).
func (n *Node) Graph() *graph.Graph { return n.graph }

// Finder computes routes on the node's graph with its probability model.
func (n *Node) Finder() *route.Finder { return n.finder }

// Run connects the configured peers and prunes the graph until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	defer n.mgr.Close()
	if n.cfg.Chain != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { n.watchChain(ctx) })
	}
	for _, p := range n.cfg.Peers {
		if err := n.AddPeer(ctx, p); err != nil {
			return err
		}
	}
	saved, err := n.store.Peers()
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	for _, p := range saved {
		if t, err := ParseURI(p.URI); err == nil {
			n.mgr.Add(ctx, t)
		}
	}
	t := time.NewTicker(n.cfg.PruneInterval)
	defer t.Stop()
	for {
		if pruned, err := n.ingest.Prune(n.cfg.MaxAge); err != nil {
			n.log.Error("lightning prune", "err", err)
		} else if pruned > 0 {
			n.log.Info("lightning channels pruned", "count", pruned)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchChain removes channels whose funding output a new block spends (closed channels).
// After a restart it starts at the tip: closes missed meanwhile are found by pruning.
func (n *Node) watchChain(ctx context.Context) {
	var from *chain.BlockStamp
	for ctx.Err() == nil {
		events, err := n.cfg.Chain.Subscribe(ctx, from)
		if err != nil {
			n.log.Warn("lightning: follow the chain", "err", err)
		}
		for ev := range events {
			switch ev.Kind {
			case chain.BlockConnected:
				block, err := n.cfg.Chain.BlockByHash(ctx, ev.Block.Hash)
				if err != nil {
					n.log.Warn("lightning: fetch block", "block", ev.Block, "err", err)
					continue
				}
				if closed, err := n.ingest.BlockConnected(block); err != nil {
					n.log.Error("lightning: closed channels", "err", err)
				} else if closed > 0 {
					n.log.Info("lightning channels closed", "count", closed, "block", ev.Block.Height)
				}
				b := ev.Block
				from = &b
			case chain.EventLost:
				from = nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// ParseURI splits "pubkey@host:port".
func ParseURI(uri string) (connmgr.Target, error) {
	id, addr, ok := strings.Cut(strings.TrimSpace(uri), "@")
	if !ok || addr == "" {
		return connmgr.Target{}, fmt.Errorf("lightning: peer %q is not pubkey@host:port", uri)
	}
	raw, err := hex.DecodeString(id)
	if err == nil {
		_, err = btcec.ParsePubKey(raw)
	}
	if err != nil {
		return connmgr.Target{}, fmt.Errorf("lightning: peer %q: node id: %w", uri, err)
	}
	return connmgr.Target{ID: strings.ToLower(id), Addr: addr}, nil
}

// AddPeer keeps the peer at uri ("pubkey@host:port") connected until ctx ends,
// RemovePeer, or the end of Run. Config.Peers are not recorded; see SavePeer.
func (n *Node) AddPeer(ctx context.Context, uri string) error {
	t, err := ParseURI(uri)
	if err != nil {
		return err
	}
	n.mgr.Add(ctx, t)
	return nil
}

// SavePeer is AddPeer that also records the peer, so that Run connects it again after a
// restart.
func (n *Node) SavePeer(ctx context.Context, uri string) error {
	t, err := ParseURI(uri)
	if err != nil {
		return err
	}
	if err := n.store.SavePeer(t.ID, graphdb.Peer{URI: t.String(), Added: time.Now()}); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	n.mgr.Add(ctx, t)
	return nil
}

// RemovePeer disconnects the peer and forgets it if it was recorded.
func (n *Node) RemovePeer(id string) error {
	id = strings.ToLower(id)
	n.mgr.Remove(id)
	if err := n.store.ForgetPeer(id); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	return nil
}

func (n *Node) runPeer(ctx context.Context, t connmgr.Target, up func()) error {
	raw, _ := hex.DecodeString(t.ID)
	pub, err := btcec.ParsePubKey(raw)
	if err != nil {
		return fmt.Errorf("peer %s: %w", t.ID, err)
	}
	pc := n.cfg.Peer
	pc.Key, pc.Log = n.cfg.Key, n.log
	conn, err := peer.Dial(ctx, pc, pub, t.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	up()
	sc := n.cfg.Session
	sc.Chain, sc.Ingester, sc.Graph, sc.Log = *n.cfg.Params.GenesisHash, n.ingest, n.graph, n.log
	sc.Since = time.Now()
	sc.OnSynced = func(st gossip.SyncStats) {
		n.mu.Lock()
		n.lastSync = st.At
		n.syncs++
		n.mu.Unlock()
		if err := n.store.SetMeta(graphdb.Meta{LastSync: st.At}); err != nil {
			n.log.Error("lightning: record sync", "err", err)
		}
	}
	err = gossip.RunSession(ctx, conn, sc)
	if cerr := conn.Err(); cerr != nil && !errors.Is(err, gossip.ErrInvalid) {
		err = fmt.Errorf("%w (connection: %v)", err, cerr)
	}
	return err
}

// Status is what the page shows.
type Status struct {
	PubKey   string               `json:"pubkey"`
	Graph    graph.Stats          `json:"graph"`
	LastSync time.Time            `json:"last_sync,omitzero"`
	Syncs    int                  `json:"syncs"`
	Peers    []connmgr.PeerStatus `json:"peers"`
	// FundingChecks: channel announcements are checked against a chain backend (their
	// funding output exists and is unspent) and closes are followed.
	FundingChecks bool `json:"funding_checks"`
}

// Status reports the node's state.
func (n *Node) Status() Status {
	n.mu.Lock()
	last, syncs := n.lastSync, n.syncs
	n.mu.Unlock()
	return Status{
		PubKey: hex.EncodeToString(n.cfg.Key.PubKey().SerializeCompressed()),
		Graph:  n.graph.Stats(), LastSync: last, Syncs: syncs, Peers: n.mgr.Status(),
		FundingChecks: n.cfg.Chain != nil,
	}
}
