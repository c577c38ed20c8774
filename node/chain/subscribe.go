package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// chainReader is what following the best chain needs from a backend.
type chainReader interface {
	BestBlock(ctx context.Context) (BlockStamp, error)
	BlockHash(ctx context.Context, height int32) (chainhash.Hash, error)
	HeaderByHash(ctx context.Context, hash chainhash.Hash) (Header, error)
	HeaderByHeight(ctx context.Context, height int32) (Header, error)
}

// errLost ends a subscription: the follower's tip is unknown to the backend.
var errLost = errors.New("cannot follow the chain")

// follower turns successive best blocks into an ordered stream of disconnected and
// connected blocks, by polling.
type follower struct {
	src      chainReader
	out      chan<- Event
	interval time.Duration
	log      *slog.Logger

	from *BlockStamp // the consumer's last block, until the tip is known
	tip  *Header     // the last block reported (or the starting point)
	down bool
}

func (f *follower) run(ctx context.Context, closed <-chan struct{}) {
	for {
		err := f.step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errLost):
			f.send(ctx, Event{Kind: EventLost, Err: err})
			return
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			if !f.down {
				f.down = true
				f.log.Warn("chain backend unavailable", "err", err)
				if !f.send(ctx, Event{Kind: BackendDown, Err: err}) {
					return
				}
			}
		case f.down:
			f.down = false
			f.log.Info("chain backend available again")
			if !f.send(ctx, Event{Kind: BackendUp}) {
				return
			}
		}
		t := time.NewTimer(f.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-closed:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (f *follower) send(ctx context.Context, ev Event) bool {
	select {
	case f.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// step brings the consumer from f.tip to the backend's best block. A reorganisation that
// happens during the walk is picked up by walking again at once.
func (f *follower) step(ctx context.Context) error {
	if f.tip == nil {
		if f.from == nil {
			best, err := f.src.BestBlock(ctx)
			if err != nil {
				return err
			}
			f.from = &best
		}
		h, err := f.src.HeaderByHash(ctx, f.from.Hash)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: block %v unknown to the backend: %w", errLost, f.from, err)
		}
		if err != nil {
			return err
		}
		f.tip = &h
	}
	for range 10 {
		best, err := f.src.BestBlock(ctx)
		if err != nil {
			return err
		}
		if best.Hash == f.tip.Hash {
			return nil
		}
		if err := f.rewind(ctx, best); err != nil {
			return err
		}
		done, err := f.advance(ctx, best)
		if err != nil || done {
			return err
		}
	}
	return nil // the chain keeps moving under us; carry on at the next poll
}

// rewind disconnects the tip until it is on the best chain.
func (f *follower) rewind(ctx context.Context, best BlockStamp) error {
	for {
		if f.tip.Height <= best.Height {
			hash, err := f.src.BlockHash(ctx, f.tip.Height)
			if err == nil && hash == f.tip.Hash {
				return nil
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if f.tip.Height == 0 {
			return fmt.Errorf("%w: the backend's chain does not contain genesis block %v", errLost, f.tip.Hash)
		}
		parent, err := f.src.HeaderByHash(ctx, f.tip.PrevBlock)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: parent %v of block %v unknown to the backend", errLost, f.tip.PrevBlock, f.tip.Hash)
		}
		if err != nil {
			return err
		}
		if !f.send(ctx, Event{Kind: BlockDisconnected, Block: f.tip.Stamp(), Prev: f.tip.PrevBlock}) {
			return ctx.Err()
		}
		f.tip = &parent
	}
}

// advance connects the best chain's blocks above the tip up to best. It reports false when
// the chain changed during the walk.
func (f *follower) advance(ctx context.Context, best BlockStamp) (bool, error) {
	for h := f.tip.Height + 1; h <= best.Height; h++ {
		next, err := f.src.HeaderByHeight(ctx, h)
		if errors.Is(err, ErrNotFound) {
			return false, nil // the chain got shorter: rewind again
		}
		if err != nil {
			return false, err
		}
		if next.PrevBlock != f.tip.Hash {
			return false, nil
		}
		if !f.send(ctx, Event{Kind: BlockConnected, Block: next.Stamp(), Prev: next.PrevBlock}) {
			return false, ctx.Err()
		}
		f.tip = &next
	}
	return f.tip.Hash == best.Hash, nil
}
