package wallet

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/storage"
)

func wpkh(b byte) []byte {
	s := make([]byte, 22)
	s[0], s[1], s[2] = 0, 20, b
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string) (*Store, *storage.DB) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(db, Scripts{
		string(wpkh(1)): {Path: keys.Path{84 | 1<<31, 1 << 31, 1 << 31, 0, 0}, Type: keys.ScriptWPKH},
		string(wpkh(2)): {Path: keys.Path{84 | 1<<31, 1 << 31, 1 << 31, 1, 0}, Type: keys.ScriptWPKH},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// payTx spends the outpoints and pays the (script, value) pairs.
func payTx(ins []wire.OutPoint, outs ...any) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for _, in := range ins {
		tx.AddTxIn(wire.NewTxIn(&in, nil, nil))
	}
	for i := 0; i < len(outs); i += 2 {
		tx.AddTxOut(wire.NewTxOut(int64(outs[i+1].(int)), outs[i].([]byte)))
	}
	return tx
}

func block(h int32, prev chainhash.Hash, txs ...*wire.MsgTx) Block {
	hash := chainhash.DoubleHashH([]byte{byte(h), prev[0], prev[1], byte(len(txs))})
	return Block{Height: h, Hash: hash, PrevHash: prev, Time: t0.Add(time.Duration(h) * time.Minute), Txs: txs}
}

func wantBalance(t *testing.T, s *Store, conf, unconf int64) {
	t.Helper()
	b, err := s.Balance()
	if err != nil {
		t.Fatal(err)
	}
	if b.Confirmed != conf || b.Unconfirmed != unconf {
		t.Fatalf("balance %+v, want confirmed %d unconfirmed %d", b, conf, unconf)
	}
}

func TestStoreLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, db := openStore(t, path)

	foreign := wpkh(9)
	fund := payTx([]wire.OutPoint{{Index: 7}}, wpkh(1), 100_000, foreign, 5_000)
	if mine, err := s.AddMempoolTx(fund, t0); err != nil || !mine {
		t.Fatalf("AddMempoolTx = %v, %v", mine, err)
	}
	if mine, _ := s.AddMempoolTx(payTx(nil, foreign, 1), t0); mine {
		t.Fatal("foreign tx reported as the wallet's")
	}
	wantBalance(t, s, 0, 100_000)

	b100 := block(100, chainhash.Hash{}, fund)
	if n, err := s.ConnectBlock(b100); err != nil || n != 1 {
		t.Fatalf("ConnectBlock = %d, %v", n, err)
	}
	wantBalance(t, s, 100_000, 0)

	// Spend to a foreign script with change to ourselves, confirmed in the next block.
	spend := payTx([]wire.OutPoint{{Hash: fund.TxHash(), Index: 0}}, foreign, 60_000, wpkh(2), 39_000)
	if _, err := s.AddMempoolTx(spend, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 0, 39_000)
	b101 := block(101, b100.Hash, spend)
	if _, err := s.ConnectBlock(b101); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 39_000, 0)

	// A block that does not extend the tip is refused.
	if _, err := s.ConnectBlock(block(103, b101.Hash)); !errors.Is(err, ErrNotTip) {
		t.Fatalf("gap: err = %v, want ErrNotTip", err)
	}

	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].TxID != spend.TxHash().String() || h[0].Net() != -61_000 || h[0].Height != 101 ||
		h[1].Net() != 100_000 || h[1].Height != 100 {
		t.Fatalf("history %+v", h)
	}

	// Persisted across a reopen.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, db = openStore(t, path)
	defer db.Close()
	wantBalance(t, s, 39_000, 0)
	if tip, ok, err := s.Tip(); err != nil || !ok || tip.Height != 101 {
		t.Fatalf("tip %+v %v %v", tip, ok, err)
	}

	// Reorg: undo 101, the spend is unconfirmed again; undo 100, everything is.
	if err := s.DisconnectBlock(b100.Hash); !errors.Is(err, ErrNotTip) {
		t.Fatalf("disconnect non-tip: %v", err)
	}
	if err := s.DisconnectBlock(b101.Hash); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 0, 39_000)
	outs, _ := s.Outputs(false)
	for _, o := range outs {
		if o.OutPoint[:64] == fund.TxHash().String() && (o.Height != 100 || o.SpentBy == "" || o.SpentHeight != 0) {
			t.Fatalf("funding output after undo: %+v", o)
		}
	}
	if err := s.DisconnectBlock(b100.Hash); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Tip(); ok {
		t.Fatal("tip left after undoing the birthday block")
	}
	h, _ = s.History()
	for _, e := range h {
		if e.Height != 0 {
			t.Fatalf("entry still confirmed after reorg: %+v", e)
		}
	}

	// The other branch confirms both at a new height.
	c100 := block(100, chainhash.Hash{1}, fund, spend)
	if n, err := s.ConnectBlock(c100); err != nil || n != 2 {
		t.Fatalf("ConnectBlock on the new branch = %d, %v", n, err)
	}
	wantBalance(t, s, 39_000, 0)
}

