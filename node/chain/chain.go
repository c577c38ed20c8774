package chain

import (
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Backend is the box's source of chain data: a full node over RPC (RPC) or the built-in P2P
// light client. All methods are safe for concurrent use, honour ctx, and fail with errors
// that match (errors.Is) ErrNodeDown, ErrAuth, ErrTLS, ErrWrongNetwork, ErrSyncing,
// ErrNotFound, ErrUnsupported, ErrRejected or ErrClosed when one of those is the cause.
//
// Before it serves data a backend checks that it talks to Params' network (the genesis
// hash), and it checks again after it lost contact with the node.
type Backend interface {
	// Params are the chain parameters the backend was configured for.
	Params() *chaincfg.Params

	// Ready reports whether the backend can serve the wallet now: nil, or an error matching
	// ErrNodeDown, ErrAuth, ErrTLS, ErrWrongNetwork or ErrSyncing.
	Ready(ctx context.Context) error
	// Status describes the backend's view of the chain and its progress; it succeeds while
	// the node is still syncing (Status.Syncing).
	Status(ctx context.Context) (Status, error)

	// BestBlock is the tip of the best chain.
	BestBlock(ctx context.Context) (BlockStamp, error)
	// BlockHash is the hash of the best chain's block at height (ErrNotFound above the tip).
	BlockHash(ctx context.Context, height int32) (chainhash.Hash, error)
	// HeaderByHash returns a block header, also of a block outside the best chain when the
	// backend still knows it (this is how reorganisations are walked back).
	HeaderByHash(ctx context.Context, hash chainhash.Hash) (Header, error)
	// HeaderByHeight returns the header of the best chain's block at height.
	HeaderByHeight(ctx context.Context, height int32) (Header, error)
	// BlockByHash returns a full block.
	BlockByHash(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error)

	// FilterByHash returns the block's BIP158 basic compact filter.
	FilterByHash(ctx context.Context, hash chainhash.Hash) (*gcs.Filter, error)
	// FilterHeaderByHash returns the block's BIP157 basic filter header.
	FilterHeaderByHash(ctx context.Context, hash chainhash.Hash) (chainhash.Hash, error)

	// Broadcast hands a signed transaction to the network and returns its txid. A
	// transaction the node already has in its mempool counts as broadcast; one it refuses
	// fails with a *RejectError (ErrRejected, and ErrAlreadyInChain for a confirmed one).
	Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error)
	// EstimateFee is the fee rate expected to confirm within target blocks, or
	// ErrFeeUnavailable when the backend has not seen enough to estimate.
	EstimateFee(ctx context.Context, target uint32) (FeeRate, error)

	// Subscribe follows the best chain from the block from (the caller's last known tip;
	// nil means the current tip) and delivers, in order, the blocks disconnected by
	// reorganisations and the blocks connected, so that a consumer that applies the events
	// stays on the best chain. Loss and recovery of the backend are reported as events too;
	// the channel is closed when ctx ends, or after an EventLost.
	Subscribe(ctx context.Context, from *BlockStamp) (<-chan Event, error)

	// Close releases the backend's connections; later calls fail with ErrClosed.
	Close() error
}

// BlockStamp identifies a block of the best chain.
type BlockStamp struct {
	Height int32
	Hash   chainhash.Hash
	Time   time.Time
}

func (b BlockStamp) String() string { return fmt.Sprintf("%d/%v", b.Height, b.Hash) }

// Header is a block header with its hash and height.
type Header struct {
	wire.BlockHeader
	Hash   chainhash.Hash
	Height int32
}

// Stamp is the header's BlockStamp.
func (h Header) Stamp() BlockStamp {
	return BlockStamp{Height: h.Height, Hash: h.Hash, Time: h.Timestamp}
}

// Status is a backend's view of the chain and of its own progress.
type Status struct {
	// Backend names the implementation, for example "btcd 0.26.2 (rpc)".
	Backend string
	// Best is the tip of the validated chain; Headers is the height of the best known header.
	Best    BlockStamp
	Headers int32
	// Peers is the number of peers of the node; PeerHeight the median height they report.
	Peers      int
	PeerHeight int32
	// Progress is an estimate of the share of the chain validated, from 0 to 1.
	Progress float64
	// Syncing is set while the node catches up; Reason says why it is considered syncing.
	Syncing bool
	Reason  string
}

// EventKind says what an Event reports.
type EventKind int

const (
	// BlockConnected: Block joined the best chain on top of Prev.
	BlockConnected EventKind = iota + 1
	// BlockDisconnected: Block (whose parent is Prev) left the best chain in a reorganisation.
	BlockDisconnected
	// BackendDown: the backend stopped answering (Err says why); following continues.
	BackendDown
	// BackendUp: the backend answers again after a BackendDown.
	BackendUp
	// EventLost: the subscription cannot continue (Err says why, for example the starting
	// block is unknown to the node); the channel is closed after it and the consumer must
	// resynchronise, for example from an earlier block.
	EventLost
)

func (k EventKind) String() string {
	switch k {
	case BlockConnected:
		return "connected"
	case BlockDisconnected:
		return "disconnected"
	case BackendDown:
		return "backend-down"
	case BackendUp:
		return "backend-up"
	case EventLost:
		return "lost"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change reported by Subscribe.
type Event struct {
	Kind  EventKind
	Block BlockStamp     // BlockConnected, BlockDisconnected
	Prev  chainhash.Hash // parent of Block
	Err   error          // BackendDown, EventLost
}

func (e Event) String() string {
	switch e.Kind {
	case BlockConnected, BlockDisconnected:
		return fmt.Sprintf("%v %v", e.Kind, e.Block)
	case BackendDown, EventLost:
		return fmt.Sprintf("%v: %v", e.Kind, e.Err)
	}
	return e.Kind.String()
}

// FeeRate is a fee rate in satoshis per 1000 virtual bytes (sat/kvB), the unit of Bitcoin
// Core's and btcd's relay policy.
type FeeRate int64

const (
	// MinRelayFeeRate is the default minimum relay fee of Bitcoin Core and btcd (1 sat/vB).
	MinRelayFeeRate FeeRate = 1000
	// MaxSaneFeeRate bounds estimates accepted from a backend (10,000 sat/vB); above it an
	// estimate is treated as broken rather than used.
	MaxSaneFeeRate FeeRate = 10_000_000
)

// FeeRateFromBTCPerKvB converts the BTC/kvB of bitcoind's and btcd's RPC answers.
func FeeRateFromBTCPerKvB(btc float64) (FeeRate, error) {
	amt, err := btcutil.NewAmount(btc)
	if err != nil {
		return 0, fmt.Errorf("fee rate %v BTC/kvB: %w", btc, err)
	}
	return FeeRate(amt), nil
}

// SatPerVByte is the rate in sat/vB.
func (r FeeRate) SatPerVByte() float64 { return float64(r) / 1000 }

// Fee is the fee for vsize virtual bytes at this rate, rounded up.
func (r FeeRate) Fee(vsize int64) btcutil.Amount {
	return btcutil.Amount((int64(r)*vsize + 999) / 1000)
}

func (r FeeRate) String() string { return fmt.Sprintf("%.3f sat/vB", r.SatPerVByte()) }
