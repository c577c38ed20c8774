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
// page are recorded and reconnected after a restart, and the graph is stored. It has no
// chain backend yet, so funding outputs are not checked.
type lightningService struct {
	db      *storage.DB
	custody *hsm.Custody
	params  *chaincfg.Params
	log     *slog.Logger

	mu   sync.Mutex
	ctx  context.Context
	node *lightning.Node
	key  *hsm.NodeKey
	why  string
	done chan struct{} // closed when the node's Run returned
}

var _ web.Lightning = (*lightningService)(nil)

func newLightningService(db *storage.DB, custody *hsm.Custody, params *chaincfg.Params, log *slog.Logger) *lightningService {
	return &lightningService{db: db, custody: custody, params: params, log: log.With("svc", "lightning"),
		why: "The Lightning node starts once the wallet is set up and unlocked: its key comes from the wallet's seed."}
}

// run starts the node when it can and stops it when ctx ends.
func (l *lightningService) run(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	t := time.NewTicker(walletPollInterval)
	defer t.Stop()
	for !l.start(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	<-ctx.Done()
	l.mu.Lock()
	done, key := l.done, l.key
	l.mu.Unlock()
	<-done
	key.Zero()
}

// start opens the node if the custody gives the key; it reports whether the node runs.
func (l *lightningService) start(ctx context.Context) bool {
	key, err := l.custody.NodeKey()
	if err != nil {
		return false // no wallet yet, or locked: l.why says so
	}
	n, err := lightning.New(lightning.Config{Key: key, Params: l.params, DB: l.db, Log: l.log})
	if err != nil {
		key.Zero()
		l.log.Error("start the Lightning node", "err", err)
		l.mu.Lock()
		l.why = fmt.Sprintf("The Lightning node could not start: %v.", err)
		l.mu.Unlock()
		return false
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			l.log.Error("Lightning node", "err", err)
		}
	}()
	l.mu.Lock()
	l.node, l.key, l.done, l.why = n, key, done, ""
	l.mu.Unlock()
	l.log.Info("Lightning node started", "pubkey", n.Status().PubKey)
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
