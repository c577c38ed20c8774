package hsm

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// The BIP84 test mnemonic: its first receive address is known.
const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

var (
	passphrase = []byte("correct horse battery staple")
	recovery   = []byte("a long recovery passphrase")
	ctx        = context.Background()
)

func cheapPassphrase(t *testing.T) seal.Sealer {
	t.Helper()
	p, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type box struct {
	db   *storage.DB
	path string
	c    *Custody
}

func openBox(t *testing.T, path string, sealers map[string]seal.Sealer, policy sign.Policy) *box {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{DB: db, Network: keys.Mainnet, Sealers: sealers, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return &box{db: db, path: path, c: c}
}

func (b *box) close() { b.c.Lock(); b.db.Close() }

func TestPassphraseLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anya.db")
	sealers := map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}
	b := openBox(t, path, sealers, sign.Policy{})
	st, _ := b.c.Status()
	if st.State != StateNone {
		t.Fatalf("new box: %+v", st)
	}
	err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ = b.c.Status()
	if st.State != StateUnlocked || st.Fingerprint != "73c5da0a" || st.Accounts[0].FirstAddress != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatalf("after setup: %+v", st)
	}
	if !strings.HasPrefix(st.Accounts[0].Descriptor, "wpkh([73c5da0a/84h/0h/0h]xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/<0;1>/*)#") {
		t.Fatalf("BIP84 descriptor: %s", st.Accounts[0].Descriptor)
	}
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); !errors.Is(err, ErrWalletExists) {
		t.Fatalf("second setup: %v", err)
	}
	b.close()

	// Nothing secret is on disk in the clear: neither the mnemonic nor the seed's xprv.
	raw, _ := filepathRead(path)
	for _, secret := range []string{"abandon", "xprv"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("database contains %q", secret)
		}
	}

	b = openBox(t, path, sealers, sign.Policy{})
	defer b.close()
	if st, _ := b.c.Status(); st.State != StateLocked {
		t.Fatalf("after restart: %s", st.State)
	}
	if err := b.c.Unlock(ctx, seal.Auth{Passphrase: []byte("wrong passphrase")}); !errors.Is(err, seal.ErrWrongAuth) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if err := b.c.Unlock(ctx, seal.Auth{Passphrase: passphrase}); err != nil {
		t.Fatal(err)
	}
	if err := b.c.AutoUnlock(ctx); err != nil {
		t.Fatalf("auto unlock of an unlocked wallet: %v", err)
	}
	b.c.Lock()
	if err := b.c.AutoUnlock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("auto unlock of a passphrase wallet: %v", err)
	}
	n, err := b.c.Audit().Verify()
	if err != nil || n != 3 { // created, failed unlock, unlock
		t.Fatalf("audit: %d records, %v", n, err)
	}
}

func filepathRead(path string) ([]byte, error) {
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var buf bytes.Buffer
	_, err = db.Backup(&buf)
	return buf.Bytes(), err
}

