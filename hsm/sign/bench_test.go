package sign

import (
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/txscript"
)

// The package benchmarks time a whole Sign call on a serialized PSBT: parse, checks, change
// proof, policy (with a history), key derivation from the master (5 levels), sighash, signature,
// signature check, zeroing, history record. Each anchor signs the same sighash directly with
// txscript and btcec from an already derived key: sighash midstate, sighash, signature.

var benchPolicy = Policy{DailyLimit: 10_000_000, MaxFeePercent: 5, MaxFeeRate: 100}

func BenchmarkSignP2WPKH(b *testing.B) {
	m := newTestMaster(b, 1)
	raw := serialize(b, p2wpkhSpend(b, m, 1_000_000, 400_000, 598_000)) // 1 in, 2 out
	s := newSigner(b, m.k, benchPolicy, &MemHistory{})
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Sign(raw, SignOptions{})
		if err != nil || len(res.Signed) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignP2WPKHRaw(b *testing.B) {
	m := newTestMaster(b, 1)
	p := p2wpkhSpend(b, m, 1_000_000, 400_000, 598_000)
	priv := deriveKey(b, m.k, mustPath(b, "m/84'/1'/0'/0/0"))
	tx, utxo := p.UnsignedTx, p.Inputs[0].WitnessUtxo
	fetcher := txscript.NewCannedPrevOutputFetcher(utxo.PkScript, utxo.Value)
	b.ReportAllocs()
	for b.Loop() {
		hashes := txscript.NewTxSigHashes(tx, fetcher)
		hash, err := txscript.CalcWitnessSigHash(utxo.PkScript, hashes, txscript.SigHashAll, tx, 0, utxo.Value)
		if err != nil {
			b.Fatal(err)
		}
		_ = append(ecdsa.Sign(priv, hash).Serialize(), byte(txscript.SigHashAll))
	}
}

func BenchmarkSignP2TR(b *testing.B) {
	m := newTestMaster(b, 2)
	raw := serialize(b, p2trSpend(b, m, 1_000_000, 400_000, 598_000, nil)) // 1 in, 2 out
	s := newSigner(b, m.k, benchPolicy, &MemHistory{})
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Sign(raw, SignOptions{})
		if err != nil || len(res.Signed) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignP2TRRaw(b *testing.B) {
	m := newTestMaster(b, 2)
	p := p2trSpend(b, m, 1_000_000, 400_000, 598_000, nil)
	priv := deriveKey(b, m.k, mustPath(b, "m/86'/1'/0'/0/0"))
	tx, utxo := p.UnsignedTx, p.Inputs[0].WitnessUtxo
	fetcher := txscript.NewCannedPrevOutputFetcher(utxo.PkScript, utxo.Value)
	b.ReportAllocs()
	for b.Loop() {
		hashes := txscript.NewTxSigHashes(tx, fetcher)
		hash, err := txscript.CalcTaprootSignatureHash(hashes, txscript.SigHashDefault, tx, 0, fetcher)
		if err != nil {
			b.Fatal(err)
		}
		sig, err := schnorr.Sign(txscript.TweakTaprootPrivKey(*priv, nil), hash, schnorr.CustomNonce([32]byte{}))
		if err != nil {
			b.Fatal(err)
		}
		_ = sig.Serialize()
	}
}

// BenchmarkDeriveSigningKey is the share of key derivation in the package benchmarks: the
// master to m/84'/1'/0'/0/0, as each Sign does for its key.
func BenchmarkDeriveSigningKey(b *testing.B) {
	m := newTestMaster(b, 1)
	path := mustPath(b, "m/84'/1'/0'/0/0")
	b.ReportAllocs()
	for b.Loop() {
		d := &deriver{master: m.k}
		priv, err := d.privKey(path)
		if err != nil {
			b.Fatal(err)
		}
		priv.Zero()
		d.zero()
	}
}
