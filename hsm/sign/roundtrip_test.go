package sign

import (
	"bytes"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// externalScript is a P2WPKH output of someone else.
func externalScript(t testing.TB) []byte {
	return p2wpkhScript(deriveKey(t, testMaster(t, 0xee), Path{0}).PubKey())
}

// p2wpkhSpend builds a 1-input 2-output P2WPKH spend from master m: pay to an external output,
// change to m/84'/1'/0'/1/0.
func p2wpkhSpend(t testing.TB, m *testMasterKey, in, pay, change int64) *psbt.Packet {
	fp := m.fp
	inPath, chPath := mustPath(t, "m/84'/1'/0'/0/0"), mustPath(t, "m/84'/1'/0'/1/0")
	inKey, chKey := deriveKey(t, m.k, inPath).PubKey(), deriveKey(t, m.k, chPath).PubKey()
	prev := fundingTx(1, p2wpkhScript(inKey), in)
	return buildPSBT(t,
		[]spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
			pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(fp, inPath, inKey)}
		}}},
		[]spendOut{
			{value: pay, script: externalScript(t)},
			{value: change, script: p2wpkhScript(chKey), setup: func(po *psbt.POutput) {
				po.Bip32Derivation = []*psbt.Bip32Derivation{bip32(fp, chPath, chKey)}
			}},
		})
}

// p2trSpend builds a 1-input 2-output BIP86 P2TR spend (or, with a merkle root, a key-path spend
// of an output that also commits to a script tree).
func p2trSpend(t testing.TB, m *testMasterKey, in, pay, change int64, merkleRoot []byte) *psbt.Packet {
	fp := m.fp
	inPath, chPath := mustPath(t, "m/86'/1'/0'/0/0"), mustPath(t, "m/86'/1'/0'/1/0")
	inKey, chKey := deriveKey(t, m.k, inPath).PubKey(), deriveKey(t, m.k, chPath).PubKey()
	prev := fundingTx(2, p2trScript(t, inKey, merkleRoot), in)
	return buildPSBT(t,
		[]spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
			pi.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{tapBip32(fp, inPath, inKey)}
			pi.TaprootInternalKey = schnorr.SerializePubKey(inKey)
			pi.TaprootMerkleRoot = merkleRoot
		}}},
		[]spendOut{
			{value: pay, script: externalScript(t)},
			{value: change, script: p2trScript(t, chKey, nil), setup: func(po *psbt.POutput) {
				po.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{tapBip32(fp, chPath, chKey)}
				po.TaprootInternalKey = schnorr.SerializePubKey(chKey)
			}},
		})
}

type testMasterKey struct {
	k  *hdkeychain.ExtendedKey
	fp uint32
}

func newTestMaster(t testing.TB, b byte) *testMasterKey {
	k := testMaster(t, b)
	return &testMasterKey{k: k, fp: fingerprint(t, k)}
}

func prevOuts(p *psbt.Packet) []*wire.TxOut {
	out := make([]*wire.TxOut, len(p.Inputs))
	for i, in := range p.Inputs {
		if in.WitnessUtxo != nil {
			out[i] = in.WitnessUtxo
		} else {
			out[i] = in.NonWitnessUtxo.TxOut[p.UnsignedTx.TxIn[i].PreviousOutPoint.Index]
		}
	}
	return out
}

