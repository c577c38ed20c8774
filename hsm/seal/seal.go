// Package seal defines how the box protects its wallet seed at rest: a [Sealer] turns a secret
// into a [Blob] that only the same device (TPM, YubiKey) or the same passphrase can open again.
// Providers live in their own packages (passphrase in this one; hsm/tpm, hsm/piv) and all of
// them pass the shared conformance suite in hsm/seal/sealtest.
//
// # The passphrase provider
//
// [Passphrase] derives a 256-bit key from the passphrase with argon2id and encrypts the secret
// with XChaCha20-Poly1305, both from golang.org/x/crypto (pure Go, already a dependency, the
// reference implementations for Go). argon2id because it is memory-hard (a GPU or ASIC gains
// little against 64 MiB per guess) and is the RFC 9106 / OWASP recommendation; its parameters
// are stored in each blob, so they can be raised later without breaking old blobs, and bounded
// on Unseal so a crafted blob cannot exhaust the box. XChaCha20-Poly1305 because its 192-bit
// nonce can be random without any counter, and it is fast without AES instructions (small ARM
// cores). The header (format version, KDF parameters, salt, nonce) is the AEAD's associated
// data; a trailing SHA-256 lets Unseal report accidental damage as [ErrCorrupt] and keep
// [ErrWrongAuth] for a wrong passphrase. The binary layout is documented in passphrase.go.
// An empty passphrase is refused ([ErrEmptyPassphrase]). The derived key is zeroed after use;
// the passphrase is the caller's to zero.
package seal

import (
	"context"
	"errors"
)

// Kinds of sealers.
const (
	KindPassphrase = "passphrase"
	KindTPM        = "tpm"
	KindPIV        = "piv"
)

// Blob is a sealed secret with what is needed to open it again (never the secret itself, nor
// anything from which it can be derived without the device or passphrase). It is safe to store
// on disk and to back up.
type Blob struct {
	Kind    string `json:"kind"`    // which provider sealed it
	Version int    `json:"version"` // the provider's format version
	Data    []byte `json:"data"`    // provider-specific, authenticated
}

// Auth is what the owner supplies to unseal: a passphrase, or a PIN for a hardware key. A
// provider that needs neither (a TPM sealing to the boot state) ignores it.
type Auth struct {
	Passphrase []byte
	PIN        string
}

// Sealer protects secrets.
type Sealer interface {
	Kind() string
	// Seal protects secret. The caller keeps ownership of secret and zeroes it.
	Seal(ctx context.Context, secret []byte, auth Auth) (Blob, error)
	// Unseal returns the secret. The caller zeroes it after use.
	Unseal(ctx context.Context, blob Blob, auth Auth) ([]byte, error)
}

// Errors every provider returns (wrapped) so callers and the page can tell the owner what to do.
var (
	ErrWrongAuth     = errors.New("wrong passphrase or PIN")
	ErrCorrupt       = errors.New("sealed data is corrupted or was not made by this provider")
	ErrDeviceMissing = errors.New("the sealing device is not present")
	ErrBootState     = errors.New("this system booted differently than when the seed was sealed")
	ErrLocked        = errors.New("the device is locked after too many wrong attempts")
	ErrWrongKind     = errors.New("sealed by another kind of provider")
	// ErrEmptyPassphrase is returned by Seal when a provider that requires a passphrase gets an
	// empty one (and, wrapped together with ErrWrongAuth, by Unseal).
	ErrEmptyPassphrase = errors.New("an empty passphrase is not allowed")
)

// Zero overwrites b with zeros.
func Zero(b []byte) {
	clear(b)
}
