package sign

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

type bip174Vectors struct {
	Xprv           string `json:"xprv"`
	Unsigned       string `json:"unsigned"`
	UnsignedBase64 string `json:"unsigned_base64"`
	Signers        []struct {
		Keys   []string `json:"keys"`
		Paths  []string `json:"paths"`
		Signed string   `json:"signed"`
	} `json:"signers"`
	Combined    string `json:"combined"`
	Finalized   string `json:"finalized"`
	Extracted   string `json:"extracted"`
	FailSigners []struct {
		Case string `json:"case"`
		PSBT string `json:"psbt"`
	} `json:"fail_signer"`
}

func loadJSON(t *testing.T, name string, v any) { loadJSONTB(t, name, v) }

func loadJSONTB(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bip174Signer(t *testing.T) (*bip174Vectors, *Signer, *hdkeychain.ExtendedKey) {
	var v bip174Vectors
	loadJSON(t, "bip174_signer.json", &v)
	m, err := hdkeychain.NewKeyFromString(v.Xprv)
	if err != nil {
		t.Fatal(err)
	}
	return &v, newSigner(t, m, Policy{}, nil), m
}

// TestBIP174Signer: the PSBT of the BIP174 signer vectors, signed with the given xprv, must give
// the BIP's signed PSBTs byte for byte (each signer restricted to its two keys), and with all
// four keys the combiner's PSBT; finalizing must give the extractor's transaction.
func TestBIP174Signer(t *testing.T) {
	v, s, m := bip174Signer(t)
	if got := s.FingerprintHex(); got != "d90c6a4f" {
		t.Fatalf("fingerprint %s, want d90c6a4f", got)
	}
	unsigned := unhex(t, v.Unsigned)

	for n, sg := range v.Signers {
		allowed := map[string]bool{}
		for k, ps := range sg.Paths {
			allowed[ps] = true
			// The BIP's WIF keys are the keys at these paths of the xprv.
			wif, err := btcutil.DecodeWIF(sg.Keys[k])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(deriveKey(t, m, mustPath(t, ps)).Serialize(), wif.PrivKey.Serialize()) {
				t.Fatalf("signer %d: key %s is not the xprv's %s", n, sg.Keys[k], ps)
			}
		}
		res, err := s.Sign(unsigned, SignOptions{KeyFilter: func(p Path) bool { return allowed[p.String()] }})
		if err != nil {
			t.Fatalf("signer %d: %v", n, err)
		}
		got, _ := res.Bytes()
		if hex.EncodeToString(got) != sg.Signed {
			t.Errorf("signer %d:\n got  %x\n want %s", n, got, sg.Signed)
		}
		if len(res.Signed) != 2 {
			t.Errorf("signer %d: signed inputs %v, want [0 1]", n, res.Signed)
		}
	}

	// All keys at once: what the combiner makes of the two signers' PSBTs. Base64 input too.
	for _, in := range [][]byte{unsigned, []byte(v.UnsignedBase64 + "\n")} {
		res, err := s.Sign(in, SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Same content; btcd orders partial signatures by public key where Core orders them
		// by key id, so both sides are compared in btcd's serialization.
		got, want := canonical(t, res.Packet), canonicalHex(t, v.Combined)
		if !bytes.Equal(got, want) {
			t.Errorf("all keys:\n got  %x\n want %x", got, want)
		}
		if res.Summary.Fee != 10_000 || res.Summary.Sent != 249_990_000 || res.Summary.Change != 0 {
			t.Errorf("summary fee %d sent %d change %d", res.Summary.Fee, res.Summary.Sent, res.Summary.Change)
		}
	}

	// Finalize and extract.
	res, err := s.Sign(unsigned, SignOptions{Finalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Tx == nil {
		t.Fatalf("not complete: incomplete inputs %v", res.Incomplete)
	}
	var txb bytes.Buffer
	if err := res.Tx.Serialize(&txb); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(txb.Bytes()) != v.Extracted {
		t.Errorf("extracted:\n got  %x\n want %s", txb.Bytes(), v.Extracted)
	}
	got, _ := res.Bytes()
	if hex.EncodeToString(got) != v.Finalized {
		t.Errorf("finalized:\n got  %x\n want %s", got, v.Finalized)
	}
	p, _ := Parse(unsigned)
	prev := []*wire.TxOut{p.Inputs[0].NonWitnessUtxo.TxOut[0], p.Inputs[1].WitnessUtxo}
	verifyTx(t, res.Tx, prev)
}

// TestBIP174FailSigner: the BIP's "fails signer checks" PSBTs are refused, naming the input.
func TestBIP174FailSigner(t *testing.T) {
	v, s, _ := bip174Signer(t)
	want := []struct {
		input int
		err   error
	}{
		{0, ErrLegacyNoPrevTx},
		{0, ErrScriptMismatch},
		{1, ErrScriptMismatch},
		{1, ErrScriptMismatch},
	}
	for n, c := range v.FailSigners {
		res, err := s.Sign(unhex(t, c.PSBT), SignOptions{AllowForeignInputs: true})
		var ie *InputError
		if res != nil || !errors.As(err, &ie) || ie.Index != want[n].input || !errors.Is(err, want[n].err) {
			t.Errorf("%s: got %v, want input %d: %v", c.Case, err, want[n].input, want[n].err)
			continue
		}
		t.Logf("%s: %v", c.Case, err)
	}
}

func canonical(t *testing.T, p *psbt.Packet) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func canonicalHex(t *testing.T, s string) []byte {
	t.Helper()
	p, err := Parse(unhex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return canonical(t, p)
}

type bip341Vectors struct {
	KeyPathSpending []struct {
		Given struct {
			RawUnsignedTx string `json:"rawUnsignedTx"`
			UtxosSpent    []struct {
				ScriptPubKey string `json:"scriptPubKey"`
				AmountSats   int64  `json:"amountSats"`
			} `json:"utxosSpent"`
		} `json:"given"`
		InputSpending []struct {
			Given struct {
				TxinIndex       int     `json:"txinIndex"`
				InternalPrivkey string  `json:"internalPrivkey"`
				MerkleRoot      *string `json:"merkleRoot"`
				HashType        uint32  `json:"hashType"`
			} `json:"given"`
			Intermediary struct {
				InternalPubkey string `json:"internalPubkey"`
				TweakedPrivkey string `json:"tweakedPrivkey"`
				SigHash        string `json:"sigHash"`
			} `json:"intermediary"`
			Expected struct {
				Witness []string `json:"witness"`
			} `json:"expected"`
		} `json:"inputSpending"`
	} `json:"keyPathSpending"`
}

// TestBIP341KeyPath: the sighash the signer computes (txscript's BIP341 digest over all
// prevouts, fed the way Sign feeds it) and the signature it makes (tweak + BIP340 with all-zero
// aux randomness) match the BIP341 keyPathSpending vectors, all sighash types included.
func TestBIP341KeyPath(t *testing.T) {
	var v bip341Vectors
	loadJSON(t, "bip341_keypath.json", &v)
	for _, kp := range v.KeyPathSpending {
		tx := wire.NewMsgTx(2)
		if err := tx.Deserialize(bytes.NewReader(unhex(t, kp.Given.RawUnsignedTx))); err != nil {
			t.Fatal(err)
		}
		fetcher := txscript.NewMultiPrevOutFetcher(nil)
		for i, u := range kp.Given.UtxosSpent {
			fetcher.AddPrevOut(tx.TxIn[i].PreviousOutPoint, wire.NewTxOut(u.AmountSats, unhex(t, u.ScriptPubKey)))
		}
		hashes := txscript.NewTxSigHashes(tx, fetcher)
		for _, in := range kp.InputSpending {
			g := in.Given
			ht := txscript.SigHashType(g.HashType)
			priv, pub := btcec.PrivKeyFromBytes(unhex(t, g.InternalPrivkey))
			if got := hex.EncodeToString(pub.SerializeCompressed()[1:]); got != in.Intermediary.InternalPubkey {
				t.Fatalf("input %d: internal pubkey %s", g.TxinIndex, got)
			}
			var root []byte
			if g.MerkleRoot != nil {
				root = unhex(t, *g.MerkleRoot)
			}
			tweaked, err := tweakTaproot(priv, root)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(tweaked.Serialize()); got != in.Intermediary.TweakedPrivkey {
				t.Errorf("input %d: tweaked key %s, want %s", g.TxinIndex, got, in.Intermediary.TweakedPrivkey)
			}
			hash, err := txscript.CalcTaprootSignatureHash(hashes, ht, tx, g.TxinIndex, fetcher)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(hash); got != in.Intermediary.SigHash {
				t.Errorf("input %d: sighash %s, want %s", g.TxinIndex, got, in.Intermediary.SigHash)
			}
			sig, err := signTaproot(priv, root, hash, ht, [32]byte{})
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sig); got != in.Expected.Witness[0] {
				t.Errorf("input %d (hashType %d): signature\n got  %s\n want %s", g.TxinIndex, g.HashType, got, in.Expected.Witness[0])
			}
			// And the script interpreter accepts it as the witness of this input.
			txc := tx.Copy()
			txc.TxIn[g.TxinIndex].Witness = wire.TxWitness{sig}
			prev := fetcher.FetchPrevOutput(tx.TxIn[g.TxinIndex].PreviousOutPoint)
			vm, err := txscript.NewEngine(prev.PkScript, txc, g.TxinIndex, txscript.StandardVerifyFlags, nil,
				txscript.NewTxSigHashes(txc, fetcher), prev.Value, fetcher)
			if err != nil {
				t.Fatal(err)
			}
			if err := vm.Execute(); err != nil {
				t.Errorf("input %d: engine: %v", g.TxinIndex, err)
			}
		}
	}
}
