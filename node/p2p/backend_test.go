package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/regtest"
)

func newBackend(t *testing.T, peers ...string) *Backend {
	t.Helper()
	b, err := NewBackend(Config{Params: &chaincfg.RegressionNetParams, Peers: peers, DB: openDB(t, t.TempDir()),
		Logger: quiet, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBackendAgainstBtcd(t *testing.T) {
	n := regtest.Start(t)
	n.Generate(110)
	ctx := context.Background()
	b := newBackend(t, n.P2PAddr)
	best, height := n.Best()
	waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })

	bb, err := b.BestBlock(ctx)
	if err != nil || bb.Hash != *best || bb.Height != height {
		t.Fatalf("BestBlock %v, %v; btcd %d/%v", bb, err, height, best)
	}
	st, err := b.Status(ctx)
	if err != nil || st.Syncing || st.Peers != 1 || st.Headers != height {
		t.Fatalf("Status %+v, %v", st, err)
	}
	hash, err := b.BlockHash(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := n.RPC().GetBlockHash(50); *want != hash {
		t.Fatalf("BlockHash(50) %v, btcd %v", hash, want)
	}
	if _, err := b.BlockHash(ctx, height+1); !errors.Is(err, chain.ErrNotFound) {
		t.Fatalf("BlockHash above tip: %v", err)
	}
	hdr, err := b.HeaderByHeight(ctx, 50)
	if err != nil || hdr.Hash != hash || hdr.BlockHash() != hash {
		t.Fatalf("HeaderByHeight %v, %v", hdr, err)
	}

	blk, err := b.BlockByHash(ctx, *best)
	if err != nil {
		t.Fatal(err)
	}
	if want := n.Block(best); blk.BlockHash() != want.BlockHash() || len(blk.Transactions) != len(want.Transactions) ||
		blk.Transactions[0].TxHash() != want.Transactions[0].TxHash() {
		t.Fatalf("BlockByHash differs from btcd's block")
	}
	if _, err := b.BlockByHash(ctx, wire.NewMsgTx(1).TxHash()); !errors.Is(err, chain.ErrNotFound) {
		t.Fatalf("BlockByHash unknown: %v", err)
	}

	f, err := b.FilterByHash(ctx, *best)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := b.FilterHeaderByHash(ctx, *best)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := builder.MakeHeaderForFilter(f, mustPrevFH(t, b, height)); got != fh {
		t.Fatalf("filter does not match its header")
	}
	want, err := n.RPC().GetCFilterHeader(best, wire.GCSFilterRegular)
	if err != nil || want.PrevFilterHeader != fh {
		t.Fatalf("filter header %v, btcd %v (%v)", fh, want, err)
	}

	if _, err := b.EstimateFee(ctx, 6); !errors.Is(err, chain.ErrFeeUnavailable) {
		t.Fatalf("EstimateFee: %v", err)
	}

	script, err := txscript.PayToAddrScript(n.MiningAddress())
	if err != nil {
		t.Fatal(err)
	}
	tx := n.BuildTx(wire.NewTxOut(100_000, script))
	txid, err := b.Broadcast(ctx, tx)
	if err != nil || txid != tx.TxHash() {
		t.Fatalf("Broadcast %v, %v", txid, err)
	}
	waitFor(t, "tx in btcd's mempool", func() bool {
		for _, h := range n.Mempool() {
			if *h == txid {
				return true
			}
		}
		return false
	})
	if _, err := b.Broadcast(ctx, tx); err != nil {
		t.Fatalf("re-broadcast of a mempool tx: %v", err)
	}
	bad := tx.Copy()
	bad.TxIn[0].SignatureScript = nil
	bad.TxIn[0].Witness = nil
	bad.TxOut[0].Value++
	if _, err := b.Broadcast(ctx, bad); !errors.Is(err, chain.ErrRejected) {
		t.Fatalf("Broadcast of an invalid tx: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.BestBlock(ctx); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := b.Broadcast(ctx, tx); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("Broadcast after Close: %v", err)
	}
}

func mustPrevFH(t *testing.T, b *Backend, height int32) [32]byte {
	t.Helper()
	prev, _ := b.m.chain.HashAt(height - 1)
	fh, ok := b.m.FilterHeader(prev)
	if !ok {
		t.Fatal("no previous filter header")
	}
	return fh
}

func TestBackendNoPeers(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if err := b.Ready(ctx); !errors.Is(err, chain.ErrNodeDown) {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := b.Broadcast(ctx, wire.NewMsgTx(2)); !errors.Is(err, chain.ErrNodeDown) {
		t.Fatalf("Broadcast: %v", err)
	}
}

// TestBackendSubscribeReorg: a subscriber on branch A sees A's blocks disconnected and B's
// connected when the followed node switches to the heavier branch B.
func TestBackendSubscribeReorg(t *testing.T) {
	a, bn := regtest.Start(t), regtest.Start(t)
	a.Generate(10)
	bn.Generate(15)
	b := newBackend(t, a.P2PAddr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aBest, _ := a.Best()
	waitFor(t, "branch A", func() bool { return b.Ready(ctx) == nil && b.m.chain.Tip().Hash == *aBest })
	from := chain.BlockStamp{Hash: *aBest, Height: 10}
	events, err := b.Subscribe(ctx, &from)
	if err != nil {
		t.Fatal(err)
	}
	a.Connect(bn)
	a.WaitSynced(bn)
	bBest, _ := bn.Best()
	tip := *aBest
	var disc, conn int
	deadline := time.After(30 * time.Second)
	for tip != *bBest {
		select {
		case ev := <-events:
			switch ev.Kind {
			case chain.BlockDisconnected:
				if ev.Block.Hash != tip {
					t.Fatalf("disconnected %v, tip %v", ev.Block, tip)
				}
				tip = ev.Prev
				disc++
			case chain.BlockConnected:
				if ev.Prev != tip {
					t.Fatalf("connected %v on %v, tip %v", ev.Block, ev.Prev, tip)
				}
				if _, err := b.FilterByHash(ctx, ev.Block.Hash); err != nil {
					t.Fatalf("filter of connected block: %v", err)
				}
				tip = ev.Block.Hash
				conn++
			default:
				t.Logf("event %v", ev)
			}
		case <-deadline:
			t.Fatalf("timed out at %v (disconnected %d, connected %d)", tip, disc, conn)
		}
	}
	if disc != 10 || conn != 15 {
		t.Fatalf("disconnected %d, connected %d; want 10, 15", disc, conn)
	}
	lost, err := b.Subscribe(ctx, &chain.BlockStamp{Hash: wire.NewMsgTx(1).TxHash()})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-lost; ev.Kind != chain.EventLost {
		t.Fatalf("unknown start: %v", ev)
	}
	if _, ok := <-lost; ok {
		t.Fatal("channel open after EventLost")
	}
}
