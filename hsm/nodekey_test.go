package hsm

import (
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TestNodeKeyDerivation checks the documented path with other code (hdkeychain), and that
// the key is the same on every call and differs from the backup key's path.
func TestNodeKeyDerivation(t *testing.T) {
	k, err := NodeKeyFromMnemonic(abandon, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()

	seed, _ := keys.SeedFromMnemonic(abandon, nil)
	child, _ := hdkeychain.NewMaster(seed, &chaincfg.RegressionNetParams)
	for _, i := range []uint32{1095653697, 1, 0} {
		if child, err = child.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := child.ECPubKey()
	if !k.PubKey().IsEqual(want) {
		t.Fatalf("node id %x, want %x", k.PubKey().SerializeCompressed(), want.SerializeCompressed())
	}
	t.Logf("abandon node id %x", want.SerializeCompressed())

	other, err := NodeKeyFromMnemonic(abandon, []byte("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if other.PubKey().IsEqual(k.PubKey()) {
		t.Fatal("a BIP39 passphrase must give another node key")
	}
	if s := k.String(); !strings.Contains(s, "redacted") {
		t.Fatalf("String %q", s)
	}
}

func TestNodeKeyECDHAndSign(t *testing.T) {
	k, err := NodeKeyFromMnemonic(abandon, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote, _ := btcec.NewPrivateKey()
	got, err := k.ECDH(remote.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	// The remote side computes the same secret from its private key and our public key.
	var p, s btcec.JacobianPoint
	k.PubKey().AsJacobian(&p)
	btcec.ScalarMultNonConst(&remote.Key, &p, &s)
	s.ToAffine()
	if want := sha256.Sum256(btcec.NewPublicKey(&s.X, &s.Y).SerializeCompressed()); got != want {
		t.Fatalf("ECDH %x, want %x", got, want)
	}

	msg := []byte("channel_update body")
	sig, err := k.SignMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !sig.Verify(chainhash.DoubleHashB(msg), k.PubKey()) {
		t.Fatal("signature does not verify over the double SHA-256")
	}
	if sig.Verify(chainhash.DoubleHashB([]byte("other")), k.PubKey()) {
		t.Fatal("signature verifies over another message")
	}

	k.Zero()
	if _, err := k.ECDH(remote.PubKey()); err == nil {
		t.Fatal("ECDH after Zero")
	}
	if _, err := k.SignMessage(msg); err == nil {
		t.Fatal("SignMessage after Zero")
	}
}

func TestCustodyNodeKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anya.db")
	b := openBox(t, path, map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}, sign.Policy{})
	defer b.close()
	if _, err := b.c.NodeKey(); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("no wallet: %v", err)
	}
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); err != nil {
		t.Fatal(err)
	}
	k, err := b.c.NodeKey()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	fromWords, _ := NodeKeyFromMnemonic(abandon, nil)
	defer fromWords.Zero()
	if !k.PubKey().IsEqual(fromWords.PubKey()) {
		t.Fatal("the custody's node key is not the mnemonic's")
	}
	recs, _ := b.c.Audit().List(0, 100)
	if last := recs[len(recs)-1]; last.Event != audit.EventNodeKey {
		t.Fatalf("last audit record %+v", last)
	}
	b.c.Lock()
	if _, err := b.c.NodeKey(); !errors.Is(err, ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
}