// A TPM-protected wallet opens itself after a reboot; after a different boot it needs the
// recovery passphrase, which re-seals it for the new boot state.
func TestTPMAutoUnlockAndRecovery(t *testing.T) {
	sim := tpmtest.Start(t)
	path := filepath.Join(t.TempDir(), "anya.db")
	// open starts anyad's custody on a fresh connection, after measuring what the boot measured.
	open := func(measurements ...[]byte) (*box, *tpm.Sealer) {
		conn := sim.Dial()
		for _, m := range measurements {
			sim.Extend(conn, 4, m)
		}
		ts, err := tpm.New(conn)
		if err != nil {
			t.Fatal(err)
		}
		return openBox(t, path, map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t), seal.KindTPM: ts}, sign.Policy{}), ts
	}
	b, _ := open()
	req := SetupRequest{Mnemonic: abandon, Protection: seal.KindTPM}
	if err := b.c.Setup(ctx, req); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("TPM without recovery passphrase: %v", err)
	}
	req.Recovery = []byte("short")
	if err := b.c.Setup(ctx, req); !errors.Is(err, ErrWeakRecovery) {
		t.Fatalf("short recovery passphrase: %v", err)
	}
	req.Recovery = recovery
	if err := b.c.Setup(ctx, req); err != nil {
		t.Fatal(err)
	}
	b.close()

	sim.Reboot() // same boot state: PCRs replay to the same values (none extended here)
	b, _ = open()
	if err := b.c.AutoUnlock(ctx); err != nil {
		t.Fatalf("auto unlock after reboot: %v", err)
	}
	b.close()

	sim.Reboot()
	otherKernel := bytes.Repeat([]byte{7}, 32)
	b, _ = open(otherKernel)
	err := b.c.AutoUnlock(ctx)
	if !errors.Is(err, seal.ErrBootState) || !strings.Contains(err.Error(), "recovery passphrase") {
		t.Fatalf("auto unlock after a different boot: %v", err)
	}
	if st, _ := b.c.Status(); st.State != StateLocked || st.LastError == "" {
		t.Fatalf("status after failed auto unlock: %+v", st)
	}
	if err := b.c.UnlockWithRecovery(ctx, []byte("not the recovery"), seal.Auth{}); !errors.Is(err, seal.ErrWrongAuth) {
		t.Fatalf("wrong recovery passphrase: %v", err)
	}
	if err := b.c.UnlockWithRecovery(ctx, recovery, seal.Auth{}); err != nil {
		t.Fatal(err)
	}
	b.close()
	// Re-sealed for the new state: the next boot in that state opens by itself.
	sim.Reboot()
	b, _ = open(otherKernel)
	defer b.close()
	if err := b.c.AutoUnlock(ctx); err != nil {
		t.Fatalf("auto unlock after recovery re-seal: %v", err)
	}
	if n, err := b.c.Audit().Verify(); err != nil || n < 5 {
		t.Fatalf("audit: %d, %v", n, err)
	}
}

func TestChangeProtectionKeepsWallet(t *testing.T) {
	sim := tpmtest.Start(t)
	ts, err := tpm.New(sim.Dial())
	if err != nil {
		t.Fatal(err)
	}
	b := openBox(t, filepath.Join(t.TempDir(), "anya.db"), map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t), seal.KindTPM: ts}, sign.Policy{})
	defer b.close()
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); err != nil {
		t.Fatal(err)
	}
	before, _ := b.c.Status()
	if err := b.c.ChangeProtection(ctx, "piv", seal.Auth{}, recovery); !errors.Is(err, ErrNoSuchSealer) {
		t.Fatalf("absent provider: %v", err)
	}
	if err := b.c.ChangeProtection(ctx, seal.KindTPM, seal.Auth{PIN: "2468"}, recovery); err != nil {
		t.Fatal(err)
	}
	b.c.Lock()
	if err := b.c.Unlock(ctx, seal.Auth{Passphrase: passphrase}); !errors.Is(err, seal.ErrWrongAuth) {
		t.Fatalf("old passphrase after the change: %v", err)
	}
	if err := b.c.Unlock(ctx, seal.Auth{PIN: "2468"}); err != nil {
		t.Fatal(err)
	}
	after, _ := b.c.Status()
	if after.Fingerprint != before.Fingerprint || after.Protection != seal.KindTPM || !after.Recovery {
		t.Fatalf("after change: %+v", after)
	}
	if err := b.c.ChangeProtection(ctx, seal.KindTPM, seal.Auth{}, nil); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("change without recovery: %v", err)
	}
}