func signAndVerify(t *testing.T, s *Signer, p *psbt.Packet) *Result {
	t.Helper()
	prev := prevOuts(p)
	res, err := s.Sign(serialize(t, p), SignOptions{Finalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Tx == nil {
		t.Fatalf("not complete, incomplete inputs %v", res.Incomplete)
	}
	verifyTx(t, res.Tx, prev)
	return res
}

func TestRoundTripP2WPKH(t *testing.T) {
	m := newTestMaster(t, 1)
	s := newSigner(t, m.k, Policy{DailyLimit: 1_000_000, MaxFeePercent: 5, MaxFeeRate: 50}, &MemHistory{})
	res := signAndVerify(t, s, p2wpkhSpend(t, m, 1_000_000, 400_000, 598_000))
	sum := res.Summary
	if sum.Fee != 2_000 || sum.Sent != 400_000 || sum.Change != 598_000 || sum.Spend != 402_000 {
		t.Errorf("summary: fee %d sent %d change %d spend %d", sum.Fee, sum.Sent, sum.Change, sum.Spend)
	}
	if !sum.Outputs[1].Change || sum.Outputs[1].Path != "m/84'/1'/0'/1/0" || sum.Outputs[0].Change {
		t.Errorf("outputs: %+v", sum.Outputs)
	}
	// The interpreter really checks: a flipped bit in the signature fails.
	bad := res.Tx.Copy()
	bad.TxIn[0].Witness[0][10] ^= 1
	if err := verifyTxErr(bad, prevOuts(p2wpkhSpend(t, m, 1_000_000, 400_000, 598_000))); err == nil {
		t.Error("corrupted signature verified")
	}
	// Estimated vsize vs the real one (one 71/72-byte signature: within a vbyte).
	if real := (res.Tx.SerializeSizeStripped()*3 + res.Tx.SerializeSize() + 3) / 4; sum.VSize < int64(real) || sum.VSize > int64(real)+1 {
		t.Errorf("vsize estimate %d, real %d", sum.VSize, real)
	}
}

func TestRoundTripP2TR(t *testing.T) {
	m := newTestMaster(t, 2)
	s := newSigner(t, m.k, Policy{MaxFeeRate: 50}, nil)
	res := signAndVerify(t, s, p2trSpend(t, m, 1_000_000, 400_000, 598_000, nil))
	if !res.Summary.Outputs[1].Change {
		t.Errorf("taproot change not recognised: %+v", res.Summary.Outputs[1])
	}
	if real := (res.Tx.SerializeSizeStripped()*3 + res.Tx.SerializeSize() + 3) / 4; res.Summary.VSize != int64(real) {
		t.Errorf("vsize estimate %d, real %d", res.Summary.VSize, real)
	}

	// Key path of an output that also commits to a script tree: tweak with the merkle root.
	leaf := txscript.NewBaseTapLeaf([]byte{txscript.OP_TRUE})
	root := leaf.TapHash()
	signAndVerify(t, s, p2trSpend(t, m, 1_000_000, 400_000, 598_000, root[:]))

	// A wrong merkle root (the output commits to the tree, the PSBT says BIP86) is refused
	// before signing.
	p := p2trSpend(t, m, 1_000_000, 400_000, 598_000, root[:])
	p.Inputs[0].TaprootMerkleRoot = nil
	if _, err := s.Sign(serialize(t, p), SignOptions{}); !isInputErr(err, 0, ErrScriptMismatch) {
		t.Errorf("wrong merkle root: %v", err)
	}
}

func isInputErr(err error, i int, target error) bool {
	ie, ok := err.(*InputError)
	return ok && ie.Index == i && errors.Is(ie, target)
}

// TestRoundTripMultisig: a 2-of-3 P2WSH spend; our box adds its partial signature, a cosigner
// adds the second, the result finalizes and the script interpreter accepts it.
func TestRoundTripMultisig(t *testing.T) {
	box, co1, co2 := newTestMaster(t, 3), newTestMaster(t, 4), newTestMaster(t, 5)
	path := mustPath(t, "m/48'/1'/0'/2'/0/0")
	keys := []*btcec.PublicKey{
		deriveKey(t, box.k, path).PubKey(), deriveKey(t, co1.k, path).PubKey(), deriveKey(t, co2.k, path).PubKey(),
	}
	b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
	for _, k := range keys {
		b.AddData(k.SerializeCompressed())
	}
	ws, err := b.AddOp(txscript.OP_3).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		t.Fatal(err)
	}
	prev := fundingTx(3, p2wshScript(ws), 2_000_000)
	p := buildPSBT(t,
		[]spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
			pi.WitnessScript = ws
			for n, m := range []*testMasterKey{box, co1, co2} {
				pi.Bip32Derivation = append(pi.Bip32Derivation, bip32(m.fp, path, keys[n]))
			}
		}}},
		[]spendOut{{value: 1_990_000, script: externalScript(t)}})
	prevs := prevOuts(p)

	sBox := newSigner(t, box.k, Policy{MaxFeePercent: 1}, nil)
	res, err := sBox.Sign(serialize(t, p), SignOptions{Finalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || len(res.Incomplete) != 1 || len(res.Packet.Inputs[0].PartialSigs) != 1 {
		t.Fatalf("after our signature: complete %v incomplete %v sigs %d", res.Complete, res.Incomplete, len(res.Packet.Inputs[0].PartialSigs))
	}
	if !bytes.Equal(res.Packet.Inputs[0].PartialSigs[0].PubKey, keys[0].SerializeCompressed()) {
		t.Fatal("partial signature is not ours")
	}
	half, _ := res.Bytes()

	// Signing again with our key adds nothing (and does not fail).
	again, err := sBox.Sign(half, SignOptions{})
	if err != nil || len(again.Signed) != 0 {
		t.Fatalf("re-sign: %v, signed %v", err, again.Signed)
	}

	sCo := newSigner(t, co2.k, Policy{}, nil)
	res, err = sCo.Sign(half, SignOptions{Finalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete {
		t.Fatalf("not complete: %v", res.Incomplete)
	}
	verifyTx(t, res.Tx, prevs)
}

// TestRoundTripMixed: one transaction spending P2PKH, P2SH-P2WPKH, P2WPKH, P2SH-P2WSH (1-of-1
// multisig) and P2TR inputs of ours; BIP143, legacy and BIP341 sighashes over mixed prevouts.
func TestRoundTripMixed(t *testing.T) {
	m := newTestMaster(t, 6)
	fp := m.fp
	var ins []spendIn
	add := func(tag byte, path string, script func(*btcec.PublicKey) []byte, setup func(*psbt.PInput, Path, *btcec.PublicKey)) {
		p := mustPath(t, path)
		k := deriveKey(t, m.k, p).PubKey()
		prev := fundingTx(tag, script(k), 100_000*int64(tag))
		ins = append(ins, spendIn{prev: prev, witness: true, nonWitness: true, setup: func(pi *psbt.PInput) { setup(pi, p, k) }})
	}
	ecdsaDeriv := func(pi *psbt.PInput, p Path, k *btcec.PublicKey) {
		pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(fp, p, k)}
	}
	add(1, "m/44'/1'/0'/0/1", p2pkhScript, ecdsaDeriv)
	add(2, "m/49'/1'/0'/0/1", func(k *btcec.PublicKey) []byte { return p2shScript(p2wpkhScript(k)) },
		func(pi *psbt.PInput, p Path, k *btcec.PublicKey) {
			pi.RedeemScript = p2wpkhScript(k)
			ecdsaDeriv(pi, p, k)
		})
	add(3, "m/84'/1'/0'/0/1", p2wpkhScript, ecdsaDeriv)
	msig := func(k *btcec.PublicKey) []byte {
		s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_1).AddData(k.SerializeCompressed()).
			AddOp(txscript.OP_1).AddOp(txscript.OP_CHECKMULTISIG).Script()
		return s
	}
	add(4, "m/48'/1'/0'/1'/0/1", func(k *btcec.PublicKey) []byte { return p2shScript(p2wshScript(msig(k))) },
		func(pi *psbt.PInput, p Path, k *btcec.PublicKey) {
			pi.WitnessScript = msig(k)
			pi.RedeemScript = p2wshScript(msig(k))
			ecdsaDeriv(pi, p, k)
		})
	add(5, "m/86'/1'/0'/0/1", func(k *btcec.PublicKey) []byte { return p2trScript(t, k, nil) },
		func(pi *psbt.PInput, p Path, k *btcec.PublicKey) {
			pi.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{tapBip32(fp, p, k)}
		})
	// Legacy P2PKH: no witness UTXO there, only the previous transaction. The P2WPKH input
	// too comes with only the previous transaction: the signer adds its witness UTXO.
	ins[0].witness = false
	ins[2].witness = false
	p := buildPSBT(t, ins, []spendOut{{value: 1_490_000, script: externalScript(t)}})
	s := newSigner(t, m.k, Policy{}, nil)
	res := signAndVerify(t, s, p)
	if res.Summary.Inputs[0].Type != P2PKH || res.Summary.Inputs[1].Type != P2SHP2WPK ||
		res.Summary.Inputs[3].Type != P2SHP2WSH || res.Summary.Inputs[4].Type != P2TR {
		t.Errorf("types: %+v", res.Summary.Inputs)
	}
	if real := (res.Tx.SerializeSizeStripped()*3 + res.Tx.SerializeSize() + 3) / 4; res.Summary.VSize < int64(real) || res.Summary.VSize > int64(real)+2 {
		t.Errorf("vsize estimate %d, real %d", res.Summary.VSize, real)
	}
}
