package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

var (
	_ MempoolWatcher       = (*RPC)(nil)
	_ MempoolFeeEstimator  = (*RPC)(nil)
	_ MempoolStatsReporter = (*RPC)(nil)
)

const (
	// BlockVSize is the virtual size of a full block (4,000,000 weight units), the depth
	// of the mempool that one block of target in MempoolFeeRate stands for.
	BlockVSize = 1_000_000

	// maxFetchPerPoll bounds the getrawtransaction calls of one poll of WatchMempool, so
	// that a large mempool found at the start is delivered over several polls instead of
	// holding up the newest transactions for minutes.
	maxFetchPerPoll = 500

	// watchBuffer is the capacity of the channel WatchMempool returns.
	watchBuffer = 64
)

// WatchMempool implements MempoolWatcher by polling getrawmempool every
// Config.PollInterval and fetching each new txid with getrawtransaction. Transactions
// already in the mempool when the watch starts are delivered too (at most 500 per poll), so
// a restarted wallet sees its unconfirmed payments. A txid is remembered while it stays in
// the mempool and forgotten once it leaves, so memory is bounded by the node's mempool, and
// a transaction is delivered again only if it leaves and re-enters the mempool (for example
// after a reorganisation). The channel is closed when ctx ends or the backend is closed.
func (r *RPC) WatchMempool(ctx context.Context) (<-chan *wire.MsgTx, error) {
	select {
	case <-r.closedCh:
		return nil, &Error{Op: "watchmempool", Host: r.cfg.Host, Kind: ErrClosed}
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: "watchmempool", Host: r.cfg.Host, Err: err}
	}
	ch := make(chan *wire.MsgTx, watchBuffer)
	p := &mempoolPoller{src: rpcMempool{r}, out: ch, seen: map[chainhash.Hash]struct{}{},
		maxFetch: maxFetchPerPoll, log: r.log}
	go func() {
		defer close(ch)
		p.run(ctx, r.closedCh, r.cfg.PollInterval)
	}()
	return ch, nil
}

// mempoolSource is what the poller needs from a node.
type mempoolSource interface {
	mempoolTxids(ctx context.Context) ([]chainhash.Hash, error)
	// mempoolTx returns the transaction, or ErrNotFound when it left the mempool.
	mempoolTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
}

type rpcMempool struct{ r *RPC }

func (s rpcMempool) mempoolTxids(ctx context.Context) ([]chainhash.Hash, error) {
	var ids []*chainhash.Hash
	err := s.r.read(ctx, "getrawmempool", func(c *rpcclient.Client) (err error) {
		ids, err = c.GetRawMempool()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]chainhash.Hash, 0, len(ids))
	for _, id := range ids {
		if id != nil {
			out = append(out, *id)
		}
	}
	return out, nil
}

func (s rpcMempool) mempoolTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	var tx *btcutil.Tx
	err := s.r.read(ctx, "getrawtransaction", func(c *rpcclient.Client) (err error) {
		tx, err = c.GetRawTransaction(&txid)
		return err
	})
	var rpcErr *btcjson.RPCError
	if errors.As(err, &rpcErr) {
		// btcd: "No information available about transaction", bitcoind: "No such mempool
		// or blockchain transaction" (both -5): it left the mempool since getrawmempool.
		return nil, &Error{Op: "getrawtransaction", Host: s.r.cfg.Host, Kind: ErrNotFound, Err: err}
	}
	if err != nil {
		return nil, err
	}
	msg := tx.MsgTx()
	if got := msg.TxHash(); got != txid {
		return nil, &Error{Op: "getrawtransaction", Host: s.r.cfg.Host, Err: fmt.Errorf("asked for %v, got %v", txid, got)}
	}
	return msg, nil
}

// mempoolPoller turns successive mempool snapshots into a stream of new transactions.
type mempoolPoller struct {
	src      mempoolSource
	out      chan<- *wire.MsgTx
	seen     map[chainhash.Hash]struct{} // delivered (or vanished) txids still in the mempool
	maxFetch int
	log      *slog.Logger
	down     bool
}

