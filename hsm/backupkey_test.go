package hsm

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// The backup key of the "abandon … about" mnemonic without passphrase. These values must
// never change: every backup ever written depends on them.
const (
	abandonWalletID  = "6f1bdaba537fd98b49ef51a7fbf3b652"
	abandonBackupPub = "3ae4e717d5b3dc390a971aebbeefc9f1621ded40f7d2791a255c7aa1689ac83c"
)

func TestBackupKeyDerivation(t *testing.T) {
	k, err := BackupKeyFromMnemonic(abandon, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	r := k.Recipient()
	t.Logf("wallet id %s, public key %x", r.WalletID, r.PublicKey)
	if r.Version != BackupKeyVersion || r.Fingerprint != "73c5da0a" || len(r.PublicKey) != 32 {
		t.Fatalf("recipient %+v", r)
	}
	if got := r.WalletID.String(); got != abandonWalletID {
		t.Errorf("wallet id %s, want %s", got, abandonWalletID)
	}
	if got := hex.EncodeToString(r.PublicKey); got != abandonBackupPub {
		t.Errorf("public key %s, want %s", got, abandonBackupPub)
	}

	// The documented derivation, step by step with other code: hdkeychain for BIP32 and
	// crypto/hpke for the key pair.
	seed, _ := keys.SeedFromMnemonic(abandon, nil)
	master, _ := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	child := master
	for _, i := range []uint32{1095653697, 0, 0} {
		if child, err = child.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			t.Fatal(err)
		}
	}
	priv, _ := child.ECPrivKey()
	ikm := priv.Key.Bytes()
	kp, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(ikm[:])
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(slices.Concat([]byte("anya backup wallet id v1"), []byte{0x73, 0xc5, 0xda, 0x0a}, kp.PublicKey().Bytes()))
	if !bytes.Equal(kp.PublicKey().Bytes(), r.PublicKey) || !bytes.Equal(id[:16], r.WalletID[:]) {
		t.Fatal("the derivation does not follow its documentation")
	}

	// The same words give the same key; a BIP39 passphrase or other words another wallet.
	again, _ := BackupKeyFromMnemonic("  ABANDON abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about ", nil)
	withPass, _ := BackupKeyFromMnemonic(abandon, []byte("TREZOR"))
	other, _ := BackupKeyFromMnemonic("legal winner thank year wave sausage worth useful legal winner thank yellow", nil)
	if again.WalletID() != k.WalletID() || !bytes.Equal(again.Recipient().PublicKey, r.PublicKey) {
		t.Fatal("same mnemonic, different key")
	}
	if withPass.WalletID() == k.WalletID() || other.WalletID() == k.WalletID() || withPass.Fingerprint() == k.Fingerprint() {
		t.Fatal("different wallets share a wallet id")
	}
	if _, err := BackupKeyFromMnemonic("abandon abandon", nil); err == nil {
		t.Fatal("bad mnemonic accepted")
	}

	// Seal with the public half, open with the private half: the same secrets.
	info := []byte("test info")
	enc, sender, err := r.Seal(info)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sender.Export("payload", 32)
	rcpt, err := k.Open(enc, info)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := rcpt.Export("payload", 32); !bytes.Equal(got, want) {
		t.Fatal("recipient derives another secret")
	}
	// Another wallet's key, or other info, derives other secrets; a malformed enc is refused.
	for name, open := range map[string]func() (BackupExporter, error){
		"other key":  func() (BackupExporter, error) { return other.Open(enc, info) },
		"other info": func() (BackupExporter, error) { return k.Open(enc, []byte("other")) },
	} {
		ex, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := ex.Export("payload", 32); bytes.Equal(got, want) {
			t.Fatalf("%s: same secret", name)
		}
	}
	if _, err := k.Open(enc[:31], info); !errors.Is(err, ErrBackupKey) {
		t.Fatalf("short enc: %v", err)
	}
	if _, _, err := (BackupRecipient{Version: 2, PublicKey: r.PublicKey}).Seal(info); err == nil {
		t.Fatal("unknown key version accepted")
	}

	// Zeroed keys are unusable and nothing prints the key.
	for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v", k, k, k)} {
		if !strings.Contains(s, "redacted") {
			t.Fatalf("String: %s", s)
		}
	}
	again.Zero()
	if _, err := again.Open(enc, info); err == nil {
		t.Fatal("zeroed key opened a backup")
	}
	if !strings.Contains(again.String(), "zeroed") {
		t.Fatal(again.String())
	}
}

func TestCustodyBackupKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anya.db")
	sealers := map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}
	b := openBox(t, path, sealers, sign.Policy{})
	if _, err := b.c.BackupKey(); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("no wallet: %v", err)
	}
	if _, err := b.c.BackupRecipient(); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("no wallet: %v", err)
	}
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); err != nil {
		t.Fatal(err)
	}
	fromWords, _ := BackupKeyFromMnemonic(abandon, nil)
	defer fromWords.Zero()

	k, err := b.c.BackupKey()
	if err != nil {
		t.Fatal(err)
	}
	if k.WalletID() != fromWords.WalletID() {
		t.Fatal("the custody's backup key is not the mnemonic's")
	}
	k.Zero()
	recs, _ := b.c.Audit().List(0, 100)
	if last := recs[len(recs)-1]; last.Event != audit.EventBackup {
		t.Fatalf("last audit record %+v", last)
	}

	b.c.Lock()
	if _, err := b.c.BackupKey(); !errors.Is(err, ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	// The public half works while locked, and after a restart.
	r, err := b.c.BackupRecipient()
	if err != nil || r.WalletID != fromWords.WalletID() || !bytes.Equal(r.PublicKey, fromWords.Recipient().PublicKey) {
		t.Fatalf("recipient while locked: %+v, %v", r, err)
	}
	b.close()

	// A wallet recorded before backups existed: no recipient until the next unlock.
	b = openBox(t, path, sealers, sign.Policy{})
	defer b.close()
	rec, _, _ := b.c.record()
	rec.Backup = nil
	if err := b.c.wallet.Put("current", rec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.BackupRecipient(); !errors.Is(err, ErrLocked) {
		t.Fatalf("legacy record, locked: %v", err)
	}
	if err := b.c.Unlock(ctx, seal.Auth{Passphrase: passphrase}); err != nil {
		t.Fatal(err)
	}
	b.c.Lock()
	if r, err := b.c.BackupRecipient(); err != nil || r.WalletID != fromWords.WalletID() {
		t.Fatalf("legacy record after unlock: %+v, %v", r, err)
	}
	if n, err := b.c.Audit().Verify(); err != nil {
		t.Fatalf("audit after %d records: %v", n, err)
	}
}
