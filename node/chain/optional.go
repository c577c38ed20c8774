package chain

import (
	"context"

	"github.com/btcsuite/btcd/wire"
)

// Optional capabilities a Backend may implement; users test for them with a type assertion.

// Peer is one peer of a backend that keeps its own (the light client), for the dashboard.
type Peer struct {
	Addr    string `json:"addr"`
	Agent   string `json:"agent"`
	Height  int32  `json:"height"`
	Score   int    `json:"score"` // misbehaviour score
	Inbound bool   `json:"inbound"`
}

// PeerReporter is implemented by backends with their own peers.
type PeerReporter interface {
	Peers() []Peer
}

// MempoolWatcher is implemented by backends that can report unconfirmed transactions.
type MempoolWatcher interface {
	// WatchMempool delivers transactions as they enter the node's mempool (or are announced
	// by peers), each once, until ctx ends; then the channel is closed. Delivery is best
	// effort: a transaction missed while the backend was down is found when it confirms.
	WatchMempool(ctx context.Context) (<-chan *wire.MsgTx, error)
}

// MempoolFeeEstimator is implemented by backends that can see their node's mempool with fees.
type MempoolFeeEstimator interface {
	// MempoolFeeRate is the fee rate needed to be among the first target blocks' worth
	// (target × 1,000,000 vB) of the mempool ordered by fee rate, at least the minimum
	// relay fee; ErrFeeUnavailable when the mempool cannot be read.
	MempoolFeeRate(ctx context.Context, target uint32) (FeeRate, error)
}

// MempoolStats summarises a node's mempool: its size and the distribution of its
// transactions' own fee rates (each transaction counted once), in sat/vB.
type MempoolStats struct {
	Txs                              int
	VSize                            int64 // total virtual size, vbytes
	Median, Mean, P10, P90, Max, Std float64
}

// MempoolStatsReporter is implemented by backends that can read their node's mempool with
// fees (the learned fee model's input).
type MempoolStatsReporter interface {
	// MempoolStats reads the mempool; ErrFeeUnavailable when it cannot be read.
	MempoolStats(ctx context.Context) (MempoolStats, error)
}

// UTXOChecker is implemented by backends that can look an output up in their node's UTXO
// set (a full node's gettxout): the Lightning gossip uses it to refuse channels whose
// funding output is spent.
type UTXOChecker interface {
	// Unspent reports whether op is an unspent output of a confirmed transaction.
	Unspent(ctx context.Context, op wire.OutPoint) (bool, error)
}
