package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/anya-edge/anya/node/chain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/lnwire"
)

// ErrFunding marks a channel whose funding output is missing, spent or not the 2-of-2 of the
// announcement's bitcoin keys: BOLT 7 says to ignore such an announcement.
var ErrFunding = errors.New("channel funding output not valid")

// Funding is a channel's confirmed funding output.
type Funding struct {
	Value    int64 // sat: the channel's capacity
	Outpoint wire.OutPoint
}

// FundingChecker confirms a channel's funding output on chain.
type FundingChecker interface {
	Funding(ctx context.Context, a *lnwire.ChannelAnnouncement1) (Funding, error)
}

// ChainFunding checks funding outputs with a chain.Backend: the block at the short channel
// id's height, the transaction at its index, the output at its index, which must pay to the
// P2WSH of the 2-of-2 multisig of the two bitcoin keys. When the backend also implements
// chain.UTXOChecker the output must be unspent. Later spends (channel closes) are found by
// Ingester.BlockConnected in the blocks the backend delivers.
//
// Fetching a block per channel is what makes this affordable only with a backend on the
// box or the LAN; the last few blocks are cached because channels cluster in blocks.
type ChainFunding struct {
	Backend chain.Backend

	mu     sync.Mutex
	blocks map[uint32]*wire.MsgBlock
}

const fundingBlockCache = 16

// Funding implements FundingChecker.
func (f *ChainFunding) Funding(ctx context.Context, a *lnwire.ChannelAnnouncement1) (Funding, error) {
	scid := a.ShortChannelID
	block, err := f.block(ctx, scid.BlockHeight)
	if err != nil {
		return Funding{}, err
	}
	if int(scid.TxIndex) >= len(block.Transactions) {
		return Funding{}, fmt.Errorf("%w: %v: block has %d transactions", ErrFunding, scid, len(block.Transactions))
	}
	tx := block.Transactions[scid.TxIndex]
	if int(scid.TxPosition) >= len(tx.TxOut) {
		return Funding{}, fmt.Errorf("%w: %v: transaction has %d outputs", ErrFunding, scid, len(tx.TxOut))
	}
	out := tx.TxOut[scid.TxPosition]
	want, err := fundingScript(a.BitcoinKey1, a.BitcoinKey2)
	if err != nil {
		return Funding{}, err
	}
	if !bytes.Equal(out.PkScript, want) {
		return Funding{}, fmt.Errorf("%w: %v: output is not the 2-of-2 of the bitcoin keys", ErrFunding, scid)
	}
	op := wire.OutPoint{Hash: tx.TxHash(), Index: uint32(scid.TxPosition)}
	if u, ok := f.Backend.(chain.UTXOChecker); ok {
		unspent, err := u.Unspent(ctx, op)
		if err != nil {
			return Funding{}, fmt.Errorf("check funding of %v is unspent: %w", scid, err)
		}
		if !unspent {
			return Funding{}, fmt.Errorf("%w: %v: spent", ErrFunding, scid)
		}
	}
	return Funding{Value: out.Value, Outpoint: op}, nil
}

func (f *ChainFunding) block(ctx context.Context, height uint32) (*wire.MsgBlock, error) {
	f.mu.Lock()
	b, ok := f.blocks[height]
	f.mu.Unlock()
	if ok {
		return b, nil
	}
	var hash chainhash.Hash
	hash, err := f.Backend.BlockHash(ctx, int32(height))
	if errors.Is(err, chain.ErrNotFound) {
		return nil, fmt.Errorf("%w: no block at height %d", ErrFunding, height)
	}
	if err != nil {
		return nil, fmt.Errorf("funding block %d: %w", height, err)
	}
	b, err = f.Backend.BlockByHash(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("funding block %d: %w", height, err)
	}
	f.mu.Lock()
	if f.blocks == nil || len(f.blocks) >= fundingBlockCache {
		f.blocks = make(map[uint32]*wire.MsgBlock)
	}
	f.blocks[height] = b
	f.mu.Unlock()
	return b, nil
}

// fundingScript is P2WSH(2 <key1> <key2> 2 OP_CHECKMULTISIG) with the keys in BOLT 3 order
// (lexicographic).
func fundingScript(k1, k2 [33]byte) ([]byte, error) {
	a, b := k1[:], k2[:]
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	ws, err := txscript.NewScriptBuilder().AddOp(txscript.OP_2).AddData(a).AddData(b).
		AddOp(txscript.OP_2).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		return nil, fmt.Errorf("funding script: %w", err)
	}
	h := chainhash.HashB(ws)
	return txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
}
