package sign

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// spend builds a P2WPKH spend of one input of value in (key m/84'/1'/0'/0/0) to outs.
func spend(t testing.TB, m *testMasterKey, in int64, outs ...spendOut) *psbt.Packet {
	inPath := mustPath(t, "m/84'/1'/0'/0/0")
	inKey := deriveKey(t, m.k, inPath).PubKey()
	prev := fundingTx(9, p2wpkhScript(inKey), in)
	return buildPSBT(t, []spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
		pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, inPath, inKey)}
	}}}, outs)
}

func extOut(t testing.TB, v int64) spendOut { return spendOut{value: v, script: externalScript(t)} }

// changeOut is an output to our key at path, with the given script maker and the derivation
// claiming (fp, path, claimed key).
func changeOut(t testing.TB, m *testMasterKey, path string, v int64) spendOut {
	p := mustPath(t, path)
	k := deriveKey(t, m.k, p).PubKey()
	return spendOut{value: v, script: p2wpkhScript(k), setup: func(po *psbt.POutput) {
		po.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, p, k)}
	}}
}

func TestPolicy(t *testing.T) {
	m := newTestMaster(t, 7)
	other := newTestMaster(t, 8)
	otherKey := deriveKey(t, other.k, mustPath(t, "m/84'/1'/0'/1/0")).PubKey()
	ourChangeKey := deriveKey(t, m.k, mustPath(t, "m/84'/1'/0'/1/0")).PubKey()
	std := Policy{DailyLimit: 1_000_000, MaxFeePercent: 5, MaxFeeRate: 50}

	type tc struct {
		name       string
		policy     Policy
		history    []Spend
		psbt       func() *psbt.Packet
		want       []Rule
		reason     string // substring of the error
		wantChange []bool // per output, if set
		note       string // substring of output 1's note, if set
	}
	base := func() *psbt.Packet {
		return spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/0", 598_000))
	}
	txid := base().UnsignedTx.TxHash()
	cases := []tc{
		{name: "within limits", policy: std, psbt: base, wantChange: []bool{false, true}},
		{name: "no policy", psbt: base},
		{name: "fee percent", policy: std,
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 10_000), changeOut(t, m, "m/84'/1'/0'/1/0", 988_770))
			},
			want: []Rule{RuleFeePercent}, reason: "fee 12.3% of the amount exceeds the 5% limit"},
		{name: "fee percent shows enough digits", policy: Policy{MaxFeePercent: 5},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 100_000), changeOut(t, m, "m/84'/1'/0'/1/0", 894_990))
			},
			want: []Rule{RuleFeePercent}, reason: "fee 5.01% of the amount exceeds the 5% limit"},
		{name: "fee rate", policy: Policy{MaxFeeRate: 5}, psbt: base,
			want: []Rule{RuleFeeRate}, reason: "sat/vB exceeds the 5 sat/vB limit"},
		{name: "daily limit", policy: std, history: []Spend{{Time: testNow.Add(-time.Hour), Amount: 700_000}}, psbt: base,
			want: []Rule{RuleDailyLimit}, reason: "spending 402,000 sats would bring the last 24 h to 1,102,000 sats, over the daily limit of 1,000,000 sats"},
		{name: "daily limit reached exactly", policy: std, history: []Spend{{Time: testNow.Add(-time.Hour), Amount: 598_000}}, psbt: base},
		{name: "history older than 24h ignored", policy: std, history: []Spend{{Time: testNow.Add(-Window - time.Second), Amount: 900_000}}, psbt: base},
		{name: "re-signing the same tx is not a new spend", policy: std,
			history: []Spend{{Time: testNow.Add(-time.Minute), Amount: 900_000, TxID: txid}}, psbt: base},
		{name: "change on the receive chain counts as sent", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/0/7", 598_000))
			},
			want: []Rule{RuleDailyLimit}, reason: "spending 1,000,000 sats", wantChange: []bool{false, false}, note: "not a change path"},
		{name: "change with a key that is not ours counts as sent", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), spendOut{value: 598_000, script: p2wpkhScript(otherKey),
					setup: func(po *psbt.POutput) {
						po.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, mustPath(t, "m/84'/1'/0'/1/0"), otherKey)}
					}})
			},
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}, note: "is not this wallet's"},
		{name: "change with our key in the wrong script counts as sent", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), spendOut{value: 598_000, script: p2pkhScript(ourChangeKey),
					setup: func(po *psbt.POutput) {
						po.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, mustPath(t, "m/84'/1'/0'/1/0"), ourChangeKey)}
					}})
			},
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}, note: "standard script"},
		{name: "change under another fingerprint counts as sent", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, other, "m/84'/1'/0'/1/0", 598_000))
			},
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}},
		{name: "change index beyond the limit counts as sent", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/100000", 598_000))
			},
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}},
		{name: "change on the mainnet coin type counts as sent (testnet wallet)", policy: Policy{DailyLimit: 500_000},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/0'/0'/1/0", 598_000))
			},
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}},
		{name: "change outside the allowed accounts counts as sent",
			policy: Policy{DailyLimit: 500_000, ChangeAccounts: []Path{mustPath(t, "m/84'/1'/1'")}}, psbt: base,
			want: []Rule{RuleDailyLimit}, wantChange: []bool{false, false}},
		{name: "change inside the allowed accounts",
			policy: Policy{DailyLimit: 500_000, ChangeAccounts: []Path{mustPath(t, "m/84'/1'/0'")}}, psbt: base,
			wantChange: []bool{false, true}},
		{name: "consolidation sends nothing: only the fee rate applies", policy: Policy{MaxFeePercent: 0.01, MaxFeeRate: 50},
			psbt: func() *psbt.Packet {
				return spend(t, m, 1_000_000, changeOut(t, m, "m/84'/1'/0'/1/0", 999_000))
			},
			wantChange: []bool{true}},
		{name: "several violations at once", policy: Policy{DailyLimit: 1000, MaxFeePercent: 0.1, MaxFeeRate: 1}, psbt: base,
			want: []Rule{RuleDailyLimit, RuleFeePercent, RuleFeeRate}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &MemHistory{}
			for _, sp := range c.history {
				if sp.TxID == (chainhash.Hash{}) {
					sp.TxID = chainhash.Hash{byte(len(h.spends) + 1)}
				}
				_ = h.Record(sp)
			}
			s := newSigner(t, m.k, c.policy, h)
			raw := serialize(t, c.psbt())

			sum, err := s.Summarize(raw, SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for j, want := range c.wantChange {
				if sum.Outputs[j].Change != want {
					t.Errorf("output %d: change %v, want %v (%s)", j, sum.Outputs[j].Change, want, sum.Outputs[j].Note)
				}
			}
			if c.note != "" && !strings.Contains(sum.Outputs[1].Note, c.note) {
				t.Errorf("note %q, want it to contain %q", sum.Outputs[1].Note, c.note)
			}
			if len(sum.Violations) != len(c.want) {
				t.Errorf("summary violations %+v, want %v", sum.Violations, c.want)
			}

			before, _ := h.Spends(time.Time{})
			res, err := s.Sign(raw, SignOptions{})
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(res.Signed) != 1 {
					t.Fatalf("signed %v", res.Signed)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || res != nil {
				t.Fatalf("got %v, want a PolicyError", err)
			}
			for _, r := range c.want {
				if !pe.Has(r) {
					t.Errorf("missing rule %s in %v", r, err)
				}
			}
			if c.reason != "" && !strings.Contains(err.Error(), c.reason) {
				t.Errorf("reason %q, want it to contain %q", err, c.reason)
			}
			t.Log(err)
			// The policy is evaluated before any signing key is derived, and a refusal
			// records nothing.
			if n := s.signingKeys.Load(); n != 0 {
				t.Errorf("%d signing keys derived before refusing", n)
			}
			if after, _ := h.Spends(time.Time{}); len(after) != len(before) {
				t.Errorf("history changed by a refused signing")
			}
		})
	}
}

