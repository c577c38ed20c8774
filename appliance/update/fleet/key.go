package fleet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Key is a device's signing key: a crypto.Signer for ECDSA P-256 over SHA-256 digests (ASN.1
// DER signatures) that says where its private key is held.
type Key interface {
	crypto.Signer
	Attestation() Attestation
}

// TPMKey marks s, a signer whose private key the TPM holds (hsm/tpm's SigningKey), as a Key
// with AttestationTPM.
func TPMKey(s crypto.Signer) Key { return attested{s, AttestationTPM} }

type attested struct {
	crypto.Signer
	a Attestation
}

func (k attested) Attestation() Attestation { return k.a }

// SoftwareKey is a P-256 key whose private key is kept in a file, for boxes without a TPM.
type SoftwareKey struct {
	priv *ecdsa.PrivateKey
}

// Public returns the public key.
func (k *SoftwareKey) Public() crypto.PublicKey { return &k.priv.PublicKey }

// Sign signs a SHA-256 digest.
func (k *SoftwareKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, errors.New("fleet: software key signs SHA-256 digests only")
	}
	return k.priv.Sign(r, digest, opts)
}

// Attestation is AttestationSoftware.
func (k *SoftwareKey) Attestation() Attestation { return AttestationSoftware }

// NewSoftwareKey wraps an existing P-256 private key (not persisted).
func NewSoftwareKey(priv *ecdsa.PrivateKey) (*SoftwareKey, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, errors.New("fleet: device key must be ECDSA P-256")
	}
	return &SoftwareKey{priv: priv}, nil
}

// GenerateSoftwareKey returns a new key that lives only in memory (tests, simulations).
func GenerateSoftwareKey() (*SoftwareKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fleet: generate device key: %w", err)
	}
	return &SoftwareKey{priv: priv}, nil
}

const pemType = "PRIVATE KEY"

// LoadSoftwareKey reads the key file at path (PKCS #8 PEM). A file that others than its owner
// may read or write is refused.
func LoadSoftwareKey(path string) (*SoftwareKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: device key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fleet: device key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("fleet: device key %s: mode %v lets others access it; want 0600", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("fleet: device key %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType {
		return nil, fmt.Errorf("fleet: device key %s: no %s PEM block", path, pemType)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("fleet: device key %s: %w", path, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("fleet: device key %s: %T is not an ECDSA P-256 key", path, k)
	}
	return &SoftwareKey{priv: priv}, nil
}

// LoadOrCreateSoftwareKey loads the key file at path, or creates it with a new key if there is
// none. The file is created with mode 0600 (its directory 0700 if missing) and appears
// complete or not at all.
func LoadOrCreateSoftwareKey(path string) (*SoftwareKey, error) {
	k, err := LoadSoftwareKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateSoftwareKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("fleet: device key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	if err := writeNew(path, data); err != nil {
		return nil, fmt.Errorf("fleet: device key %s: %w", path, err)
	}
	// Another process may have won the race to create it: the file is the truth.
	return LoadSoftwareKey(path)
}

// writeNew writes data to a temporary file, syncs it and links it to path, failing (with
// nothing changed) if path exists.
func writeNew(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
