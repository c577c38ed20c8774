package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// zeroReader gives all-zero BIP340 aux randomness: deterministic signatures in tests.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// testMaster returns a testnet master key made from a seed of 32 copies of b.
func testMaster(t testing.TB, b byte) *hdkeychain.ExtendedKey {
	t.Helper()
	m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{b}, 32), &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fingerprint(t testing.TB, m *hdkeychain.ExtendedKey) uint32 {
	t.Helper()
	pub, err := m.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4])
}

func mustPath(t testing.TB, s string) Path {
	t.Helper()
	p, err := ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deriveKey(t testing.TB, m *hdkeychain.ExtendedKey, path Path) *btcec.PrivateKey {
	t.Helper()
	k := m
	for _, i := range path {
		var err error
		if k, err = k.Derive(i); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := k.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func newSigner(t testing.TB, m *hdkeychain.ExtendedKey, pol Policy, h History) *Signer {
	t.Helper()
	s, err := New(Config{Master: m, Policy: pol, History: h, Rand: zeroReader{},
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func p2wpkhScript(pub *btcec.PublicKey) []byte {
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
	return s
}

func p2pkhScript(pub *btcec.PublicKey) []byte {
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
		AddData(btcutil.Hash160(pub.SerializeCompressed())).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	return s
}

func p2shScript(redeem []byte) []byte {
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
	return s
}

func p2wshScript(witnessScript []byte) []byte {
	h := sha256.Sum256(witnessScript)
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
	return s
}

func p2trScript(t testing.TB, internal *btcec.PublicKey, merkleRoot []byte) []byte {
	t.Helper()
	s, err := txscript.PayToTaprootScript(txscript.ComputeTaprootOutputKey(internal, merkleRoot))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fundingTx is a made-up previous transaction paying amount to pkScript at output 1.
func fundingTx(tag byte, pkScript []byte, amount int64) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{tag, 0xaa}, Index: uint32(tag)}, []byte{txscript.OP_TRUE}, nil))
	tx.AddTxOut(wire.NewTxOut(1000, []byte{txscript.OP_RETURN}))
	tx.AddTxOut(wire.NewTxOut(amount, pkScript))
	return tx
}

// spendIn is an input of a test PSBT.
type spendIn struct {
	prev       *wire.MsgTx // funding transaction; the spent output is index 1
	witness    bool        // put WITNESS_UTXO
	nonWitness bool        // put NON_WITNESS_UTXO
	setup      func(*psbt.PInput)
}

// spendOut is an output of a test PSBT.
type spendOut struct {
	value  int64
	script []byte
	setup  func(*psbt.POutput)
}

func buildPSBT(t testing.TB, ins []spendIn, outs []spendOut) *psbt.Packet {
	t.Helper()
	tx := wire.NewMsgTx(2)
	for _, in := range ins {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: in.prev.TxHash(), Index: 1}, nil, nil))
	}
	for _, o := range outs {
		tx.AddTxOut(wire.NewTxOut(o.value, o.script))
	}
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range ins {
		if in.witness {
			p.Inputs[i].WitnessUtxo = in.prev.TxOut[1]
		}
		if in.nonWitness {
			p.Inputs[i].NonWitnessUtxo = in.prev
		}
		if in.setup != nil {
			in.setup(&p.Inputs[i])
		}
	}
	for j, o := range outs {
		if o.setup != nil {
			o.setup(&p.Outputs[j])
		}
	}
	return p
}

func serialize(t testing.TB, p *psbt.Packet) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func bip32(fp uint32, path Path, pub *btcec.PublicKey) *psbt.Bip32Derivation {
	return &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fp, Bip32Path: path}
}

func tapBip32(fp uint32, path Path, pub *btcec.PublicKey) *psbt.TaprootBip32Derivation {
	return &psbt.TaprootBip32Derivation{XOnlyPubKey: schnorr.SerializePubKey(pub), MasterKeyFingerprint: fp, Bip32Path: path}
}

// verifyTx runs every input of tx through btcd's script interpreter.
func verifyTx(t testing.TB, tx *wire.MsgTx, prevOuts []*wire.TxOut) {
	t.Helper()
	if err := verifyTxErr(tx, prevOuts); err != nil {
		t.Fatal(err)
	}
}

func verifyTxErr(tx *wire.MsgTx, prevOuts []*wire.TxOut) error {
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range tx.TxIn {
		fetcher.AddPrevOut(in.PreviousOutPoint, prevOuts[i])
	}
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i := range tx.TxIn {
		vm, err := txscript.NewEngine(prevOuts[i].PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prevOuts[i].Value, fetcher)
		if err != nil {
			return fmt.Errorf("input %d: engine: %v", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("input %d: script failed: %v", i, err)
		}
	}
	return nil
}
