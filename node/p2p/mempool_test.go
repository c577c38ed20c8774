package p2p

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/regtest"
)

func TestHashRing(t *testing.T) {
	h := func(i int) chainhash.Hash { return chainhash.Hash{byte(i), byte(i >> 8)} }
	for _, tc := range []struct {
		name     string
		capacity int
		add      []int
		has      []int
		hasNot   []int
	}{
		{"below capacity", 4, []int{1, 2, 3}, []int{1, 2, 3}, []int{4}},
		{"oldest forgotten", 3, []int{1, 2, 3, 4, 5}, []int{3, 4, 5}, []int{1, 2}},
		{"re-adding does not evict", 3, []int{1, 2, 3, 1, 1, 2}, []int{1, 2, 3}, nil},
		{"many wraps", 2, []int{1, 2, 3, 4, 5, 6, 7}, []int{6, 7}, []int{1, 2, 3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHashRing(tc.capacity)
			for _, i := range tc.add {
				r.add(h(i))
			}
			for _, i := range tc.has {
				if !r.has(h(i)) {
					t.Errorf("forgot %d", i)
				}
			}
			for _, i := range tc.hasNot {
				if r.has(h(i)) {
					t.Errorf("still has %d", i)
				}
			}
			if r.len() > tc.capacity {
				t.Errorf("holds %d, capacity %d", r.len(), tc.capacity)
			}
		})
	}
}

func invTx(hashes ...chainhash.Hash) []*wire.InvVect {
	var out []*wire.InvVect
	for i := range hashes {
		out = append(out, wire.NewInvVect(wire.InvTypeTx, &hashes[i]))
	}
	return out
}

// sampleTx is a sane transaction (distinct per i).
func sampleTx(i int) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1, byte(i), byte(i >> 8)}}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(int64(1000+i), []byte{0x51}))
	return tx
}