func (p *mempoolPoller) run(ctx context.Context, closed <-chan struct{}, interval time.Duration) {
	for {
		err := p.poll(ctx, closed)
		switch {
		case ctx.Err() != nil, errors.Is(err, ErrClosed):
			return
		case err != nil && !p.down:
			p.down = true
			p.log.Warn("mempool watch: cannot read the mempool", "err", err)
		case err == nil && p.down:
			p.down = false
			p.log.Info("mempool watch: reading the mempool again")
		}
		t := time.NewTimer(interval)
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

// poll reads the mempool once, delivers up to maxFetch new transactions and forgets the
// txids that left the mempool.
func (p *mempoolPoller) poll(ctx context.Context, closed <-chan struct{}) error {
	ids, err := p.src.mempoolTxids(ctx)
	if err != nil {
		return err
	}
	current := make(map[chainhash.Hash]struct{}, len(ids))
	for _, id := range ids {
		current[id] = struct{}{}
	}
	for id := range p.seen {
		if _, ok := current[id]; !ok {
			delete(p.seen, id)
		}
	}
	fetched := 0
	for _, id := range ids {
		if _, ok := p.seen[id]; ok {
			continue
		}
		if fetched >= p.maxFetch {
			break // the rest at the next poll
		}
		fetched++
		tx, err := p.src.mempoolTx(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			p.seen[id] = struct{}{} // mined or evicted meanwhile; forgotten at the next poll
			continue
		case err != nil:
			return err
		}
		select {
		case p.out <- tx:
			p.seen[id] = struct{}{}
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return ErrClosed
		}
	}
	return nil
}

// MempoolFeeRate implements MempoolFeeEstimator from getrawmempool (verbose): the
// transactions are ordered by their own fee rate, highest first, and the rate of the one at
// depth target × BlockVSize is returned, at least MinRelayFeeRate (which is also the answer
// when the mempool is shallower than that). Each transaction is taken alone: a child that
// pays for its parent (CPFP) counts at its own rate.
//
// btcd reports "fee" (BTC) with "size" and "vsize"; bitcoind reports "fees": {"base"}
// with "vsize" (and, before version 23, also "fee"; before 0.19 "size" was the virtual
// size). Both forms are read: fees.base before fee, then vsize, weight/4, size.
func (r *RPC) MempoolFeeRate(ctx context.Context, target uint32) (FeeRate, error) {
	const op = "getrawmempool"
	target = max(1, min(target, 1008))
	var raw json.RawMessage
	err := r.read(ctx, op, func(c *rpcclient.Client) (err error) {
		raw, err = c.RawRequest(op, []json.RawMessage{json.RawMessage("true")})
		return err
	})
	if err != nil {
		return 0, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable, Err: err}
	}
	entries, err := parseVerboseMempool(raw)
	if err != nil {
		return 0, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable, Err: err}
	}
	rate := rateAtDepth(entries, int64(target)*r.blockVSize)
	r.log.Debug("mempool fee rate", "target", target, "txs", len(entries), "rate", rate)
	return rate, nil
}

// MempoolStats implements MempoolStatsReporter from getrawmempool (verbose), read as
// MempoolFeeRate reads it.
func (r *RPC) MempoolStats(ctx context.Context) (MempoolStats, error) {
	const op = "getrawmempool"
	var raw json.RawMessage
	err := r.read(ctx, op, func(c *rpcclient.Client) (err error) {
		raw, err = c.RawRequest(op, []json.RawMessage{json.RawMessage("true")})
		return err
	})
	if err != nil {
		return MempoolStats{}, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable, Err: err}
	}
	entries, err := parseVerboseMempool(raw)
	if err != nil {
		return MempoolStats{}, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable, Err: err}
	}
	return mempoolStats(entries), nil
}