// TestDailyLimitAccumulates: successive signings fill the window and the next one is refused.
func TestDailyLimitAccumulates(t *testing.T) {
	m := newTestMaster(t, 7)
	h := &MemHistory{}
	s := newSigner(t, m.k, Policy{DailyLimit: 1_000_000}, h)
	for n, want := range []bool{true, true, false} {
		p := spend(t, m, 1_000_000+int64(n), extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/0", 598_000+int64(n)))
		_, err := s.Sign(serialize(t, p), SignOptions{})
		if (err == nil) != want {
			t.Fatalf("signing %d: %v", n, err)
		}
	}
	spends, _ := h.Spends(testNow.Add(-Window))
	if len(spends) != 2 || spends[0].Amount != 402_000 {
		t.Errorf("history %+v", spends)
	}
}

type failingHistory struct{ MemHistory }

func (*failingHistory) Record(Spend) error { return errors.New("disk full") }

// TestHistoryFailure: if the spend cannot be recorded, no signature comes out and the packet is
// left as it was.
func TestHistoryFailure(t *testing.T) {
	m := newTestMaster(t, 7)
	s := newSigner(t, m.k, Policy{DailyLimit: 1_000_000}, &failingHistory{})
	p := spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/0", 598_000))
	before := serialize(t, p)
	if _, err := s.SignPacket(p, SignOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v", err)
	}
	if string(serialize(t, p)) != string(before) {
		t.Error("packet modified")
	}
}

// TestRefusals: every refusal names the input and says why.
func TestRefusals(t *testing.T) {
	m := newTestMaster(t, 7)
	other := newTestMaster(t, 8)
	inPath := mustPath(t, "m/84'/1'/0'/0/0")
	inKey := deriveKey(t, m.k, inPath).PubKey()
	key1 := deriveKey(t, m.k, mustPath(t, "m/84'/1'/0'/0/1")).PubKey()
	base := func(mod func(*psbt.Packet)) func() *psbt.Packet {
		return func() *psbt.Packet {
			p := spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/0", 598_000))
			if mod != nil {
				mod(p)
			}
			return p
		}
	}
	legacy := func() *psbt.Packet {
		prev := fundingTx(4, p2pkhScript(inKey), 1_000_000)
		return buildPSBT(t, []spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
			pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, inPath, inKey)}
		}}}, []spendOut{extOut(t, 990_000)})
	}
	cases := []struct {
		name   string
		policy Policy
		opts   SignOptions
		psbt   func() *psbt.Packet
		err    error
		input  int
	}{
		{name: "witness utxo missing", psbt: base(func(p *psbt.Packet) { p.Inputs[0].WitnessUtxo = nil }), err: ErrMissingUTXO},
		{name: "legacy input without the previous tx", psbt: legacy, err: ErrLegacyNoPrevTx},
		{name: "previous tx is another tx", psbt: base(func(p *psbt.Packet) {
			p.Inputs[0].NonWitnessUtxo = fundingTx(5, p.Inputs[0].WitnessUtxo.PkScript, 1_000_000)
		}), err: ErrPrevTxMismatch},
		{name: "witness utxo disagrees with the previous tx", psbt: base(func(p *psbt.Packet) {
			p.Inputs[0].NonWitnessUtxo = fundingTx(9, p.Inputs[0].WitnessUtxo.PkScript, 1_000_000)
			p.Inputs[0].WitnessUtxo = psbtTxOut(2_000_000, p.Inputs[0].WitnessUtxo.PkScript)
		}), err: ErrPrevTxMismatch},
		{name: "policy requires the previous tx", policy: Policy{RequireNonWitnessUTXO: true}, psbt: base(nil), err: ErrNeedPrevTx},
		{name: "sighash NONE", psbt: base(func(p *psbt.Packet) { p.Inputs[0].SighashType = txscript.SigHashNone }), err: ErrSighash},
		{name: "sighash SINGLE|ANYONECANPAY", psbt: base(func(p *psbt.Packet) {
			p.Inputs[0].SighashType = txscript.SigHashSingle | txscript.SigHashAnyOneCanPay
		}), err: ErrSighash},
		{name: "invalid sighash even if allowed", policy: Policy{AllowSighash: []txscript.SigHashType{4}},
			psbt: base(func(p *psbt.Packet) { p.Inputs[0].SighashType = 4 }), err: ErrSighash},
		{name: "no key of ours", psbt: base(func(p *psbt.Packet) { p.Inputs[0].Bip32Derivation[0].MasterKeyFingerprint = other.fp }), err: ErrNotOurs},
		{name: "our fingerprint, path gives another key", psbt: base(func(p *psbt.Packet) {
			p.Inputs[0].Bip32Derivation[0].Bip32Path = mustPath(t, "m/84'/1'/0'/0/1")
		}), err: ErrKeyMismatch},
		{name: "our key is not the output's key", psbt: base(func(p *psbt.Packet) {
			p.Inputs[0].Bip32Derivation[0] = bip32(m.fp, mustPath(t, "m/84'/1'/0'/0/1"), key1)
		}), err: ErrScriptMismatch},
		{name: "taproot script path only", psbt: func() *psbt.Packet {
			p := p2trSpend(t, m, 1_000_000, 400_000, 598_000, nil)
			p.Inputs[0].TaprootBip32Derivation[0].LeafHashes = [][]byte{make([]byte, 32)}
			p.Inputs[0].TaprootInternalKey = schnorr.SerializePubKey(key1) // someone else's internal key
			return p
		}, err: ErrUnsupported},
		{name: "witness script that is not multisig", psbt: func() *psbt.Packet {
			ws, _ := txscript.NewScriptBuilder().AddData(inKey.SerializeCompressed()).AddOp(txscript.OP_CHECKSIG).Script()
			prev := fundingTx(6, p2wshScript(ws), 1_000_000)
			return buildPSBT(t, []spendIn{{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
				pi.WitnessScript = ws
				pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, inPath, inKey)}
			}}}, []spendOut{extOut(t, 990_000)})
		}, err: ErrUnsupported},
		{name: "two inputs spend the same outpoint", psbt: func() *psbt.Packet {
			prev := fundingTx(7, p2wpkhScript(inKey), 1_000_000)
			in := spendIn{prev: prev, witness: true, setup: func(pi *psbt.PInput) {
				pi.Bip32Derivation = []*psbt.Bip32Derivation{bip32(m.fp, inPath, inKey)}
			}}
			return buildPSBT(t, []spendIn{in, in}, []spendOut{extOut(t, 990_000)})
		}, err: ErrDuplicateInput, input: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSigner(t, m.k, c.policy, nil)
			res, err := s.Sign(serialize(t, c.psbt()), c.opts)
			var ie *InputError
			if res != nil || !errors.As(err, &ie) || ie.Index != c.input || !errors.Is(err, c.err) {
				t.Fatalf("got %v, want input %d: %v", err, c.input, c.err)
			}
			if !strings.HasPrefix(err.Error(), "input ") {
				t.Errorf("error does not name the input: %v", err)
			}
			t.Log(err)
		})
	}
}

