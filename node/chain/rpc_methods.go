package chain

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// ready checks, once per contact with the node, that the node is on the configured network.
func (r *RPC) ready(ctx context.Context) error {
	if r.verified.Load() {
		return nil
	}
	var genesis *chainhash.Hash
	err := r.call(ctx, "getblockhash", true, func(c *rpcclient.Client) (err error) {
		genesis, err = c.GetBlockHash(0)
		return err
	})
	if err != nil {
		return err
	}
	if !genesis.IsEqual(r.cfg.Params.GenesisHash) {
		return &Error{Op: "network check", Host: r.cfg.Host, Kind: ErrWrongNetwork,
			Err: fmt.Errorf("the node's genesis block is %v, %s's is %v", genesis, r.cfg.Params.Name, r.cfg.Params.GenesisHash)}
	}
	r.verified.Store(true)
	return nil
}

// read runs an idempotent call after the network check.
func (r *RPC) read(ctx context.Context, op string, fn func(*rpcclient.Client) error) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	return r.call(ctx, op, true, fn)
}

// Ready implements Backend.
func (r *RPC) Ready(ctx context.Context) error {
	r.verified.Store(false) // an explicit check always asks the node
	st, err := r.Status(ctx)
	if err != nil {
		return err
	}
	if st.Syncing {
		return &Error{Op: "ready", Host: r.cfg.Host, Kind: ErrSyncing,
			Err: fmt.Errorf("%s (%d of %d blocks)", st.Reason, st.Best.Height, max(st.Headers, st.PeerHeight))}
	}
	return nil
}

// Status implements Backend.
func (r *RPC) Status(ctx context.Context) (Status, error) {
	var (
		info    *btcjson.GetBlockChainInfoResult
		peers   []btcjson.GetPeerInfoResult
		version rpcclient.BackendVersion
	)
	err := r.read(ctx, "getblockchaininfo", func(c *rpcclient.Client) (err error) {
		info, err = c.GetBlockChainInfo()
		return err
	})
	if err != nil {
		return Status{}, err
	}
	if err := r.call(ctx, "getpeerinfo", true, func(c *rpcclient.Client) (err error) {
		peers, err = c.GetPeerInfo()
		return err
	}); err != nil {
		return Status{}, err
	}
	if err := r.call(ctx, "backendversion", true, func(c *rpcclient.Client) (err error) {
		version, err = c.BackendVersion()
		return err
	}); err != nil {
		return Status{}, err
	}
	best, err := chainhash.NewHashFromStr(info.BestBlockHash)
	if err != nil {
		return Status{}, &Error{Op: "getblockchaininfo", Host: r.cfg.Host, Err: fmt.Errorf("best block hash: %w", err)}
	}
	st := syncStatus(info, peers, r.cfg.SyncSlack)
	st.Best.Hash = *best
	st.Backend = backendName(version)
	return st, nil
}

func backendName(v rpcclient.BackendVersion) string {
	switch v := v.(type) {
	case rpcclient.BtcdVersion:
		return fmt.Sprintf("btcd (%v) over rpc", v)
	case *rpcclient.BtcdVersion:
		return fmt.Sprintf("btcd (%v) over rpc", *v)
	case rpcclient.BitcoindVersion:
		return fmt.Sprintf("bitcoind (%v) over rpc", v)
	case *rpcclient.BitcoindVersion:
		return fmt.Sprintf("bitcoind (%v) over rpc", *v)
	}
	return fmt.Sprintf("%v over rpc", v)
}

// BestBlock implements Backend.
func (r *RPC) BestBlock(ctx context.Context) (BlockStamp, error) {
	var hash *chainhash.Hash
	if err := r.read(ctx, "getbestblockhash", func(c *rpcclient.Client) (err error) {
		hash, err = c.GetBestBlockHash()
		return err
	}); err != nil {
		return BlockStamp{}, err
	}
	h, err := r.HeaderByHash(ctx, *hash)
	if err != nil {
		return BlockStamp{}, err
	}
	return h.Stamp(), nil
}

// BlockHash implements Backend.
func (r *RPC) BlockHash(ctx context.Context, height int32) (chainhash.Hash, error) {
	if height < 0 {
		return chainhash.Hash{}, &Error{Op: "getblockhash", Kind: ErrNotFound, Err: fmt.Errorf("negative height %d", height)}
	}
	var hash *chainhash.Hash
	if err := r.read(ctx, "getblockhash", func(c *rpcclient.Client) (err error) {
		hash, err = c.GetBlockHash(int64(height))
		return err
	}); err != nil {
		return chainhash.Hash{}, err
	}
	return *hash, nil
}