// A PSBT spending the wallet's first receive address is signed, the signature verified by the
// script interpreter, and the signature (or refusal) recorded in the audit trail.
func TestSignPSBT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anya.db")
	b := openBox(t, path, map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}, sign.Policy{MaxFeePercent: 5})
	defer b.close()
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); err != nil {
		t.Fatal(err)
	}
	seed, _ := keys.SeedFromMnemonic(abandon, nil)
	master, _ := keys.NewMasterKey(seed, keys.Mainnet)
	acct, _ := keys.NewAccount(master, keys.PurposeBIP84, keys.Mainnet, 0)
	recv, _ := acct.Address(keys.Receive, 0)
	change, _ := acct.Address(keys.Change, 0)
	fp, _ := master.Fingerprint()
	fpU32 := uint32(fp[0]) | uint32(fp[1])<<8 | uint32(fp[2])<<16 | uint32(fp[3])<<24
	const h = 0x80000000

	build := func(fee int64) []byte {
		const in = 100_000
		dest, _ := btcutil.DecodeAddress("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", keys.Mainnet.Params())
		destScript, _ := txscript.PayToAddrScript(dest)
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{1}, 0), nil, nil))
		tx.AddTxOut(wire.NewTxOut(50_000, destScript))
		tx.AddTxOut(wire.NewTxOut(in-50_000-fee, change.ScriptPubKey))
		p, _ := psbt.NewFromUnsignedTx(tx)
		p.Inputs[0].WitnessUtxo = wire.NewTxOut(in, recv.ScriptPubKey)
		p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: recv.PubKeys[0], MasterKeyFingerprint: fpU32, Bip32Path: []uint32{84 + h, h, h, 0, 0}}}
		p.Outputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: change.PubKeys[0], MasterKeyFingerprint: fpU32, Bip32Path: []uint32{84 + h, h, h, 1, 0}}}
		var buf bytes.Buffer
		p.Serialize(&buf)
		return buf.Bytes()
	}

	res, err := b.c.SignPSBT(ctx, build(500), true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Tx == nil {
		t.Fatalf("not complete: %+v", res)
	}
	prevFetcher := txscript.NewCannedPrevOutputFetcher(recv.ScriptPubKey, 100_000)
	vm, err := txscript.NewEngine(recv.ScriptPubKey, res.Tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(res.Tx, prevFetcher), 100_000, prevFetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Execute(); err != nil {
		t.Fatalf("signed transaction does not verify: %v", err)
	}

	// 10% fee on a 5% policy is refused, with the reason.
	if _, err := b.c.SignPSBT(ctx, build(5_000), true); err == nil || !strings.Contains(err.Error(), "5% limit") {
		t.Fatalf("over-fee PSBT: %v", err)
	}
	recs, _ := b.c.Audit().List(0, 10)
	var events []string
	for _, r := range recs {
		events = append(events, r.Event)
	}
	if strings.Join(events, ",") != strings.Join([]string{audit.EventSeal, audit.EventSign, audit.EventRefuse}, ",") {
		t.Fatalf("audit events %v", events)
	}

	b.c.Lock()
	if _, err := b.c.SignPSBT(ctx, build(500), true); !errors.Is(err, ErrLocked) {
		t.Fatalf("sign while locked: %v", err)
	}
}

// TestBirthday: a wallet whose mnemonic the box made has a birthday (nothing paid it
// before); a restored one has none, even when the words arrive with other spacing or case.
func TestBirthday(t *testing.T) {
	ctx := context.Background()
	auth := seal.Auth{Passphrase: []byte("correct horse battery staple")}
	for _, tc := range []struct {
		name     string
		mnemonic func(b *box) string
		want     bool
	}{
		{"made here", func(b *box) string { m, _ := b.c.NewMnemonic(12); return m }, true},
		{"made here, retyped", func(b *box) string {
			m, _ := b.c.NewMnemonic(24)
			return "  " + strings.ToUpper(strings.ReplaceAll(m, " ", "   ")) + "\n"
		}, true},
		{"restored", func(b *box) string { b.c.NewMnemonic(12); return abandon }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBox(t, filepath.Join(t.TempDir(), "anya.db"), map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}, sign.Policy{})
			defer b.close()
			m := tc.mnemonic(b)
			if err := b.c.Setup(ctx, SetupRequest{Mnemonic: m, Protection: seal.KindPassphrase, Auth: auth}); err != nil {
				t.Fatal(err)
			}
			st, err := b.c.Status()
			if err != nil {
				t.Fatal(err)
			}
			if got := !st.Birthday.IsZero(); got != tc.want {
				t.Fatalf("birthday %v, want set=%v", st.Birthday, tc.want)
			}
			if tc.want && time.Since(st.Birthday) > time.Minute {
				t.Fatalf("birthday %v is not the setup time", st.Birthday)
			}
		})
	}
}
