package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/regtest"
)

func TestParseVerboseMempool(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want []mempoolEntry // nil with err
		err  bool
	}{
		{"empty", `{}`, nil, false},
		{"btcd", `{"aa":{"size":222,"vsize":141,"weight":561,"fee":0.00000705,"time":1,"height":101,
			"startingpriority":0,"currentpriority":0,"depends":[]}}`, []mempoolEntry{{5000, 141}}, false},
		{"bitcoind 23+", `{"bb":{"vsize":200,"weight":800,"time":1,"height":5,"descendantcount":1,
			"fees":{"base":0.00004,"modified":0.00004,"ancestor":0.00004,"descendant":0.00004},"depends":[]}}`,
			[]mempoolEntry{{20000, 200}}, false},
		{"bitcoind with both fee and fees: base wins", `{"cc":{"vsize":100,"fee":0.1,"fees":{"base":0.000002}}}`,
			[]mempoolEntry{{2000, 100}}, false},
		{"bitcoind before 0.19: size is virtual", `{"dd":{"size":250,"fee":0.0000025}}`, []mempoolEntry{{1000, 250}}, false},
		{"weight only", `{"ee":{"weight":401,"fee":0.00000101}}`, []mempoolEntry{{1000, 101}}, false},
		{"two entries keep order", `{"a":{"vsize":100,"fee":0.00001},"b":{"vsize":1000,"fee":0.00001}}`,
			[]mempoolEntry{{10000, 100}, {1000, 1000}}, false},
		{"no fee", `{"a":{"vsize":100}}`, nil, true},
		{"no size", `{"a":{"fee":0.1}}`, nil, true},
		{"zero size", `{"a":{"vsize":0,"fee":0.1}}`, nil, true},
		{"negative fee", `{"a":{"vsize":10,"fee":-0.1}}`, nil, true},
		{"fee beyond 21M BTC", `{"a":{"vsize":10,"fee":1e300}}`, nil, true},
		{"array (non-verbose answer)", `["aa","bb"]`, nil, true},
		{"truncated", `{"a":{"vsize":100,"fee":0.1}`, nil, true},
		{"entry not an object", `{"a":5}`, nil, true},
		{"not json", `nope`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVerboseMempool([]byte(tc.raw))
			if tc.err {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMempoolStats(t *testing.T) {
	e := func(satPerVB float64, vsize int64) mempoolEntry {
		return mempoolEntry{rate: FeeRate(satPerVB * 1000), vsize: vsize}
	}
	var ten []mempoolEntry
	for i := 1; i <= 10; i++ {
		ten = append(ten, e(float64(i), 100))
	}
	for _, tc := range []struct {
		name    string
		entries []mempoolEntry
		want    MempoolStats
	}{
		{"empty", nil, MempoolStats{}},
		{"one", []mempoolEntry{e(5, 200)}, MempoolStats{Txs: 1, VSize: 200, Median: 5, Mean: 5, P10: 5, P90: 5, Max: 5}},
		{"two", []mempoolEntry{e(2, 100), e(4, 300)}, MempoolStats{Txs: 2, VSize: 400, Median: 4, Mean: 3, P10: 2, P90: 4, Max: 4, Std: 1}},
		{"one to ten", ten, MempoolStats{Txs: 10, VSize: 1000, Median: 6, Mean: 5.5, P10: 2, P90: 10, Max: 10, Std: math.Sqrt(8.25)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mempoolStats(tc.entries); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRateAtDepth(t *testing.T) {
	e := func(satPerVB float64, vsize int64) mempoolEntry {
		return mempoolEntry{rate: FeeRate(satPerVB * 1000), vsize: vsize}
	}
	mempool := []mempoolEntry{e(2, 400_000), e(50, 300_000), e(10, 500_000), e(1, 2_000_000), e(30, 300_000)}
	for _, tc := range []struct {
		name    string
		entries []mempoolEntry
		depth   int64
		want    FeeRate
	}{
		{"empty mempool", nil, BlockVSize, MinRelayFeeRate},
		{"shallower than one block", []mempoolEntry{e(80, 1000)}, BlockVSize, MinRelayFeeRate},
		{"inside the top transaction", mempool, 1, 50_000},
		{"exactly the top transaction", mempool, 300_000, 50_000},
		{"one byte into the second", mempool, 300_001, 30_000},
		{"one block", mempool, BlockVSize, 10_000},
		{"two blocks", mempool, 2 * BlockVSize, 1_000},
		{"beyond the mempool", mempool, 4 * BlockVSize, MinRelayFeeRate},
		{"floor at the minimum relay fee", []mempoolEntry{{rate: 500, vsize: BlockVSize}}, BlockVSize, MinRelayFeeRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.entries)
			if got := rateAtDepth(tc.entries, tc.depth); got != tc.want {
				t.Fatalf("rate at %d vB = %v, want %v", tc.depth, got, tc.want)
			}
			if !slices.Equal(in, tc.entries) {
				t.Fatal("rateAtDepth reordered its input")
			}
		})
	}
}

// fakeMempool serves scripted mempool snapshots to the poller.
type fakeMempool struct {
	mu      sync.Mutex
	txs     map[chainhash.Hash]*wire.MsgTx
	order   []chainhash.Hash
	fetches int
	fail    error
}

func (f *fakeMempool) set(txs ...*wire.MsgTx) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs = map[chainhash.Hash]*wire.MsgTx{}
	f.order = nil
	for _, tx := range txs {
		f.txs[tx.TxHash()] = tx
		f.order = append(f.order, tx.TxHash())
	}
}

func (f *fakeMempool) mempoolTxids(context.Context) ([]chainhash.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	return slices.Clone(f.order), nil
}

func (f *fakeMempool) mempoolTx(_ context.Context, id chainhash.Hash) (*wire.MsgTx, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if tx, ok := f.txs[id]; ok {
		return tx, nil
	}
	return nil, &Error{Op: "getrawtransaction", Kind: ErrNotFound}
}

func fakeTx(i int) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{byte(i), byte(i >> 8)}}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(int64(i), []byte{0x51}))
	return tx
}

// TestMempoolPoller drives the poller through mempool snapshots: each transaction is
// delivered once, txids that leave the mempool are forgotten (memory follows the mempool),
// a large mempool is delivered over several polls, and a transaction that vanishes between
// getrawmempool and getrawtransaction is skipped.
func TestMempoolPoller(t *testing.T) {
	txs := make([]*wire.MsgTx, 12)
	for i := range txs {
		txs[i] = fakeTx(i + 1)
	}
	type step struct {
		mempool   []*wire.MsgTx
		vanish    []*wire.MsgTx // listed by getrawmempool but gone when fetched
		fail      error
		deliver   []*wire.MsgTx
		seen      int
		wantError bool
	}
	for _, tc := range []struct {
		name     string
		maxFetch int
		steps    []step
	}{
		{"new transactions once", 10, []step{
			{mempool: txs[:2], deliver: txs[:2], seen: 2},
			{mempool: txs[:3], deliver: txs[2:3], seen: 3},
			{mempool: txs[:3], seen: 3},
		}},
		{"forget what left the mempool", 10, []step{
			{mempool: txs[:4], deliver: txs[:4], seen: 4},
			{mempool: txs[3:5], deliver: txs[4:5], seen: 2},
			{mempool: nil, seen: 0},
			// Re-entering after a reorganisation is a new entry.
			{mempool: txs[:1], deliver: txs[:1], seen: 1},
		}},
		{"large mempool over several polls", 5, []step{
			{mempool: txs, deliver: txs[:5], seen: 5},
			{mempool: txs, deliver: txs[5:10], seen: 10},
			{mempool: txs, deliver: txs[10:], seen: 12},
			{mempool: txs, seen: 12},
		}},
		{"vanished between the calls", 10, []step{
			{mempool: txs[:1], vanish: txs[1:2], deliver: txs[:1], seen: 2},
			{mempool: txs[:1], seen: 1},
		}},
		{"node down keeps what was seen", 10, []step{
			{mempool: txs[:2], deliver: txs[:2], seen: 2},
			{fail: &Error{Op: "getrawmempool", Kind: ErrNodeDown}, seen: 2, wantError: true},
			{mempool: txs[:3], deliver: txs[2:3], seen: 3},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeMempool{}
			out := make(chan *wire.MsgTx, 100)
			p := &mempoolPoller{src: src, out: out, seen: map[chainhash.Hash]struct{}{}, maxFetch: tc.maxFetch,
				log: slog.New(slog.DiscardHandler)}
			for i, s := range tc.steps {
				src.set(append(slices.Clone(s.mempool), s.vanish...)...)
				for _, v := range s.vanish {
					delete(src.txs, v.TxHash())
				}
				src.fail = s.fail
				err := p.poll(context.Background(), nil)
				if (err != nil) != s.wantError {
					t.Fatalf("step %d: err %v", i, err)
				}
				var got []chainhash.Hash
				for len(out) > 0 {
					got = append(got, (<-out).TxHash())
				}
				var want []chainhash.Hash
				for _, tx := range s.deliver {
					want = append(want, tx.TxHash())
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: delivered %v, want %v", i, got, want)
				}
				if len(p.seen) != s.seen {
					t.Fatalf("step %d: remembers %d txids, want %d", i, len(p.seen), s.seen)
				}
			}
		})
	}
}

// recvTxs collects the transactions delivered within d.
func recvTxs(ch <-chan *wire.MsgTx, d time.Duration) map[chainhash.Hash]int {
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

func TestRPCWatchMempool(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	n.Generate(101)
	addr, _ := newScript(t, n.Params)
	before := n.SendTo(addr, 1e6) // in the mempool before the watch starts

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	start := time.Now()
	ch, err := b.WatchMempool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := n.SendTo(addr, 2e6)
	second := n.SendTo(addr, 3e6)
	want := []chainhash.Hash{before.TxHash(), first.TxHash(), second.TxHash()}
	got := map[chainhash.Hash]int{}
	for len(got) < len(want) {
		select {
		case tx := <-ch:
			got[tx.TxHash()]++
		case <-time.After(10 * time.Second):
			t.Fatalf("after 10 s got %v, want %v", got, want)
		}
	}
	t.Logf("3 transactions delivered within %v (poll interval %v)", time.Since(start), b.cfg.PollInterval)
	for _, id := range want {
		if got[id] != 1 {
			t.Fatalf("tx %v delivered %d times", id, got[id])
		}
	}
	// Later polls do not deliver them again, nor does mining them.
	n.Generate(1)
	if again := recvTxs(ch, 500*time.Millisecond); len(again) != 0 {
		t.Fatalf("delivered again: %v", again)
	}
	third := n.SendTo(addr, 4e6)
	if got := recvTxs(ch, 2*time.Second); got[third.TxHash()] != 1 || len(got) != 1 {
		t.Fatalf("after mining: got %v, want only %v", got, third.TxHash())
	}

	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after ctx ended")
	}

	// Close ends a watch too, and later watches fail with ErrClosed.
	ch2, err := b.WatchMempool(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	closed := make(chan struct{})
	go func() {
		for range ch2 {
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("channel open 5 s after Close")
	}
	if _, err := b.WatchMempool(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// spendP2WPKH spends output vout of prev (paying key's P2WPKH script) to a fresh script at
// satPerVB and returns the signed transaction with its fee.
func spendP2WPKH(t *testing.T, key *btcec.PrivateKey, prev *wire.MsgTx, vout uint32, satPerVB int64) (*wire.MsgTx, int64) {
	t.Helper()
	pkScript := prev.TxOut[vout].PkScript
	value := prev.TxOut[vout].Value
	_, dest := newScript(t, &chaincfg.RegressionNetParams)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev.TxHash(), Index: vout}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(value, dest))
	sign := func() {
		fetcher := txscript.NewCannedPrevOutputFetcher(pkScript, value)
		wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, value, pkScript,
			txscript.SigHashAll, key, true)
		if err != nil {
			t.Fatal(err)
		}
		tx.TxIn[0].Witness = wit
	}
	sign()
	fee := satPerVB * regtest.VSize(tx)
	tx.TxOut[0].Value = value - fee
	sign()
	return tx, fee
}

func TestRPCMempoolFeeRate(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(101)

	rate, err := b.MempoolFeeRate(ctx, 1)
	if err != nil || rate != MinRelayFeeRate {
		t.Fatalf("empty mempool: %v, %v; want %v", rate, err, MinRelayFeeRate)
	}

	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), n.Params)
	if err != nil {
		t.Fatal(err)
	}
	script, _ := txscript.PayToAddrScript(addr)
	fund := n.SendOutputs(wire.NewTxOut(1e7, script), wire.NewTxOut(1e7, script))
	n.Generate(1)
	high, highFee := spendP2WPKH(t, key, fund, 0, 20)
	low, lowFee := spendP2WPKH(t, key, fund, 1, 8)
	for _, tx := range []*wire.MsgTx{high, low} {
		if _, err := b.Broadcast(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	vHigh, vLow := regtest.VSize(high), regtest.VSize(low)
	highRate, lowRate := FeeRate(highFee*1000/vHigh), FeeRate(lowFee*1000/vLow)

	st, err := b.MempoolStats(ctx)
	if err != nil || st.Txs != 2 || st.VSize != vHigh+vLow || st.Max != float64(highRate)/1000 {
		t.Fatalf("mempool stats %+v, %v; want 2 txs of %d vB, max %v", st, err, vHigh+vLow, highRate)
	}

	// A full block is 1,000,000 vB: two small transactions are far from one block deep.
	if rate, err := b.MempoolFeeRate(ctx, 1); err != nil || rate != MinRelayFeeRate {
		t.Fatalf("shallow mempool: %v, %v", rate, err)
	}
	// With blocks the size of one of them, the walk lands on each in turn.
	b.blockVSize = min(vHigh, vLow)
	for _, tc := range []struct {
		target uint32
		want   FeeRate
	}{{0, highRate}, {1, highRate}, {2, lowRate}, {3, MinRelayFeeRate}, {100, MinRelayFeeRate}} {
		t.Run(fmt.Sprint("target ", tc.target), func(t *testing.T) {
			rate, err := b.MempoolFeeRate(ctx, tc.target)
			if err != nil || rate != tc.want {
				t.Fatalf("rate %v, %v; want %v", rate, err, tc.want)
			}
		})
	}

	n.Kill()
	if _, err := b.MempoolFeeRate(ctx, 1); !errors.Is(err, ErrFeeUnavailable) || !errors.Is(err, ErrNodeDown) {
		t.Fatalf("node down: %v, want ErrFeeUnavailable and ErrNodeDown", err)
	}
}

// FuzzParseVerboseMempool feeds getrawmempool's verbose answer (from either dialect)
// through the parser and the depth walk.
func FuzzParseVerboseMempool(f *testing.F) {
	f.Add([]byte(`{"aa":{"size":222,"vsize":141,"fee":0.00000705}}`))
	f.Add([]byte(`{"bb":{"vsize":200,"fees":{"base":0.00004}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		entries, err := parseVerboseMempool(raw)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.vsize <= 0 || e.rate < 0 {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		if r := rateAtDepth(entries, BlockVSize); r < MinRelayFeeRate {
			t.Fatalf("rate %v below the floor", r)
		}
	})
}
