package wallet

import (
	"context"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/node/chain"
)

// sendSigned proposes a payment, signs it with k and records it as Send does after the
// broadcast.
func sendSigned(t *testing.T, w *Wallet, k *testKey, req SendRequest) (*Proposal, *wire.MsgTx) {
	t.Helper()
	p, err := w.Propose(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, tx := signAll(t, p.PSBT, k)
	if _, err := w.recordTx(tx); err != nil {
		t.Fatal(err)
	}
	return p, tx
}

func historyOf(t *testing.T, w *Wallet, txid chainhash.Hash) HistoryEntry {
	t.Helper()
	h, err := w.History()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h {
		if e.TxID == txid.String() {
			return e
		}
	}
	t.Fatalf("%v not in history", txid)
	return HistoryEntry{}
}

func TestBumpReplacesOriginal(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(300_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey),
		wire.NewTxOut(200_000, receiveAt(t, w, keys.Receive, 1).ScriptPubKey)))
	dest := foreignAddress(t, 7)
	p, orig := sendSigned(t, w, k, SendRequest{Payments: []Payment{{Address: dest, Amount: 250_000}}, FeeRate: 1000})
	h := historyOf(t, w, orig.TxHash())
	if !h.Replaceable || !h.CPFPable || h.Fee != p.Fee || h.Confirmations != 0 || h.Net() != -250_000-p.Fee {
		t.Fatalf("original in history %+v (proposal fee %d)", h, p.Fee)
	}
	if _, err := w.ProposeBump(ctx, orig.TxHash(), 1000); !errors.Is(err, ErrFeeRateTooLow) {
		t.Fatalf("bump at the same rate: %v", err)
	}

	bp, err := w.ProposeBump(ctx, orig.TxHash(), 5000)
	if err != nil {
		t.Fatal(err)
	}
	if bp.Kind != "bump" || bp.Replaces != orig.TxHash().String() || bp.Sent != 250_000 || bp.Change >= p.Change ||
		bp.Fee < p.Fee+bp.VSize || bp.FeeRate <= p.FeeRate || bp.FeeRate < 5000 || len(bp.Inputs) != len(orig.TxIn) {
		t.Fatalf("bump %+v of %+v", bp, p)
	}
	_, bump := signAll(t, bp.PSBT, k)
	if bump.LockTime != orig.LockTime {
		t.Fatalf("locktime %d, original %d", bump.LockTime, orig.LockTime)
	}
	for i, in := range bump.TxIn {
		if in.PreviousOutPoint != orig.TxIn[i].PreviousOutPoint {
			t.Fatalf("input %d differs from the original's", i)
		}
	}
	if _, err := w.recordTx(bump); err != nil {
		t.Fatal(err)
	}
	h = historyOf(t, w, orig.TxHash())
	if h.ReplacedBy != bump.TxHash().String() || h.Replaceable || h.CPFPable {
		t.Fatalf("original after the bump %+v", h)
	}
	b, _ := w.Balance()
	if b.Confirmed != 0 || b.Unconfirmed != bp.Change {
		t.Fatalf("balance %+v, want only the bump's change %d unconfirmed", b, bp.Change)
	}
	coins, _ := w.Coins()
	for _, c := range coins {
		if c.OutPoint[:64] == orig.TxHash().String() {
			t.Fatalf("coin of the replaced transaction left: %+v", c)
		}
	}
	if _, err := w.ProposeBump(ctx, orig.TxHash(), 10_000); !errors.Is(err, ErrNotReplaceable) {
		t.Fatalf("bump of the replaced original: %v", err)
	}
	if _, err := w.ProposeBump(ctx, chainhash.Hash{1}, 10_000); !errors.Is(err, ErrTxNotFound) {
		t.Fatalf("bump of an unknown tx: %v", err)
	}
	fakeBlock(t, w, bump)
	if _, err := w.ProposeBump(ctx, bump.TxHash(), 10_000); !errors.Is(err, ErrAlreadyConfirmed) {
		t.Fatalf("bump of a confirmed tx: %v", err)
	}
	if b, _ := w.Balance(); b.Confirmed != bp.Change || b.Unconfirmed != 0 {
		t.Fatalf("balance after the bump confirmed %+v", b)
	}
}

// TestBumpAddsInputs: a send-all has no change to take the fee from, so the bump adds a
// confirmed coin and makes change.
func TestBumpAddsInputs(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP86))
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(100_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey)))
	p, orig := sendSigned(t, w, k, SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7)}}, SendAll: true, FeeRate: 1000})
	if _, err := w.ProposeBump(ctx, orig.TxHash(), 3000); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("bump without coins: %v", err)
	}
	fakeBlock(t, w, foreignTx(2, wire.NewTxOut(80_000, receiveAt(t, w, keys.Receive, 1).ScriptPubKey)))
	bp, err := w.ProposeBump(ctx, orig.TxHash(), 3000)
	if err != nil {
		t.Fatal(err)
	}
	if len(bp.Inputs) != 2 || bp.Sent != p.Sent || bp.Change <= 0 || bp.Fee+bp.Sent+bp.Change != 180_000 || bp.FeeRate < 3000 {
		t.Fatalf("bump %+v", bp)
	}
	signAll(t, bp.PSBT, k)
}