func psbtTxOut(v int64, script []byte) *wire.TxOut { return wire.NewTxOut(v, script) }

// TestAllowedSighash: a sighash type the policy allows is used, and the result is valid.
func TestAllowedSighash(t *testing.T) {
	m := newTestMaster(t, 7)
	for _, ht := range []txscript.SigHashType{txscript.SigHashNone, txscript.SigHashSingle | txscript.SigHashAnyOneCanPay} {
		s := newSigner(t, m.k, Policy{AllowSighash: []txscript.SigHashType{ht}}, nil)
		p := spend(t, m, 1_000_000, extOut(t, 400_000), changeOut(t, m, "m/84'/1'/0'/1/0", 598_000))
		p.Inputs[0].SighashType = ht
		prev := prevOuts(p)
		res, err := s.Sign(serialize(t, p), SignOptions{Finalize: true})
		if err != nil {
			t.Fatal(err)
		}
		sig := res.Tx.TxIn[0].Witness[0]
		if txscript.SigHashType(sig[len(sig)-1]) != ht {
			t.Errorf("signature sighash byte %x, want %x", sig[len(sig)-1], ht)
		}
		verifyTx(t, res.Tx, prev)
	}
}

func TestForeignInputs(t *testing.T) {
	m, other := newTestMaster(t, 7), newTestMaster(t, 8)
	ours := spend(t, m, 1_000_000, extOut(t, 400_000))
	theirs := spend(t, other, 2_000_000, extOut(t, 400_000))
	// One PSBT with our input and theirs (a payjoin-like shape).
	p := buildPSBT(t,
		[]spendIn{
			{prev: fundingTx(9, ours.Inputs[0].WitnessUtxo.PkScript, 1_000_000), witness: true,
				setup: func(pi *psbt.PInput) { pi.Bip32Derivation = ours.Inputs[0].Bip32Derivation }},
			{prev: fundingTx(10, theirs.Inputs[0].WitnessUtxo.PkScript, 2_000_000), witness: true,
				setup: func(pi *psbt.PInput) { pi.Bip32Derivation = theirs.Inputs[0].Bip32Derivation }},
		},
		[]spendOut{extOut(t, 2_990_000)})
	s := newSigner(t, m.k, Policy{DailyLimit: 1_000_000}, &MemHistory{})
	if _, err := s.Sign(serialize(t, p), SignOptions{}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("foreign input accepted by default: %v", err)
	}
	res, err := s.Sign(serialize(t, p), SignOptions{AllowForeignInputs: true, Finalize: true})
	if err != nil {
		t.Fatal(err)
	}
	// Only what leaves our input counts against the limit.
	if res.Summary.Spend != 1_000_000 || len(res.Signed) != 1 || res.Signed[0] != 0 || res.Complete {
		t.Errorf("spend %d signed %v complete %v", res.Summary.Spend, res.Signed, res.Complete)
	}
}