// mempoolStats summarises entries; percentiles are the nearest-rank ones.
func mempoolStats(entries []mempoolEntry) MempoolStats {
	st := MempoolStats{Txs: len(entries)}
	if len(entries) == 0 {
		return st
	}
	rates := make([]float64, len(entries))
	var sum float64
	for i, e := range entries {
		st.VSize += e.vsize
		rates[i] = float64(e.rate) / 1000
		sum += rates[i]
	}
	slices.Sort(rates)
	n := len(rates)
	pct := func(p float64) float64 { return rates[min(n-1, int(p*float64(n)))] }
	st.Median, st.P10, st.P90, st.Max = pct(0.5), pct(0.1), pct(0.9), rates[n-1]
	st.Mean = sum / float64(n)
	var ss float64
	for _, r := range rates {
		ss += (r - st.Mean) * (r - st.Mean)
	}
	st.Std = math.Sqrt(ss / float64(n))
	return st
}

// mempoolEntry is one mempool transaction's fee rate and virtual size.
type mempoolEntry struct {
	rate  FeeRate
	vsize int64
}

// verboseEntry is one value of getrawmempool's verbose answer, in both dialects.
type verboseEntry struct {
	Fee  *float64 `json:"fee"`
	Fees *struct {
		Base *float64 `json:"base"`
	} `json:"fees"`
	VSize  *int64 `json:"vsize"`
	Weight *int64 `json:"weight"`
	Size   *int64 `json:"size"`
}

// parseVerboseMempool decodes getrawmempool's verbose answer (txid → entry) into fee
// rates, streaming so that only 16 bytes per transaction stay in memory.
func parseVerboseMempool(raw []byte) ([]mempoolEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("verbose mempool: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("verbose mempool: want an object, got %v", tok)
	}
	var out []mempoolEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("verbose mempool: %w", err)
		}
		txid, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("verbose mempool: key %v is not a txid", tok)
		}
		var v verboseEntry
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("verbose mempool: entry %.64s: %w", txid, err)
		}
		e, err := v.entry()
		if err != nil {
			return nil, fmt.Errorf("verbose mempool: entry %.64s: %w", txid, err)
		}
		out = append(out, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("verbose mempool: %w", err)
	}
	return out, nil
}

func (v verboseEntry) entry() (mempoolEntry, error) {
	var btc float64
	switch {
	case v.Fees != nil && v.Fees.Base != nil:
		btc = *v.Fees.Base
	case v.Fee != nil:
		btc = *v.Fee
	default:
		return mempoolEntry{}, errors.New("no fee")
	}
	var vsize int64
	switch {
	case v.VSize != nil:
		vsize = *v.VSize
	case v.Weight != nil:
		vsize = (*v.Weight + 3) / 4
	case v.Size != nil:
		vsize = *v.Size
	default:
		return mempoolEntry{}, errors.New("no size")
	}
	if vsize <= 0 || vsize > 4*BlockVSize {
		return mempoolEntry{}, fmt.Errorf("implausible virtual size %d", vsize)
	}
	fee, err := btcutil.NewAmount(btc)
	if err != nil || fee < 0 {
		return mempoolEntry{}, fmt.Errorf("fee %v: bad amount", btc)
	}
	// fee ≤ 21e14 sat, so fee × 1000 fits in an int64.
	rate := int64(fee) * 1000 / vsize
	return mempoolEntry{rate: FeeRate(rate), vsize: vsize}, nil
}

// rateAtDepth orders entries by fee rate (highest first) and returns the rate of the entry
// that reaches depth virtual bytes, at least MinRelayFeeRate; MinRelayFeeRate when the
// entries do not reach depth.
func rateAtDepth(entries []mempoolEntry, depth int64) FeeRate {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b mempoolEntry) int {
		switch {
		case a.rate > b.rate:
			return -1
		case a.rate < b.rate:
			return 1
		}
		return 0
	})
	var cum int64
	for _, e := range sorted {
		cum += e.vsize
		if cum >= depth {
			return max(e.rate, MinRelayFeeRate)
		}
	}
	return MinRelayFeeRate
}
