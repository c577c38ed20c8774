package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/chaincfg"
)

// errLightningStopped answers peer and route requests while the Lightning node is not running.
var errLightningStopped = errors.New("the Lightning node is not running: set up and unlock the wallet")

// lightningService runs the box's Lightning gossip node (package node/lightning) as soon as
// the custody can give its node key, that is once the wallet is set up and unlocked (the
// key is derived from the seed, hsm.NodeKey). It then runs until the services stop, even if
// the wallet is locked again (the key stays in the running node only). Peers added on the
// page are recorded and reconnected after a restart, and the graph is stored. It follows the
// chain backend the wallet uses (chainOf): channel funding outputs are checked against it and
// closes followed; when the owner picks another backend (or the first one) the node restarts
// on it, with the key it already has, so a wallet locked meanwhile does not stop it.
type lightningService struct {
	db      *storage.DB
	custody *hsm.Custody
	params  *chaincfg.Params
	log     *slog.Logger
	// chainOf returns the chain backend in use (nil: none).
	chainOf func() chain.Backend

	mu     sync.Mutex
	ctx    context.Context
	node   *lightning.Node
	key    *hsm.NodeKey
	chain  chain.Backend      // the node's
	cancel context.CancelFunc // stops the node
	why    string
	done   chan struct{} // closed when the node's Run returned
}

var _ web.Lightning = (*lightningService)(nil)

func newLightningService(db *storage.DB, custody *hsm.Custody, params *chaincfg.Params, chainOf func() chain.Backend, log *slog.Logger) *lightningService {
	return &lightningService{db: db, custody: custody, params: params, chainOf: chainOf, log: log.With("svc", "lightning"),
		why: "The Lightning node starts once the wallet is set up and unlocked: its key comes from the wallet's seed."}
}

// run starts the node when it can, restarts it on the chain backend the wallet switched to,
// and stops it when ctx ends.
func (l *lightningService) run(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	t := time.NewTicker(walletPollInterval)
	defer t.Stop()
	for {
		n, _ := l.running()
		switch {
		case n == nil:
			l.start(ctx)
		case l.chainOf != nil && l.chainOf() != l.currentChain():
			l.stopNode()
			l.log.Info("the chain backend changed: restarting the Lightning node on it")
			l.start(ctx)
		}
		select {
		case <-ctx.Done():
			l.stopNode()
			l.mu.Lock()
			key := l.key
			l.key = nil
			l.mu.Unlock()
			if key != nil {
				key.Zero()
			}
			return
		case <-t.C:
		}
	}
}

func (l *lightningService) currentChain() chain.Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chain
}

// stopNode stops the running node, if any, and waits for it.
func (l *lightningService) stopNode() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.node, l.cancel, l.done, l.chain = nil, nil, nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// start opens the node with the custody's key (taken once, when the wallet is unlocked) on
// the chain backend in use; it reports whether the node runs.
func (l *lightningService) start(ctx context.Context) bool {
	l.mu.Lock()
	key := l.key
	l.mu.Unlock()
	if key == nil {
		k, err := l.custody.NodeKey()
		if err != nil {
			return false // no wallet yet, or locked: l.why says so
		}
		key = k
		l.mu.Lock()
		l.key = key
		l.mu.Unlock()
	}
	var backend chain.Backend
	if l.chainOf != nil {
		backend = l.chainOf()
	}
	n, err := lightning.New(lightning.Config{Key: key, Params: l.params, DB: l.db, Log: l.log, Chain: backend})
	if err != nil {
		l.log.Error("start the Lightning node", "err", err)
		l.mu.Lock()
		l.why = fmt.Sprintf("The Lightning node could not start: %v.", err)
		l.mu.Unlock()
		return false
	}
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(nctx); err != nil && nctx.Err() == nil {
			l.log.Error("Lightning node", "err", err)
		}
	}()
	l.mu.Lock()
	l.node, l.chain, l.cancel, l.done, l.why = n, backend, cancel, done, ""
	l.mu.Unlock()
	l.log.Info("Lightning node started", "pubkey", n.Status().PubKey, "funding_checks", backend != nil)
	return true
}

func (l *lightningService) running() (*lightning.Node, context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node, l.ctx
}

// LightningStatus implements web.Lightning.
func (l *lightningService) LightningStatus() (lightning.Status, bool, string) {
	n, _ := l.running()
	if n == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		return lightning.Status{}, false, l.why
	}
	return n.Status(), true, ""
}

// AddLightningPeer implements web.Lightning.
func (l *lightningService) AddLightningPeer(uri string) error {
	n, ctx := l.running()
	if n == nil {
		return errLightningStopped
	}
	return n.SavePeer(ctx, uri)
}

// QueryRoute implements web.Lightning.
func (l *lightningService) QueryRoute(q lightning.RouteQuery) (lightning.RouteAnswer, error) {
	n, _ := l.running()
	if n == nil {
		return lightning.RouteAnswer{}, errLightningStopped
	}
	return n.QueryRoute(q)
}
