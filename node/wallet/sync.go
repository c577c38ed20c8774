package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
)

// link is the backend being followed, with the generation of SetBackend that set it.
type link struct {
	chain.Backend
	gen uint64
}

// errResync ends one subscription so that following starts again at once from the
// wallet's stored tip.
var errResync = errors.New("wallet: resynchronising from the stored tip")

// SetBackend makes the wallet follow b from now on (nil detaches it). Run stops following
// the previous backend and starts on b from the wallet's stored tip; the previous backend
// is not closed (it belongs to the caller).
func (w *Wallet) SetBackend(b chain.Backend) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.backend = b
	w.gen++
	close(w.changed)
	w.changed = make(chan struct{})
	w.haveChain, w.evDown, w.opDown = false, "", ""
	w.status.Chain = chain.Status{}
	w.recomputeLocked()
}

// Sync reports the wallet's progress with its backend.
func (w *Wallet) Sync() SyncStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recomputeLocked()
	return w.status
}

// recomputeLocked derives the state from what is known; w.mu is held.
func (w *Wallet) recomputeLocked() {
	st := &w.status
	prev := st.State
	tip, ok, err := w.store.Tip()
	if err != nil {
		w.log.Warn("read wallet tip", "err", err)
	}
	st.Wallet = tip
	st.Err = ""
	switch {
	case w.backend == nil:
		st.State = SyncNoBackend
	case w.evDown != "" || w.opDown != "":
		st.State, st.Err = SyncDown, w.evDown
		if st.Err == "" {
			st.Err = w.opDown
		}
	case !w.haveChain:
		st.State = SyncStarting
	case st.Chain.Syncing:
		st.State = SyncSyncing
	case !ok && st.Chain.Best.Height <= max(w.birth-1, 0):
		st.State = SyncSynced // nothing to scan yet
	case !ok || tip.Hash != st.Chain.Best.Hash.String():
		st.State = SyncSyncing
	default:
		st.State = SyncSynced
	}
	st.Backend = st.Chain.Backend
	switch {
	case st.State == SyncSynced:
		st.Progress = 1
	case w.haveChain && st.Chain.Best.Height > 0:
		st.Progress = min(max(float64(tip.Height)/float64(st.Chain.Best.Height), 0), 1)
	default:
		st.Progress = 0
	}
	if st.State != prev {
		st.Since = w.now().UTC()
		w.log.Info("sync state", "state", st.State, "wallet", tip.Height, "chain", st.Chain.Best.Height, "err", st.Err)
	}
}

// update changes the status under the lock if b is still the wallet's backend.
func (w *Wallet) update(b link, fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen != b.gen {
		return
	}
	fn()
	w.recomputeLocked()
}

// Run follows the backend set with SetBackend (switching when it changes) until ctx ends
// or the wallet is closed; it returns nil then. Only one Run may be active.
func (w *Wallet) Run(ctx context.Context) error {
	for {
		w.mu.Lock()
		b, changed := link{w.backend, w.gen}, w.changed
		w.mu.Unlock()
		if b.Backend == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-w.closed:
				return nil
			case <-changed:
				continue
			}
		}
		fctx, cancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func() {
			select {
			case <-changed:
			case <-w.closed:
			case <-stop:
			}
			cancel()
		}()
		w.follow(fctx, b)
		close(stop)
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-w.closed:
			return nil
		default:
		}
	}
}

