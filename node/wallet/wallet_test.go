package wallet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/chain"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	k := newTestKey(t, 1)
	wpkh := k.descriptor(t, keys.PurposeBIP84)
	single, err := keys.NewAccount(k.master, keys.PurposeBIP84, keys.Regtest, 0)
	if err != nil {
		t.Fatal(err)
	}
	receiveOnly, _ := single.Descriptor(keys.Receive)
	mainMaster, _ := keys.NewMasterKey(k.seed, keys.Mainnet)
	mainAcct, _ := keys.NewAccount(mainMaster, keys.PurposeBIP84, keys.Mainnet, 0)
	mainDesc, _ := mainAcct.MultipathDescriptor()
	for _, tc := range []struct {
		name  string
		descs []string
		want  error
	}{
		{"none", nil, nil},
		{"garbage", []string{"wpkh(nonsense)"}, nil},
		{"single chain", []string{receiveOnly}, nil},
		{"mainnet key", []string{mainDesc}, ErrWrongNetwork},
		{"twice", []string{wpkh, wpkh}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(Config{DB: openDB(t), Network: keys.Regtest, Descriptors: tc.descs, Log: quiet})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Open: %v, want an error (%v)", err, tc.want)
			}
		})
	}
}

func TestNewAddressFreshUntilGapThenWraps(t *testing.T) {
	k := newTestKey(t, 1)
	db := openDB(t)
	desc := k.descriptor(t, keys.PurposeBIP84)
	w, err := Open(Config{DB: db, Network: keys.Regtest, Descriptors: []string{desc}, GapLimit: 5, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for range 7 {
		a, err := w.NewAddress()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.URI, "bitcoin:bcrt1") || a.Address != receiveAt(t, w, keys.Receive, a.Index).Address {
			t.Fatalf("address %+v", a)
		}
		if len(a.Path) != 5 || a.Path[3] != 0 || a.Path[4] != a.Index || a.Path[0] != 84+keys.Hardened {
			t.Fatalf("path %v", a.Path)
		}
		got = append(got, a.Index)
	}
	if want := []uint32{0, 1, 2, 3, 4, 0, 1}; !equalU32(got, want) {
		t.Fatalf("indexes %v, want %v", got, want)
	}
	// Index 2 gets paid: the window moves to 3..7 and fresh addresses continue past it.
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(50_000, receiveAt(t, w, keys.Receive, 2).ScriptPubKey)))
	w.Close()
	// The indexes survive a reopen.
	w, err = Open(Config{DB: db, Network: keys.Regtest, Descriptors: []string{desc}, GapLimit: 5, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for range 6 {
		a, _ := w.NewAddress()
		got = append(got, a.Index)
	}
	if want := []uint32{3, 4, 5, 6, 7, 3}; !equalU32(got, want) {
		t.Fatalf("after use and reopen: indexes %v, want %v", got, want)
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGapLimitGrowsWithinABlock: a block pays receive indexes 10 and 25. Only 0..19 are
// watched at first; using 10 extends the window to 30, and the same block is looked at
// again, so the payment to 25 is found too, and then one to 45 in the next block.
func TestGapLimitGrowsWithinABlock(t *testing.T) {
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))
	if _, ok := w.keys.lookup(receiveAt(t, w, keys.Receive, 25).ScriptPubKey); ok {
		t.Fatal("index 25 watched before any use")
	}
	fakeBlock(t, w, foreignTx(1,
		wire.NewTxOut(10_000, receiveAt(t, w, keys.Receive, 25).ScriptPubKey),
		wire.NewTxOut(20_000, receiveAt(t, w, keys.Receive, 10).ScriptPubKey)))
	fakeBlock(t, w, foreignTx(2, wire.NewTxOut(40_000, receiveAt(t, w, keys.Receive, 45).ScriptPubKey)))
	b, err := w.Balance()
	if err != nil || b.Confirmed != 70_000 {
		t.Fatalf("balance %+v, %v; want 70000 confirmed", b, err)
	}
	if a, _ := w.NewAddress(); a.Index != 46 {
		t.Fatalf("next address %d, want 46", a.Index)
	}
}

func TestBIP21(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		label  string
		want   string
	}{
		{0, "", "bitcoin:bcrt1x"},
		{150_000_000, "", "bitcoin:bcrt1x?amount=1.5"},
		{1, "rent & food", "bitcoin:bcrt1x?amount=0.00000001&label=rent%20%26%20food"},
		{0, "a=b+c?", "bitcoin:bcrt1x?label=a%3Db%2Bc%3F"},
	} {
		got := BIP21("bcrt1x", tc.amount, tc.label)
		if got != tc.want {
			t.Errorf("BIP21(%d, %q) = %q, want %q", tc.amount, tc.label, got, tc.want)
		}
		// A reader splitting the query gets the label back unchanged.
		if _, query, ok := strings.Cut(got, "?"); ok {
			q, err := url.ParseQuery(query)
			if err != nil || q.Get("label") != tc.label {
				t.Errorf("BIP21(%q): query %q reads back label %q (%v)", tc.label, query, q.Get("label"), err)
			}
		}
	}
}

