package gossip

import (
	"context"
	"errors"
	"testing"

	"github.com/anya-edge/anya/node/chain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/lnwire"
)

// fakeChain serves one block at height 500000 (the first channels of smallSet) and answers
// gettxout from a set of spent outputs.
type fakeChain struct {
	chain.Backend // only the methods below are called
	block         *wire.MsgBlock
	spent         map[wire.OutPoint]bool
}

func (f *fakeChain) BlockHash(_ context.Context, h int32) (chainhash.Hash, error) {
	if h != 500_000 {
		return chainhash.Hash{}, chain.ErrNotFound
	}
	return f.block.BlockHash(), nil
}

func (f *fakeChain) BlockByHash(context.Context, chainhash.Hash) (*wire.MsgBlock, error) {
	return f.block, nil
}

func (f *fakeChain) Unspent(_ context.Context, op wire.OutPoint) (bool, error) {
	return !f.spent[op], nil
}

func TestChainFunding(t *testing.T) {
	s := smallSet(t)
	// Transactions 0..3 of block 500000 fund channels 0..3 of the set; 2 pays the wrong
	// script, 3 is spent.
	block := &wire.MsgBlock{}
	for i := range 4 {
		a := s.Channels[i]
		script, err := fundingScript(a.BitcoinKey1, a.BitcoinKey2)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			script = append([]byte(nil), script...)
			script[5] ^= 1
		}
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: uint32(i)}})
		tx.AddTxOut(wire.NewTxOut(int64(100_000*(i+1)), script))
		block.AddTransaction(tx)
	}
	spent := map[wire.OutPoint]bool{{Hash: block.Transactions[3].TxHash(), Index: 0}: true}
	f := &ChainFunding{Backend: &fakeChain{block: block, spent: spent}}
	tests := []struct {
		ann     *lnwire.ChannelAnnouncement1
		want    int64
		wantErr bool
	}{
		{s.Channels[0], 100_000, false},
		{s.Channels[1], 200_000, false},
		{s.Channels[2], 0, true},   // not the 2-of-2 of its keys
		{s.Channels[3], 0, true},   // spent
		{s.Channels[4], 0, true},   // no transaction 4 in the block
		{s.Channels[100], 0, true}, // block 500001 unknown
	}
	for i, tt := range tests {
		fund, err := f.Funding(context.Background(), tt.ann)
		got := fund.Value
		if tt.wantErr {
			if !errors.Is(err, ErrFunding) {
				t.Fatalf("%d (%v): %d, %v; want ErrFunding", i, tt.ann.ShortChannelID, got, err)
			}
			continue
		}
		if want := (wire.OutPoint{Hash: block.Transactions[i].TxHash()}); fund.Outpoint != want {
			t.Fatalf("%d: outpoint %v, want %v", i, fund.Outpoint, want)
		}
		if err != nil || got != tt.want {
			t.Fatalf("%d: capacity %d, %v; want %d", i, got, err, tt.want)
		}
	}
}