// maxStaleDepth bounds the walk that finds the height of a block outside btcd's best chain.
const maxStaleDepth = 1000

// HeaderByHash implements Backend.
func (r *RPC) HeaderByHash(ctx context.Context, hash chainhash.Hash) (Header, error) {
	return r.headerByHash(ctx, hash, 0)
}

func (r *RPC) headerByHash(ctx context.Context, hash chainhash.Hash, depth int) (Header, error) {
	var res *btcjson.GetBlockHeaderVerboseResult
	err := r.read(ctx, "getblockheader", func(c *rpcclient.Client) (err error) {
		res, err = c.GetBlockHeaderVerbose(&hash)
		return err
	})
	var rpcErr *btcjson.RPCError
	if errors.As(err, &rpcErr) && strings.Contains(rpcErr.Message, "not in the main chain") {
		// btcd answers verbose queries for best-chain blocks only; bitcoind for all.
		return r.staleHeader(ctx, hash, depth)
	}
	if err != nil {
		return Header{}, err
	}
	h, err := headerFromVerbose(res)
	if err == nil && h.Hash != hash {
		err = fmt.Errorf("asked for header %v, got %v", hash, h.Hash)
	}
	if err != nil {
		return Header{}, &Error{Op: "getblockheader", Host: r.cfg.Host, Err: err}
	}
	return h, nil
}

// staleHeader returns the header of a block btcd knows outside its best chain, with the
// height found from its ancestors.
func (r *RPC) staleHeader(ctx context.Context, hash chainhash.Hash, depth int) (Header, error) {
	if depth >= maxStaleDepth {
		return Header{}, &Error{Op: "getblockheader", Host: r.cfg.Host, Kind: ErrNotFound,
			Err: fmt.Errorf("block %v is more than %d blocks off the best chain", hash, maxStaleDepth)}
	}
	var raw *wire.BlockHeader
	if err := r.read(ctx, "getblockheader", func(c *rpcclient.Client) (err error) {
		raw, err = c.GetBlockHeader(&hash)
		return err
	}); err != nil {
		return Header{}, err
	}
	if got := raw.BlockHash(); got != hash {
		return Header{}, &Error{Op: "getblockheader", Host: r.cfg.Host, Err: fmt.Errorf("asked for header %v, got %v", hash, got)}
	}
	parent, err := r.headerByHash(ctx, raw.PrevBlock, depth+1)
	if err != nil {
		return Header{}, err
	}
	return Header{BlockHeader: *raw, Hash: hash, Height: parent.Height + 1}, nil
}

// HeaderByHeight implements Backend.
func (r *RPC) HeaderByHeight(ctx context.Context, height int32) (Header, error) {
	hash, err := r.BlockHash(ctx, height)
	if err != nil {
		return Header{}, err
	}
	return r.HeaderByHash(ctx, hash)
}

// BlockByHash implements Backend.
func (r *RPC) BlockByHash(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error) {
	var block *wire.MsgBlock
	if err := r.read(ctx, "getblock", func(c *rpcclient.Client) (err error) {
		block, err = c.GetBlock(&hash)
		return err
	}); err != nil {
		return nil, err
	}
	if got := block.BlockHash(); got != hash {
		return nil, &Error{Op: "getblock", Host: r.cfg.Host, Err: fmt.Errorf("asked for block %v, got %v", hash, got)}
	}
	return block, nil
}

// FilterByHash implements Backend: getcfilter on btcd, getblockfilter on bitcoind
// (which needs -blockfilterindex).
func (r *RPC) FilterByHash(ctx context.Context, hash chainhash.Hash) (*gcs.Filter, error) {
	raw, _, err := r.filter(ctx, hash, false)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 { // btcd's answer for a block it does not know
		return nil, &Error{Op: "getcfilter", Host: r.cfg.Host, Kind: ErrNotFound, Err: fmt.Errorf("no filter for block %v", hash)}
	}
	f, err := decodeFilter(raw)
	if err != nil {
		return nil, &Error{Op: "getcfilter", Host: r.cfg.Host, Err: err}
	}
	return f, nil
}