// follow follows b until ctx ends, starting again from the stored tip after each failure.
func (w *Wallet) follow(ctx context.Context, b link) {
	for ctx.Err() == nil {
		err := w.followOnce(ctx, b)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errResync) {
			w.log.Debug("resync", "err", err)
			continue
		}
		w.log.Warn("following the chain backend failed; retrying", "err", err, "in", w.cfg.RetryDelay)
		w.update(b, func() { w.opDown = err.Error() })
		t := time.NewTimer(w.cfg.RetryDelay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// followOnce subscribes from the wallet's tip and applies events until an error.
func (w *Wallet) followOnce(ctx context.Context, b link) error {
	// Extended keys only tell mainnet from the test networks, and so does this check.
	if p := b.Params(); p == nil || (p.Net == wire.MainNet) != w.cfg.Network.IsMainnet() {
		return fmt.Errorf("wallet: %w: the backend is not on a %s network", chain.ErrWrongNetwork, w.cfg.Network)
	}
	from, err := w.startPoint(ctx, b)
	if err != nil {
		return fmt.Errorf("wallet: start point: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := b.Subscribe(sctx, &from)
	if err != nil {
		return fmt.Errorf("wallet: subscribe: %w", err)
	}
	w.update(b, func() { w.evDown = "" })
	kick := make(chan struct{}, 1)
	kick <- struct{}{}
	go w.watchStatus(sctx, b, kick)
	if mw, ok := b.Backend.(chain.MempoolWatcher); ok {
		go w.watchMempool(sctx, mw)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				return errors.New("wallet: the backend ended the subscription")
			}
			if err := w.apply(ctx, b, ev); err != nil {
				return err
			}
			if len(events) == 0 {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	}
}

// startPoint is the wallet's tip, or the block before the birthday for a new wallet.
func (w *Wallet) startPoint(ctx context.Context, b link) (chain.BlockStamp, error) {
	tip, ok, err := w.store.Tip()
	if err != nil {
		return chain.BlockStamp{}, err
	}
	if ok {
		h, err := chainhash.NewHashFromStr(tip.Hash)
		if err != nil {
			return chain.BlockStamp{}, fmt.Errorf("stored tip: %w", err)
		}
		return chain.BlockStamp{Height: tip.Height, Hash: *h}, nil
	}
	birth, err := w.birthHeight(ctx, b)
	if err != nil {
		return chain.BlockStamp{}, err
	}
	height := max(birth-1, 0)
	hash, err := b.BlockHash(ctx, height)
	if err != nil {
		return chain.BlockStamp{}, fmt.Errorf("block at birthday %d: %w", birth, err)
	}
	return chain.BlockStamp{Height: height, Hash: hash}, nil
}

// birthdayMargin is how far before Config.BirthdayTime the scan starts: a block's time
// may trail the real time by hours (it only has to exceed the median of the previous 11).
const birthdayMargin = 24 * time.Hour

// birthHeight is the first height a wallet without a tip scans: Config.Birthday, or the
// first block of the best chain stamped at or after BirthdayTime - birthdayMargin
// (block times are not monotonic, so this is a binary search over an almost sorted
// sequence; the margin absorbs the disorder).
func (w *Wallet) birthHeight(ctx context.Context, b chain.Backend) (int32, error) {
	birth := w.cfg.Birthday
	if birth == 0 && !w.cfg.BirthdayTime.IsZero() {
		best, err := b.BestBlock(ctx)
		if err != nil {
			return 0, fmt.Errorf("find birthday block: %w", err)
		}
		since := w.cfg.BirthdayTime.Add(-w.margin)
		lo, hi := int32(0), best.Height+1 // the answer is in [lo, hi]
		for lo < hi {
			mid := lo + (hi-lo)/2
			h, err := b.HeaderByHeight(ctx, mid)
			if err != nil {
				return 0, fmt.Errorf("find birthday block: header %d: %w", mid, err)
			}
			if h.Timestamp.Before(since) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		birth = lo
	}
	w.mu.Lock()
	w.birth = birth
	w.mu.Unlock()
	return birth, nil
}

// apply applies one event of the subscription.
func (w *Wallet) apply(ctx context.Context, b link, ev chain.Event) error {
	switch ev.Kind {
	case chain.BlockConnected:
		if err := w.connect(ctx, b, ev); err != nil {
			return err
		}
		w.update(b, func() { w.evDown, w.opDown = "", "" })
	case chain.BlockDisconnected:
		tip, ok, err := w.store.Tip()
		switch {
		case err != nil:
			return err
		case !ok || tip.Height < ev.Block.Height:
			// Before the birthday or above what the wallet applied: nothing to undo.
		case tip.Hash == ev.Block.Hash.String():
			if err := w.store.DisconnectBlock(ev.Block.Hash); err != nil {
				return err
			}
			w.log.Info("block disconnected", "height", ev.Block.Height, "hash", ev.Block.Hash)
		default:
			return fmt.Errorf("%w: disconnected block %v is not the wallet's tip %d/%s", errResync, ev.Block, tip.Height, tip.Hash)
		}
		w.update(b, func() {})
	case chain.BackendDown:
		msg := "backend down"
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		w.update(b, func() { w.evDown = msg })
	case chain.BackendUp:
		w.update(b, func() { w.evDown = "" })
	case chain.EventLost:
		w.log.Warn("subscription lost; walking back", "err", ev.Err)
		if err := w.walkBack(ctx, b); err != nil {
			return fmt.Errorf("wallet: walk back after %v: %w", ev.Err, err)
		}
		return fmt.Errorf("%w: %v", errResync, ev.Err)
	}
	return nil
}

// connect matches a connected block's filter against the wallet's scripts, fetches the
// block when it matches, and applies it.
func (w *Wallet) connect(ctx context.Context, b link, ev chain.Event) error {
	hash := ev.Block.Hash
	tip, ok, err := w.store.Tip()
	if err != nil {
		return err
	}
	if ok && tip.Hash == hash.String() {
		return nil // already applied
	}
	if ok && (ev.Block.Height != tip.Height+1 || ev.Prev.String() != tip.Hash) {
		return fmt.Errorf("%w: block %v does not extend the wallet's tip %d/%s", errResync, ev.Block, tip.Height, tip.Hash)
	}
	f, err := b.FilterByHash(ctx, hash)
	if err != nil {
		return fmt.Errorf("wallet: filter of %v: %w", ev.Block, err)
	}
	match, err := chain.MatchFilter(f, hash, w.keys.watched())
	if err != nil {
		return err
	}
	var txs []*wire.MsgTx
	if match {
		blk, err := b.BlockByHash(ctx, hash)
		if err != nil {
			return fmt.Errorf("wallet: block %v: %w", ev.Block, err)
		}
		if got := blk.BlockHash(); got != hash {
			return fmt.Errorf("wallet: block %v: the backend returned block %v", ev.Block, got)
		}
		txs = blk.Transactions
	}
	blockTime := ev.Block.Time
	if blockTime.IsZero() {
		blockTime = w.now()
	}
	n, err := w.applyBlock(Block{Height: ev.Block.Height, Hash: hash, PrevHash: ev.Prev, Time: blockTime, Txs: txs})
	if err != nil {
		if errors.Is(err, ErrNotTip) {
			return fmt.Errorf("%w: %w", errResync, err)
		}
		return err
	}
	if n > 0 {
		w.log.Info("block confirmed wallet transactions", "height", ev.Block.Height, "hash", hash, "txs", n)
	}
	return nil
}

// applyBlock marks the outputs of a block's transactions used first (the windows may grow
// and take in more of the block's outputs), then applies the block with every script known.
func (w *Wallet) applyBlock(b Block) (int, error) {
	added, err := w.keys.markUsed(outputScripts(b.Txs...))
	if err != nil {
		return 0, err
	}
	w.store.AddScripts(added)
	return w.store.ConnectBlock(b)
}

// walkBack undoes the wallet's blocks until its tip is on the backend's best chain (or
// it has none left), so that following can start again from there.
func (w *Wallet) walkBack(ctx context.Context, b link) error {
	for {
		tip, ok, err := w.store.Tip()
		if err != nil || !ok {
			return err
		}
		hash, err := b.BlockHash(ctx, tip.Height)
		if err == nil && hash.String() == tip.Hash {
			return nil
		}
		if err != nil && !errors.Is(err, chain.ErrNotFound) {
			return err
		}
		h, err := chainhash.NewHashFromStr(tip.Hash)
		if err != nil {
			return err
		}
		if err := w.store.DisconnectBlock(*h); err != nil {
			return err
		}
		w.log.Info("walked back a block the backend does not have", "height", tip.Height, "hash", tip.Hash)
	}
}

// watchStatus refreshes the backend's status every StatusInterval and when kicked (after
// the events pending were applied), at most every 500 ms so that a scan is not slowed down.
func (w *Wallet) watchStatus(ctx context.Context, b link, kick <-chan struct{}) {
	t := time.NewTicker(w.cfg.StatusInterval)
	defer t.Stop()
	minGap := min(w.cfg.StatusInterval, 500*time.Millisecond)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := b.Status(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.update(b, func() {
			if err != nil {
				w.opDown = err.Error()
				return
			}
			w.haveChain, w.opDown = true, ""
			w.status.Chain = st
		})
	}
}

// watchMempool records the backend's unconfirmed transactions that concern the wallet.
func (w *Wallet) watchMempool(ctx context.Context, mw chain.MempoolWatcher) {
	txs, err := mw.WatchMempool(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("watch mempool", "err", err)
		}
		return
	}
	for tx := range txs {
		if _, err := w.recordTx(tx); err != nil {
			w.log.Warn("record mempool transaction", "txid", tx.TxHash(), "err", err)
		}
	}
}

// recordTx records an unconfirmed transaction (from the mempool or just broadcast),
// marking the addresses it pays as used.
func (w *Wallet) recordTx(tx *wire.MsgTx) (bool, error) {
	added, err := w.keys.markUsed(outputScripts(tx))
	if err != nil {
		return false, err
	}
	w.store.AddScripts(added)
	return w.store.AddMempoolTx(tx, w.now())
}
