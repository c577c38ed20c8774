// Package seal defines how the box protects its wallet seed at rest: a [Sealer] turns a secret
// into a [Blob] that only the same device (TPM, YubiKey) or the same passphrase can open again.
// Providers live in their own packages (passphrase in this one; hsm/tpm, hsm/piv) and all of
// them pass the shared conformance suite in hsm/seal/sealtest.
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
)

// Zero overwrites b with zeros.
func Zero(b []byte) {
	clear(b)
}
