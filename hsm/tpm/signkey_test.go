package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
)

// TestSigningKey: a key created in swtpm signs verifiable signatures, survives a power cycle
// through its blob, and damaged blobs or blobs of another TPM are refused as corrupt.
func TestSigningKey(t *testing.T) {
	ctx := context.Background()
	sim := tpmtest.Start(t)
	s := newTestSealer(t, sim)
	k, err := s.CreateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("public key %T", k.Public())
	}
	var _ crypto.Signer = k
	d := sha256.Sum256([]byte("check-in"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatal("TPM signature does not verify")
	}
	if _, err := k.Sign(nil, d[:20], crypto.SHA1); err == nil {
		t.Fatal("signed a SHA-1 digest")
	}

	blob := k.Blob()
	sim.Reboot()
	s2 := newTestSealer(t, sim)
	k2, err := s2.LoadSigningKey(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("reloaded key has another public key")
	}
	d2 := sha256.Sum256([]byte("after reboot"))
	sig2, err := k2.Sign(nil, d2[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, d2[:], sig2) {
		t.Fatal("signature after reboot does not verify")
	}

	bad := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("X"), blob[1:]...),
		"truncated": blob[:len(blob)-3],
		"trailing":  append(append([]byte(nil), blob...), 0),
		"version":   func() []byte { b := append([]byte(nil), blob...); b[len(signKeyMagic)] = 9; return b }(),
		// a flipped byte in the private area: the TPM's integrity check refuses it
		"private": func() []byte { b := append([]byte(nil), blob...); b[len(b)-5] ^= 1; return b }(),
		// the public area: FixedTPM cleared (attributes are bytes 4..7), a damaged length
		"attributes": func() []byte { b := append([]byte(nil), blob...); b[len(signKeyMagic)+1+2+7] ^= 0x02; return b }(),
		"public":     func() []byte { b := append([]byte(nil), blob...); b[len(signKeyMagic)+1+2+8] ^= 0x40; return b }(),
	}
	for name, b := range bad {
		if _, err := s2.LoadSigningKey(ctx, b); !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}

	other := newTestSealer(t, tpmtest.Start(t))
	if _, err := other.LoadSigningKey(ctx, blob); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("blob loaded into another TPM: %v", err)
	}
}