// TestTxRelayLimits checks the bookkeeping of transaction relay without a network: what is
// requested from whom, the per-peer limits, delivery once, and what is refused.
func TestTxRelayLimits(t *testing.T) {
	newRelay := func(t *testing.T) (*txRelay, <-chan *wire.MsgTx) {
		m, err := New(Config{Params: &chaincfg.RegressionNetParams, Logger: quiet, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		return m.txr, m.WatchMempool(ctx)
	}
	now := time.Now()
	txs := make([]*wire.MsgTx, 3)
	ids := make([]chainhash.Hash, 3)
	for i := range txs {
		txs[i] = sampleTx(i)
		ids[i] = txs[i].TxHash()
	}

	t.Run("dedupe across peers and delivery once", func(t *testing.T) {
		r, ch := newRelay(t)
		if got := r.wanted("a", invTx(ids[0], ids[1]), now); len(got) != 2 || got[0].Type != wire.InvTypeWitnessTx {
			t.Fatalf("first announcement: requested %v", got)
		}
		if got := r.wanted("b", invTx(ids[0], ids[2]), now); len(got) != 1 || got[0].Hash != ids[2] {
			t.Fatalf("second peer: requested %v, want only the new tx", got)
		}
		// A tx from a peer we did not ask is ignored, the one we asked is delivered once.
		for _, step := range []struct {
			from string
			tx   *wire.MsgTx
			want bool
		}{{"b", txs[0], false}, {"a", txs[0], true}, {"a", txs[0], false}, {"b", txs[2], true}} {
			if err := r.received(step.from, step.tx); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-ch:
				if !step.want || got.TxHash() != step.tx.TxHash() {
					t.Fatalf("%s: delivered %v", step.from, got.TxHash())
				}
			default:
				if step.want {
					t.Fatalf("%s: %v not delivered", step.from, step.tx.TxHash())
				}
			}
		}
		// Delivered transactions are not requested again.
		if got := r.wanted("c", invTx(ids[0], ids[2]), now); len(got) != 0 {
			t.Fatalf("requested delivered txs again: %v", got)
		}
	})

	t.Run("in-flight limit per peer", func(t *testing.T) {
		r, _ := newRelay(t)
		many := make([]chainhash.Hash, maxTxInFlight+50)
		for i := range many {
			many[i] = chainhash.Hash{2, byte(i), byte(i >> 8)}
		}
		if got := r.wanted("a", invTx(many...), now); len(got) != maxTxInFlight {
			t.Fatalf("requested %d, limit %d", len(got), maxTxInFlight)
		}
		if got := r.wanted("b", invTx(many...), now); len(got) != 50 {
			t.Fatalf("second peer requested %d, want the 50 not in flight", len(got))
		}
		// A notfound releases the requests.
		nf := wire.NewMsgNotFound()
		for _, iv := range invTx(many[:10]...) {
			_ = nf.AddInvVect(iv)
		}
		r.notFound("a", nf)
		if got := r.wanted("a", invTx(chainhash.Hash{3}), now.Add(time.Second)); len(got) != 1 {
			t.Fatalf("after notfound: requested %d", len(got))
		}
		// A disconnect forgets everything the peer was asked.
		r.peerGone("a")
		if got := r.wanted("c", invTx(many[20:30]...), now); len(got) != 10 {
			t.Fatalf("after the peer left: requested %d of its txs", len(got))
		}
	})

	t.Run("rate limit per peer", func(t *testing.T) {
		r, _ := newRelay(t)
		total := 0
		for round := range 10 {
			batch := make([]chainhash.Hash, 400)
			for i := range batch {
				batch[i] = chainhash.Hash{4, byte(round), byte(i), byte(i >> 8)}
			}
			got := r.wanted("a", invTx(batch...), now)
			total += len(got)
			// Answered at once (notfound): the in-flight limit does not bind, the rate does.
			r.notFound("a", &wire.MsgNotFound{InvList: got})
		}
		if total != txBurst {
			t.Fatalf("requested %d at once, burst %d", total, txBurst)
		}
		batch := make([]chainhash.Hash, 400)
		for i := range batch {
			batch[i] = chainhash.Hash{5, byte(i), byte(i >> 8)}
		}
		if got := r.wanted("a", invTx(batch...), now.Add(2*time.Second)); len(got) != 2*txRate {
			t.Fatalf("after 2 s: requested %d, want %d", len(got), 2*txRate)
		}
	})

	t.Run("insane transaction", func(t *testing.T) {
		r, ch := newRelay(t)
		bad := wire.NewMsgTx(2) // no inputs
		bad.AddTxOut(wire.NewTxOut(1, []byte{0x51}))
		r.wanted("a", invTx(bad.TxHash()), now)
		if err := r.received("a", bad); !errors.Is(err, errInsaneTx) {
			t.Fatalf("err %v, want errInsaneTx", err)
		}
		if len(ch) != 0 {
			t.Fatal("insane tx delivered")
		}
	})

	t.Run("nobody watching", func(t *testing.T) {
		m, err := New(Config{Params: &chaincfg.RegressionNetParams, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.txr.wanted("a", invTx(ids...), now); len(got) != 0 {
			t.Fatalf("requested %v without a watcher", got)
		}
		if f := m.txr.feeFilter(); f != noRelayFeeFilter {
			t.Fatalf("fee filter %d without a watcher", f)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.WatchMempool(ctx)
		if f := m.txr.feeFilter(); f != int64(chain.MinRelayFeeRate) {
			t.Fatalf("fee filter %d with a watcher", f)
		}
		cancel()
		waitFor(t, "relay off", func() bool { return m.txr.feeFilter() == noRelayFeeFilter })
	})
}

// p2wpkhAddr is a fresh address on params.
func p2wpkhAddr(t *testing.T, params *chaincfg.Params) btcutil.Address {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), params)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// collect gathers the transactions delivered on ch within d.
func collect(ch <-chan *wire.MsgTx, d time.Duration) map[chainhash.Hash]int {
	got := map[chainhash.Hash]int{}
	timeout := time.After(d)
	for {
		select {
		case tx, ok := <-ch:
			if !ok {
				return got
			}
			got[tx.TxHash()]++
		case <-timeout:
			return got
		}
	}
}

// TestWatchMempoolAgainstBtcd: two connected btcd nodes both announce the transactions sent
// to one of them; the light client, connected to both, delivers each once, and asks its
// peers to announce transactions only while someone watches.
func TestWatchMempoolAgainstBtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("two btcd nodes and several seconds of waiting for announcements that must not come")
	}
	a, bn := regtest.Start(t), regtest.Start(t)
	a.Connect(bn)
	a.Generate(101)
	a.WaitSynced(bn)
	b := newBackend(t, a.P2PAddr, bn.P2PAddr)
	ctx := context.Background()
	waitFor(t, "both peers and sync", func() bool { return b.Ready(ctx) == nil && len(b.Peers()) == 2 })
	addr := p2wpkhAddr(t, a.Params)

	// Nobody watches: the peers were told to announce nothing.
	quietTx := a.SendTo(addr, 1e6)
	waitFor(t, "the tx to reach the second node", func() bool { return hasTx(bn, quietTx.TxHash()) })
	time.Sleep(500 * time.Millisecond) // several trickle intervals
	if st := b.m.Stats(); st.TxAnnounced != 0 || st.Txs != 0 {
		t.Fatalf("announcements without a watcher: %+v", st)
	}

	wctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	ch, err := b.WatchMempool(wctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WatchMempool returned after %v (peers acknowledged the fee filter)", time.Since(start))
	var want []chainhash.Hash
	for i := range 3 {
		want = append(want, a.SendTo(addr, btcutil.Amount(2e6+i)).TxHash())
	}
	start = time.Now()
	got := map[chainhash.Hash]int{}
	for len(got) < len(want) {
		select {
		case tx := <-ch:
			got[tx.TxHash()]++
		case <-time.After(10 * time.Second):
			t.Fatalf("after 10 s: got %v, want %v", got, want)
		}
	}
	t.Logf("3 transactions delivered %v after the last was sent", time.Since(start))
	waitFor(t, "both nodes to announce", func() bool { return b.m.Stats().TxAnnounced >= 6 })
	for id, n := range collect(ch, time.Second) {
		got[id] += n
	}
	for _, id := range want {
		if got[id] != 1 {
			t.Fatalf("tx %v delivered %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %v, want exactly %v (not the tx sent before the watch)", got, want)
	}
	st := b.m.Stats()
	t.Logf("stats while watching: %+v", st)
	if st.TxRequested != 3 || st.Txs != 3 {
		t.Fatalf("requested %d, received %d; want 3 each (one peer asked per tx)", st.TxRequested, st.Txs)
	}

	// The watch ends: the channel closes and the peers stop announcing.
	cancel()
	for range ch {
	}
	waitFor(t, "relay off", func() bool { return !b.m.txr.watching.Load() })
	before := b.m.Stats().TxAnnounced
	late := a.SendTo(addr, 3e6)
	waitFor(t, "the tx to reach the second node", func() bool { return hasTx(bn, late.TxHash()) })
	time.Sleep(500 * time.Millisecond)
	if after := b.m.Stats().TxAnnounced; after != before {
		t.Fatalf("%d announcements after the watch ended", after-before)
	}
}

func hasTx(n *regtest.Node, txid chainhash.Hash) bool {
	for _, h := range n.Mempool() {
		if *h == txid {
			return true
		}
	}
	return false
}

// FuzzInvMessage runs announcements from a peer through transaction relay.
func FuzzInvMessage(f *testing.F) {
	for _, invs := range [][]*wire.InvVect{invTx(chainhash.Hash{1}, chainhash.Hash{2}), {
		wire.NewInvVect(wire.InvTypeBlock, &chainhash.Hash{3}),
		wire.NewInvVect(wire.InvTypeWitnessTx, &chainhash.Hash{4}),
	}, nil} {
		msg := &wire.MsgInv{InvList: invs}
		var buf bytes.Buffer
		_ = msg.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding)
		f.Add(buf.Bytes())
	}
	m, err := New(Config{Params: &chaincfg.RegressionNetParams, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.WatchMempool(ctx)
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &wire.MsgInv{}
		if err := msg.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		want := m.txr.wanted("fuzz", msg.InvList, now)
		if len(want) > maxTxInFlight {
			t.Fatalf("requested %d", len(want))
		}
		m.txr.peerGone("fuzz")
	})
}

// FuzzTxMessage runs transactions from a peer (requested ones) through relay and delivery.
func FuzzTxMessage(f *testing.F) {
	for i := range 2 {
		var buf bytes.Buffer
		_ = sampleTx(i).BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding)
		f.Add(buf.Bytes())
	}
	f.Add([]byte{1, 0, 0, 0, 0, 1, 1, 0xff})
	m, err := New(Config{Params: &chaincfg.RegressionNetParams, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := m.WatchMempool(ctx)
	f.Fuzz(func(t *testing.T, data []byte) {
		tx := &wire.MsgTx{}
		if err := tx.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		id := tx.TxHash()
		m.txr.wanted("fuzz", invTx(id), time.Now())
		err := m.txr.received("fuzz", tx)
		for len(ch) > 0 {
			if got := <-ch; got.TxHash() != id {
				t.Fatalf("delivered %v, received %v", got.TxHash(), id)
			}
		}
		if err != nil && !errors.Is(err, errInsaneTx) {
			t.Fatal(err)
		}
		m.txr.peerGone("fuzz")
	})
}