// FilterHeaderByHash implements Backend.
func (r *RPC) FilterHeaderByHash(ctx context.Context, hash chainhash.Hash) (chainhash.Hash, error) {
	_, header, err := r.filter(ctx, hash, true)
	if err == nil && header == (chainhash.Hash{}) { // btcd's answer for a block it does not know
		err = &Error{Op: "getcfilterheader", Host: r.cfg.Host, Kind: ErrNotFound, Err: fmt.Errorf("no filter header for block %v", hash)}
	}
	return header, err
}

// filter fetches a block's basic filter or its header, finding out on first use whether
// the node speaks btcd's or bitcoind's dialect.
func (r *RPC) filter(ctx context.Context, hash chainhash.Hash, header bool) ([]byte, chainhash.Hash, error) {
	if r.kind.Load() != backendBitcoind {
		var (
			data []byte
			fh   chainhash.Hash
		)
		op := "getcfilter"
		if header {
			op = "getcfilterheader"
		}
		err := r.read(ctx, op, func(c *rpcclient.Client) error {
			if header {
				m, err := c.GetCFilterHeader(&hash, wire.GCSFilterRegular)
				if err == nil {
					fh = m.PrevFilterHeader
				}
				return err
			}
			m, err := c.GetCFilter(&hash, wire.GCSFilterRegular)
			if err == nil {
				data = m.Data
			}
			return err
		})
		if err == nil {
			r.kind.Store(backendBtcd)
			return data, fh, nil
		}
		if !isMethodNotFound(err) {
			return nil, chainhash.Hash{}, err
		}
		r.kind.Store(backendBitcoind)
	}
	var res *btcjson.GetBlockFilterResult
	if err := r.read(ctx, "getblockfilter", func(c *rpcclient.Client) (err error) {
		res, err = c.GetBlockFilter(hash, nil)
		return err
	}); err != nil {
		return nil, chainhash.Hash{}, err
	}
	data, fh, err := parseBlockFilterResult(res.Filter, res.Header)
	if err != nil {
		return nil, chainhash.Hash{}, &Error{Op: "getblockfilter", Host: r.cfg.Host, Err: err}
	}
	return data, fh, nil
}

func isMethodNotFound(err error) bool {
	var rpcErr *btcjson.RPCError
	return errors.As(err, &rpcErr) && rpcErr.Code == btcjson.ErrRPCMethodNotFound.Code
}

// Broadcast implements Backend.
func (r *RPC) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	if tx == nil {
		return chainhash.Hash{}, &Error{Op: "sendrawtransaction", Kind: ErrRejected, Err: errors.New("nil transaction")}
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chainhash.Hash{}, &Error{Op: "sendrawtransaction", Kind: ErrRejected, Err: fmt.Errorf("serialize: %w", err)}
	}
	return r.BroadcastRaw(ctx, buf.Bytes())
}

// BroadcastRaw sends a serialized transaction as it is, which lets the caller (and the
// tests) hand the node bytes that do not decode.
func (r *RPC) BroadcastRaw(ctx context.Context, raw []byte) (chainhash.Hash, error) {
	const op = "sendrawtransaction"
	if err := r.ready(ctx); err != nil {
		return chainhash.Hash{}, err
	}
	param, err := json.Marshal(hex.EncodeToString(raw))
	if err != nil {
		return chainhash.Hash{}, &Error{Op: op, Err: err}
	}
	var res json.RawMessage
	// Not retried: the wallet decides whether to send again (sending again is harmless,
	// a transaction already in the mempool counts as broadcast).
	err = r.call(ctx, op, false, func(c *rpcclient.Client) (err error) {
		res, err = c.RawRequest(op, []json.RawMessage{param})
		return err
	})
	var txid chainhash.Hash
	if err != nil {
		var rpcErr *btcjson.RPCError
		if !errors.As(err, &rpcErr) {
			return txid, err
		}
		if alreadyInMempool(rpcErr.Message) {
			return r.txidOf(raw, err)
		}
		if errors.Is(err, ErrRejected) {
			return txid, &Error{Op: op, Host: r.cfg.Host, Kind: ErrRejected,
				Err: &RejectError{Code: rpcErr.Code, Reason: rpcErr.Message}}
		}
		return txid, err
	}
	var s string
	if err := json.Unmarshal(res, &s); err != nil {
		return txid, &Error{Op: op, Host: r.cfg.Host, Err: fmt.Errorf("decode txid: %w", err)}
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return txid, &Error{Op: op, Host: r.cfg.Host, Err: fmt.Errorf("decode txid: %w", err)}
	}
	return *h, nil
}

func alreadyInMempool(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "already have transaction") || strings.Contains(msg, "txn-already-in-mempool") ||
		strings.Contains(msg, "txn-already-known")
}