func TestParseErrors(t *testing.T) {
	// A minimal BIP370 global map: PSBT_GLOBAL_TX_VERSION, input/output counts, version 2.
	v2 := []byte("psbt\xff")
	v2 = append(v2, 0x01, 0x02, 0x04, 2, 0, 0, 0)
	v2 = append(v2, 0x01, 0x04, 0x01, 0)
	v2 = append(v2, 0x01, 0x05, 0x01, 0)
	v2 = append(v2, 0x01, 0xfb, 0x04, 2, 0, 0, 0, 0x00)
	for name, c := range map[string]struct {
		in  []byte
		err error
	}{
		"v2":             {v2, ErrVersion2},
		"v2 base64":      {[]byte(base64Std(v2)), ErrVersion2},
		"v2 no version":  {v2[:len(v2)-8], ErrMalformed}, // BIP370 fields, no tx, map not closed
		"v1":             {append([]byte("psbt\xff\x01\xfb\x04\x01\x00\x00\x00"), 0), ErrVersion},
		"empty":          {nil, ErrMalformed},
		"garbage":        {[]byte("hello world"), ErrMalformed},
		"magic only":     {[]byte("psbt\xff"), ErrMalformed},
		"bad base64":     {[]byte("cHNidP8B!!!"), ErrMalformed},
		"trailing bytes": {append(hexBytes(t), 0x00, 0x01), ErrMalformed},
	} {
		if _, err := Parse(c.in); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", name, err, c.err)
		}
	}
	// Version 2 maps that close properly but lack the unsigned tx are version 2 too.
	v2b := append([]byte("psbt\xff"), 0x01, 0x02, 0x04, 2, 0, 0, 0, 0x00)
	if _, err := Parse(v2b); !errors.Is(err, ErrVersion2) {
		t.Errorf("v2 without version field: %v", err)
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func hexBytes(t *testing.T) []byte {
	var v bip174Vectors
	loadJSON(t, "bip174_signer.json", &v)
	return unhex(t, v.Unsigned)
}

func TestFeeNegative(t *testing.T) {
	m := newTestMaster(t, 7)
	s := newSigner(t, m.k, Policy{}, nil)
	p := spend(t, m, 1_000_000, extOut(t, 1_000_001))
	if _, err := s.Sign(serialize(t, p), SignOptions{}); !errors.Is(err, ErrFeeNegative) {
		t.Fatalf("got %v", err)
	}
}

func TestPath(t *testing.T) {
	p, err := ParsePath("m/84'/0h/0H/1/7")
	if err != nil || p.String() != "m/84'/0'/0'/1/7" || !p.HasPrefix(Path{84 + Hardened}) {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range []string{"m/x", "m/2147483648", "m/1/" + strings.Repeat("1/", 20) + "1"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestZeroing: the nodes a signing derived are zeroed when it ends.
func TestZeroing(t *testing.T) {
	m := newTestMaster(t, 7)
	d := &deriver{master: m.k}
	if _, err := d.privKey(mustPath(t, "m/84'/1'/0'/0/0")); err != nil {
		t.Fatal(err)
	}
	var nodes []*hdkeychain.ExtendedKey
	for _, n := range d.nodes {
		nodes = append(nodes, n)
	}
	if len(nodes) != 5 {
		t.Fatalf("%d nodes", len(nodes))
	}
	d.zero()
	for _, n := range nodes {
		if n.IsPrivate() || n.String() != "zeroed extended key" {
			t.Errorf("node not zeroed: %v", n.IsPrivate())
		}
	}
	if !m.k.IsPrivate() {
		t.Error("the master was zeroed")
	}
	priv, _ := btcec.NewPrivateKey()
	priv.Zero()
	if !priv.Key.IsZero() {
		t.Error("btcec Zero does not zero")
	}
}

// TestParseRecoversPanics: btcd's parser panics on an empty BIP32 derivation value; Parse turns
// that into ErrMalformed.
func TestParseRecoversPanics(t *testing.T) {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 1}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(1000, []byte{txscript.OP_TRUE}))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	raw := serialize(t, p) // magic, global map, empty input map (0x00), empty output map (0x00)
	pub := deriveKey(t, testMaster(t, 1), Path{0}).PubKey().SerializeCompressed()
	bad := append([]byte{}, raw[:len(raw)-2]...)
	bad = append(bad, 34, 0x06)
	bad = append(bad, pub...)
	bad = append(bad, 0x00, 0x00, 0x00) // empty value, end of input map, empty output map
	_, err = Parse(bad)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "runtime error") {
		t.Fatalf("got %v, want a recovered panic", err)
	}
	t.Log(err)
}
