package wallet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/storage"
)

// testKey is a test wallet's master key: the hsm/sign signer over it and its accounts.
type testKey struct {
	seed   []byte
	master *keys.XPrv
	signer *sign.Signer
}

// newTestKey makes a regtest master key from a fixed seed (32 copies of b).
func newTestKey(t testing.TB, b byte) *testKey {
	t.Helper()
	seed := bytes.Repeat([]byte{b}, 32)
	master, err := keys.NewMasterKey(seed, keys.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := hdkeychain.NewMaster(seed, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.New(sign.Config{Master: hd, Net: &chaincfg.RegressionNetParams})
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{seed: seed, master: master, signer: s}
}

// descriptor is the multipath descriptor of the key's account 0 for a single-key purpose.
func (k *testKey) descriptor(t testing.TB, p keys.Purpose) string {
	t.Helper()
	a, err := keys.NewAccount(k.master, p, keys.Regtest, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.MultipathDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// multisig is the wsh(sortedmulti(threshold, …)) descriptor of the keys' BIP48 accounts.
func multisig(t testing.TB, threshold int, ks ...*testKey) string {
	t.Helper()
	var cos []*keys.Account
	for _, k := range ks {
		a, err := keys.NewAccount(k.master, keys.PurposeBIP48, keys.Regtest, 0)
		if err != nil {
			t.Fatal(err)
		}
		cos = append(cos, a)
	}
	m, err := keys.NewMultisig(keys.Regtest, threshold, cos...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.MultipathDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// boxSigner adapts hsm/sign.Signer to the wallet's Signer, as the appliance adapts
// hsm.Custody.
type boxSigner struct{ s *sign.Signer }

func (b boxSigner) SignPSBT(_ context.Context, p []byte) ([]byte, error) {
	res, err := b.s.Sign(p, sign.SignOptions{})
	if err != nil {
		return nil, err
	}
	return res.Bytes()
}

var quiet = slog.New(slog.DiscardHandler)

func openDB(t testing.TB) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openWallet opens a wallet on db (a fresh one when nil) signed by k.
func openWallet(t testing.TB, db *storage.DB, k *testKey, descs ...string) *Wallet {
	t.Helper()
	if db == nil {
		db = openDB(t)
	}
	cfg := Config{DB: db, Network: keys.Regtest, Descriptors: descs, Log: quiet,
		RetryDelay: 200 * time.Millisecond, StatusInterval: 200 * time.Millisecond}
	if k != nil {
		cfg.Signer = boxSigner{k.signer}
	}
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// fakeBlock applies a block of txs on top of the wallet's tip (height 1 when it has none).
func fakeBlock(t testing.TB, w *Wallet, txs ...*wire.MsgTx) Block {
	t.Helper()
	tip, ok, err := w.store.Tip()
	if err != nil {
		t.Fatal(err)
	}
	b := Block{Height: 1, Time: t0}
	if ok {
		prev, _ := chainhash.NewHashFromStr(tip.Hash)
		b.Height, b.PrevHash = tip.Height+1, *prev
	}
	b.Hash = chainhash.DoubleHashH(append(b.PrevHash[:], byte(b.Height), byte(len(txs))))
	b.Txs = txs
	if _, err := w.applyBlock(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// foreignTx pays the outputs from a made-up outpoint of someone else.
func foreignTx(seed byte, outs ...*wire.TxOut) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: sha256.Sum256([]byte{seed}), Index: 3}, nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	return tx
}

// payTo is an output paying amount to address a.
func payTo(t testing.TB, w *Wallet, a string, amount int64) *wire.TxOut {
	t.Helper()
	pk, err := w.payScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(amount, pk)
}

// receiveAt is the wallet's receive (chain 0) or change (chain 1) address at index.
func receiveAt(t testing.TB, w *Wallet, c keys.Chain, index uint32) *keys.Address {
	t.Helper()
	a, err := w.keys.primary().chains[c].DeriveAddress(keys.Regtest, index)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// foreignAddress is a regtest P2WPKH address of nobody in the test.
func foreignAddress(t testing.TB, b byte) string {
	t.Helper()
	a, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{b}, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

// signAll signs a PSBT with each key in turn, finalizes it and extracts the transaction.
func signAll(t testing.TB, raw []byte, ks ...*testKey) (*psbt.Packet, *wire.MsgTx) {
	t.Helper()
	for _, k := range ks {
		res, err := k.signer.Sign(raw, sign.SignOptions{})
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		if raw, err = res.Bytes(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := parsePSBT(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := finalize(p); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(p, tx); err != nil {
		t.Fatalf("script check: %v", err)
	}
	return p, tx
}