// TestProposalPSBT builds a send for every descriptor type and checks what a signer needs:
// UTXOs, every key's fingerprint and full path, scripts, derivations on the change; then
// the box signs (hsm/sign), the script engine accepts the transaction, and its real size
// and fee rate are within the estimate.
func TestProposalPSBT(t *testing.T) {
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	for _, tc := range []struct {
		name    string
		desc    string
		signers []*testKey
	}{
		{"wpkh", k1.descriptor(t, keys.PurposeBIP84), []*testKey{k1}},
		{"tr", k1.descriptor(t, keys.PurposeBIP86), []*testKey{k1}},
		{"sh-wpkh", k1.descriptor(t, keys.PurposeBIP49), []*testKey{k1}},
		{"pkh", k1.descriptor(t, keys.PurposeBIP44), []*testKey{k1}},
		{"wsh 1-of-2", multisig(t, 1, k1, k2), []*testKey{k1}},
		{"wsh 2-of-2", multisig(t, 2, k1, k2), []*testKey{k1, k2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := openWallet(t, nil, k1, tc.desc)
			a0, a1 := receiveAt(t, w, keys.Receive, 0), receiveAt(t, w, keys.Receive, 1)
			fakeBlock(t, w, foreignTx(1, wire.NewTxOut(600_000, a0.ScriptPubKey), wire.NewTxOut(700_000, a1.ScriptPubKey)))
			const rate = 3_000
			p, err := w.Propose(context.Background(), SendRequest{
				Payments: []Payment{{Address: foreignAddress(t, 7), Amount: 1_000_000}}, FeeRate: rate})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != "send" || len(p.Inputs) != 2 || p.Sent != 1_000_000 || p.Change <= 0 || p.Fee <= 0 ||
				p.Fee+p.Sent+p.Change != 1_300_000 || p.FeeRate < rate || p.Algorithm == "" {
				t.Fatalf("proposal %+v", p)
			}
			packet, err := psbt.NewFromRawBytes(bytes.NewReader(p.PSBT), false)
			if err != nil {
				t.Fatal(err)
			}
			tx := packet.UnsignedTx
			if tx.Version != 2 || tx.LockTime != 1 && tx.LockTime != 0 {
				t.Fatalf("version %d locktime %d (tip is 1)", tx.Version, tx.LockTime)
			}
			acct := w.keys.primary()
			for i, in := range tx.TxIn {
				if in.Sequence != SequenceRBF {
					t.Fatalf("input %d sequence %x", i, in.Sequence)
				}
				checkDerivations(t, acct, &packet.Inputs[i], nil)
			}
			changes := 0
			for i, out := range tx.TxOut {
				d, ours := w.keys.lookup(out.PkScript)
				if !ours {
					continue
				}
				if d.chain != keys.Change {
					t.Fatalf("output %d pays a receive address", i)
				}
				changes++
				checkDerivations(t, acct, nil, &packet.Outputs[i])
			}
			if changes != 1 {
				t.Fatalf("%d change outputs", changes)
			}
			if acct.desc.Type != keys.ScriptWSHSortedMulti {
				// hsm/sign proves change by its derivation (multisig change counts as sent).
				sum, err := k1.signer.Summarize(p.PSBT, sign.SignOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if sum.Change != p.Change || sum.Sent != p.Sent {
					t.Fatalf("the signer sees change %d sent %d, the proposal %d and %d", sum.Change, sum.Sent, p.Change, p.Sent)
				}
			}
			_, signed := signAll(t, p.PSBT, tc.signers...)
			vsize := txVSize(signed)
			if vsize > p.VSize || vsize < p.VSize-int64(len(tx.TxIn))*2 {
				t.Fatalf("signed vsize %d, estimated %d", vsize, p.VSize)
			}
			if r := feeRateOf(p.Fee, vsize); r < rate {
				t.Fatalf("real fee rate %v below %v", r, chain.FeeRate(rate))
			}
		})
	}
}

// checkDerivations checks a PSBT input's or output's BIP32 fields against the account.
func checkDerivations(t *testing.T, a *account, in *psbt.PInput, out *psbt.POutput) {
	t.Helper()
	var bip32 []*psbt.Bip32Derivation
	var tap []*psbt.TaprootBip32Derivation
	var internal, redeem, witness []byte
	if in != nil {
		bip32, tap, internal, redeem, witness = in.Bip32Derivation, in.TaprootBip32Derivation, in.TaprootInternalKey, in.RedeemScript, in.WitnessScript
		switch a.desc.Type {
		case keys.ScriptPKH:
			if in.NonWitnessUtxo == nil || in.WitnessUtxo != nil {
				t.Fatal("legacy input needs the previous transaction only")
			}
		default:
			if in.WitnessUtxo == nil {
				t.Fatal("segwit input without WITNESS_UTXO")
			}
		}
	} else {
		bip32, tap, internal, redeem, witness = out.Bip32Derivation, out.TaprootBip32Derivation, out.TaprootInternalKey, out.RedeemScript, out.WitnessScript
	}
	fps := map[uint32]keys.Path{}
	for _, k := range a.desc.Keys {
		fps[binary.LittleEndian.Uint32(k.Origin.Fingerprint[:])] = k.Origin.Path
	}
	checkPath := func(fp uint32, path []uint32) {
		origin, ok := fps[fp]
		if !ok || len(path) != len(origin)+2 || !keys.Path(path[:len(origin)]).Equal(origin) {
			t.Fatalf("derivation %x %v does not extend a key origin", fp, keys.Path(path))
		}
		delete(fps, fp)
	}
	switch a.desc.Type {
	case keys.ScriptTR:
		if len(tap) != 1 || len(internal) != 32 || !bytes.Equal(tap[0].XOnlyPubKey, internal) {
			t.Fatalf("taproot fields %+v %x", tap, internal)
		}
		checkPath(tap[0].MasterKeyFingerprint, tap[0].Bip32Path)
	default:
		if len(bip32) != len(a.desc.Keys) {
			t.Fatalf("%d derivations for %d keys", len(bip32), len(a.desc.Keys))
		}
		for _, d := range bip32 {
			checkPath(d.MasterKeyFingerprint, d.Bip32Path)
		}
	}
	if len(fps) != 0 {
		t.Fatalf("keys without derivation: %v", fps)
	}
	if (a.desc.Type == keys.ScriptSHWPKH) != (redeem != nil) || (a.desc.Type == keys.ScriptWSHSortedMulti) != (witness != nil) {
		t.Fatalf("redeem script %x, witness script %x for %v", redeem, witness, a.desc.Type)
	}
}

func TestProposeErrors(t *testing.T) {
	k := newTestKey(t, 1)
	ctx := context.Background()
	empty := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))
	if _, err := empty.Propose(ctx, SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7), Amount: 10_000}}, FeeRate: 1000}); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("without a tip: %v", err)
	}
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(100_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey)))
	good := foreignAddress(t, 7)
	for _, tc := range []struct {
		name string
		req  SendRequest
		want error
	}{
		{"invalid address", SendRequest{Payments: []Payment{{Address: "bcrt1qnotanaddress", Amount: 10_000}}}, ErrInvalidAddress},
		{"garbage", SendRequest{Payments: []Payment{{Address: "hello", Amount: 10_000}}}, ErrInvalidAddress},
		{"mainnet bech32", SendRequest{Payments: []Payment{{Address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", Amount: 10_000}}}, ErrWrongNetwork},
		{"mainnet base58", SendRequest{Payments: []Payment{{Address: "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", Amount: 10_000}}}, ErrWrongNetwork},
		{"testnet bech32", SendRequest{Payments: []Payment{{Address: "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", Amount: 10_000}}}, ErrWrongNetwork},
		{"dust", SendRequest{Payments: []Payment{{Address: good, Amount: 293}}, FeeRate: 1000}, ErrAmountBelowDust},
		{"zero", SendRequest{Payments: []Payment{{Address: good, Amount: 0}}, FeeRate: 1000}, ErrAmountBelowDust},
		{"fee too low", SendRequest{Payments: []Payment{{Address: good, Amount: 10_000}}, FeeRate: 999}, ErrFeeRateTooLow},
		{"insufficient", SendRequest{Payments: []Payment{{Address: good, Amount: 99_990}}, FeeRate: 1000}, ErrInsufficientFunds},
		{"insufficient all", SendRequest{Payments: []Payment{{Address: good}}, SendAll: true, FeeRate: 1_000_000}, ErrInsufficientFunds},
		{"unknown coin", SendRequest{Payments: []Payment{{Address: good, Amount: 10_000}}, FeeRate: 1000,
			Coins: []string{wire.OutPoint{Index: 1}.String()}}, ErrCoinNotSpendable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.Propose(ctx, tc.req)
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "propose send: ") {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := w.Send(ctx, "nope"); !errors.Is(err, ErrProposalExpired) {
		t.Fatalf("Send of an unknown proposal: %v", err)
	}
}

func TestSendAllAndExpiry(t *testing.T) {
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, keys.PurposeBIP84))
	now := t0
	w.now = func() time.Time { return now }
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(100_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey),
		wire.NewTxOut(50_000, receiveAt(t, w, keys.Receive, 1).ScriptPubKey)))
	p, err := w.Propose(context.Background(), SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7)}}, SendAll: true, FeeRate: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Inputs) != 2 || len(p.Outputs) != 1 || p.Change != 0 || p.Sent+p.Fee != 150_000 || p.FeeRate < 2000 {
		t.Fatalf("send all %+v", p)
	}
	now = now.Add(11 * time.Minute)
	if _, err := w.SignOnly(context.Background(), p.ID); !errors.Is(err, ErrProposalExpired) {
		t.Fatalf("after 11 minutes: %v", err)
	}
}