func TestStoreRBFReplacesSpender(t *testing.T) {
	s, db := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	fund := payTx([]wire.OutPoint{{Index: 1}}, wpkh(1), 50_000)
	if _, err := s.ConnectBlock(block(10, chainhash.Hash{}, fund)); err != nil {
		t.Fatal(err)
	}
	op := wire.OutPoint{Hash: fund.TxHash(), Index: 0}
	first := payTx([]wire.OutPoint{op}, wpkh(9), 49_000)
	bump := payTx([]wire.OutPoint{op}, wpkh(9), 48_000)
	for _, tx := range []*wire.MsgTx{first, bump} {
		if _, err := s.AddMempoolTx(tx, t0); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := s.Outputs(false)
	if err != nil || len(outs) != 1 || outs[0].SpentBy != bump.TxHash().String() {
		t.Fatalf("outputs %+v, %v; want spent by the bump", outs, err)
	}
	wantBalance(t, s, 0, 0)
}

// TestStoreReplacementDropsDescendants: a bump that spends one of the original's two
// inputs replaces it; the original's change, the child that spent it, and the child's
// output leave the wallet, and the original's other input is unspent again.
func TestStoreReplacementDropsDescendants(t *testing.T) {
	s, db := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	fund := payTx([]wire.OutPoint{{Index: 1}}, wpkh(1), 50_000, wpkh(1), 30_000)
	if _, err := s.ConnectBlock(block(10, chainhash.Hash{}, fund)); err != nil {
		t.Fatal(err)
	}
	a, b := wire.OutPoint{Hash: fund.TxHash(), Index: 0}, wire.OutPoint{Hash: fund.TxHash(), Index: 1}
	orig := payTx([]wire.OutPoint{a, b}, wpkh(9), 60_000, wpkh(2), 19_000)
	child := payTx([]wire.OutPoint{{Hash: orig.TxHash(), Index: 1}}, wpkh(2), 18_000)
	bump := payTx([]wire.OutPoint{a}, wpkh(9), 45_000, wpkh(2), 4_000)
	for _, tx := range []*wire.MsgTx{orig, child} {
		if _, err := s.AddMempoolTx(tx, t0); err != nil {
			t.Fatal(err)
		}
	}
	wantBalance(t, s, 0, 18_000)
	if _, err := s.AddMempoolTx(bump, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 30_000, 4_000)
	for _, id := range []string{orig.TxHash().String(), child.TxHash().String()} {
		e, ok, err := s.Entry(id)
		if err != nil || !ok || e.ReplacedBy != bump.TxHash().String() {
			t.Fatalf("entry %s: %+v %v %v", id, e, ok, err)
		}
	}
	outs, _ := s.Outputs(false)
	for _, o := range outs {
		if id := o.OutPoint[:64]; id == orig.TxHash().String() || id == child.TxHash().String() {
			t.Fatalf("output of a replaced transaction left: %+v", o)
		}
	}
	// The original comes back (mined after all): the bump is the one replaced now.
	if _, err := s.ConnectBlock(block(11, mustTip(t, s), orig)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 19_000, 0)
	if e, _, _ := s.Entry(orig.TxHash().String()); e.ReplacedBy != "" || e.Height != 11 {
		t.Fatalf("original after it confirmed %+v", e)
	}
	if e, _, _ := s.Entry(bump.TxHash().String()); e.ReplacedBy != orig.TxHash().String() {
		t.Fatalf("bump after the original confirmed %+v", e)
	}
	// A late mempool copy of a confirmed transaction changes nothing.
	if _, err := s.AddMempoolTx(orig, t0); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, 19_000, 0)
}

func mustTip(t *testing.T, s *Store) chainhash.Hash {
	t.Helper()
	tip, ok, err := s.Tip()
	if err != nil || !ok {
		t.Fatal("no tip", err)
	}
	h, err := chainhash.NewHashFromStr(tip.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return *h
}