func (r *RPC) txidOf(raw []byte, cause error) (chainhash.Hash, error) {
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return chainhash.Hash{}, cause
	}
	return tx.TxHash(), nil
}

// EstimateFee implements Backend: estimatesmartfee (bitcoind) or estimatefee (btcd).
func (r *RPC) EstimateFee(ctx context.Context, target uint32) (FeeRate, error) {
	target = max(1, min(target, 1008))
	if r.feeMethod.Load() != feeLegacy {
		var res *btcjson.EstimateSmartFeeResult
		err := r.read(ctx, "estimatesmartfee", func(c *rpcclient.Client) (err error) {
			res, err = c.EstimateSmartFee(int64(target), &btcjson.EstimateModeConservative)
			return err
		})
		switch {
		case err == nil:
			r.feeMethod.Store(feeSmart)
			if res.FeeRate == nil || *res.FeeRate <= 0 {
				return 0, &Error{Op: "estimatesmartfee", Host: r.cfg.Host, Kind: ErrFeeUnavailable,
					Err: fmt.Errorf("not enough data: %s", strings.Join(res.Errors, "; "))}
			}
			return r.saneFee("estimatesmartfee", *res.FeeRate)
		case !isMethodNotFound(err):
			return 0, err
		}
		r.feeMethod.Store(feeLegacy)
	}
	// btcd estimates up to 25 blocks ahead.
	target = min(target, 25)
	var btcPerKvB float64
	err := r.read(ctx, "estimatefee", func(c *rpcclient.Client) (err error) {
		btcPerKvB, err = c.EstimateFee(int64(target))
		return err
	})
	if err != nil {
		// btcd 0.26 hides the estimator's reason ("not enough blocks have been observed")
		// behind "-32600: Invalid request: malformed"; any refusal means no estimate.
		var rpcErr *btcjson.RPCError
		if errors.As(err, &rpcErr) {
			return 0, &Error{Op: "estimatefee", Host: r.cfg.Host, Kind: ErrFeeUnavailable,
				Err: fmt.Errorf("the node cannot estimate yet: %w", rpcErr)}
		}
		return 0, err
	}
	if btcPerKvB <= 0 {
		return 0, &Error{Op: "estimatefee", Host: r.cfg.Host, Kind: ErrFeeUnavailable,
			Err: fmt.Errorf("not enough data (the node answered %v)", btcPerKvB)}
	}
	return r.saneFee("estimatefee", btcPerKvB)
}

const (
	feeUnknown int32 = iota
	feeSmart
	feeLegacy
)

// saneFee converts a node's BTC/kvB estimate, raising it to the minimum relay fee and
// refusing an implausibly high one.
func (r *RPC) saneFee(op string, btcPerKvB float64) (FeeRate, error) {
	rate, err := FeeRateFromBTCPerKvB(btcPerKvB)
	if err != nil {
		return 0, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable, Err: err}
	}
	if rate > MaxSaneFeeRate {
		return 0, &Error{Op: op, Host: r.cfg.Host, Kind: ErrFeeUnavailable,
			Err: fmt.Errorf("implausible estimate %v", rate)}
	}
	if rate < MinRelayFeeRate {
		r.log.Debug("fee estimate below the minimum relay fee", "estimate", rate, "using", MinRelayFeeRate)
		rate = MinRelayFeeRate
	}
	return rate, nil
}

// Subscribe implements Backend by polling the best block every PollInterval.
func (r *RPC) Subscribe(ctx context.Context, from *BlockStamp) (<-chan Event, error) {
	select {
	case <-r.closedCh:
		return nil, &Error{Op: "subscribe", Host: r.cfg.Host, Kind: ErrClosed}
	default:
	}
	ch := make(chan Event, 16)
	f := &follower{src: r, out: ch, interval: r.cfg.PollInterval, log: r.log}
	if from != nil {
		f.from = from
	}
	go func() {
		defer close(ch)
		f.run(ctx, r.closedCh)
	}()
	return ch, nil
}

// Unspent implements UTXOChecker with gettxout (mempool spends not counted).
func (r *RPC) Unspent(ctx context.Context, op wire.OutPoint) (bool, error) {
	var res *btcjson.GetTxOutResult
	if err := r.read(ctx, "gettxout", func(c *rpcclient.Client) (err error) {
		res, err = c.GetTxOut(&op.Hash, op.Index, false)
		return err
	}); err != nil {
		return false, err
	}
	return res != nil, nil
}