// TestMultisigSignOnly: the box adds its signature to a 2-of-2 proposal; without a backend
// Send and Broadcast refuse, and bad PSBTs are refused with an error.
func TestMultisigSignOnly(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	w := openWallet(t, nil, k1, multisig(t, 2, k1, k2))
	fakeBlock(t, w, foreignTx(1, wire.NewTxOut(500_000, receiveAt(t, w, keys.Receive, 0).ScriptPubKey)))
	p, err := w.Propose(ctx, SendRequest{Payments: []Payment{{Address: foreignAddress(t, 7), Amount: 100_000}}, FeeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Send without backend: %v", err)
	}
	part, err := w.SignOnly(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	packet, err := parsePSBT(part)
	if err != nil || len(packet.Inputs[0].PartialSigs) != 1 {
		t.Fatalf("partially signed psbt: %v", err)
	}
	signed, tx := signAll(t, part, k2)
	var buf bytes.Buffer
	if err := signed.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Broadcast(ctx, buf.Bytes()); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Broadcast without backend: %v", err)
	}
	if tx.TxHash() != packet.UnsignedTx.TxHash() {
		t.Fatal("signed transaction differs from the proposal")
	}
	for _, bad := range [][]byte{nil, []byte("psbt\xff\x00"), []byte("not base64!")} {
		if _, err := w.Broadcast(ctx, bad); err == nil {
			t.Fatalf("Broadcast(%q) succeeded", bad)
		}
	}
}