func TestCPFPPackageRate(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))

	// An incoming payment whose fee the wallet cannot know: the child pays for both.
	incoming := foreignTx(1, wire.NewTxOut(100_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey),
		wire.NewTxOut(5_000_000, receiveAt(t, w, keys.Receive, 15).ScriptPubKey))
	if _, err := w.Propose(ctx, SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7), Amount: 1000}}, FeeRate: 1000}); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("propose without tip: %v", err)
	}
	fakeBlock(t, w) // a tip
	if _, err := w.recordTx(incoming); err != nil {
		t.Fatal(err)
	}
	if h := historyOf(t, w, incoming.TxHash()); !h.CPFPable || h.Replaceable || h.Fee != 0 {
		t.Fatalf("incoming %+v", h)
	}
	cp, err := w.ProposeCPFP(ctx, incoming.TxHash(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	pv := txVSize(incoming)
	if cp.Kind != "cpfp" || cp.Parent != incoming.TxHash().String() || len(cp.Inputs) != 1 || cp.Inputs[0].Amount != 5_000_000 ||
		cp.Fee != int64(chain.FeeRate(10_000).Fee(pv+cp.VSize)) || cp.PackageFeeRate < 10_000 || cp.Sent != 0 {
		t.Fatalf("child %+v (parent %d vB)", cp, pv)
	}
	signAll(t, cp.PSBT, k)

	// Our own unconfirmed send: its fee counts.
	fakeBlock(t, w, incoming)
	p, parent := sendSigned(t, w, k, SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7), Amount: 2_000_000}}, FeeRate: 1000})
	if _, err := w.ProposeCPFP(ctx, parent.TxHash(), 500); !errors.Is(err, ErrFeeRateTooLow) {
		t.Fatalf("cpfp below the relay fee: %v", err)
	}
	if _, err := w.ProposeCPFP(ctx, parent.TxHash(), feeRateOf(p.Fee, txVSize(parent))); !errors.Is(err, ErrFeeRateTooLow) {
		t.Fatalf("cpfp at the parent's own rate: %v", err)
	}
	const rate = 20_000
	cp, err = w.ProposeCPFP(ctx, parent.TxHash(), rate)
	if err != nil {
		t.Fatal(err)
	}
	pv = txVSize(parent)
	_, child := signAll(t, cp.PSBT, k)
	want := chain.FeeRate(rate)
	if got := feeRateOf(p.Fee+cp.Fee, pv+cp.VSize); got != cp.PackageFeeRate || got < want || got > want+100 {
		t.Fatalf("package rate %v (reported %v), want %v", got, cp.PackageFeeRate, want)
	}
	if real := feeRateOf(p.Fee+cp.Fee, pv+txVSize(child)); real < want {
		t.Fatalf("signed package rate %v below %v", real, want)
	}
	if _, err := w.recordTx(child); err != nil {
		t.Fatal(err)
	}
	// A bump of the parent now has to pay for the child too (BIP125 rule 3).
	bp, err := w.ProposeBump(ctx, parent.TxHash(), feeRateOf(p.Fee, pv)+1000)
	if err != nil {
		t.Fatal(err)
	}
	if bp.Fee < p.Fee+cp.Fee+bp.VSize {
		t.Fatalf("bump fee %d does not cover parent %d + child %d + %d vB", bp.Fee, p.Fee, cp.Fee, bp.VSize)
	}
}

func TestEstimateFeeSources(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, 1)
	for _, tc := range []struct {
		name   string
		model  func(context.Context, uint32) (chain.FeeRate, error)
		want   FeeEstimate
		others int
	}{
		{"model", func(context.Context, uint32) (chain.FeeRate, error) { return 7000, nil },
			FeeEstimate{Target: 6, Rate: 7000, Source: "model"}, 1},
		{"model below minimum", func(context.Context, uint32) (chain.FeeRate, error) { return 10, nil },
			FeeEstimate{Target: 6, Rate: 1000, Source: "model"}, 1},
		{"model without features", func(context.Context, uint32) (chain.FeeRate, error) { return 0, chain.ErrFeeUnavailable },
			FeeEstimate{Target: 6, Rate: 1000, Source: "minimum"}, 0},
		{"model absurd", func(context.Context, uint32) (chain.FeeRate, error) { return chain.MaxSaneFeeRate + 1, nil },
			FeeEstimate{Target: 6, Rate: 1000, Source: "minimum"}, 0},
		{"none", nil, FeeEstimate{Target: 6, Rate: 1000, Source: "minimum"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(Config{DB: openDB(t), Network: keys.Regtest, Descriptors: []string{k.descriptor(t, keys.PurposeBIP84)},
				FeeModel: tc.model, Log: quiet})
			if err != nil {
				t.Fatal(err)
			}
			est, err := w.EstimateFee(ctx, 0)
			if err != nil || est.Rate != tc.want.Rate || est.Source != tc.want.Source || est.Target != 6 || len(est.Others) != tc.others {
				t.Fatalf("estimate %+v, %v; want %+v with %d others", est, err, tc.want, tc.others)
			}
		})
	}
}
