package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"github.com/anya-edge/anya/hsm/seal"
)

// SigningKey is an ECDSA P-256 key that the TPM generated and holds: a signing key (not
// restricted, no decryption) under the storage root key of the owner hierarchy, created with
// FixedTPM, FixedParent and SensitiveDataOrigin, so its private part exists only inside this
// TPM and, outside it, only encrypted under the SRK. It is the box's identity towards the
// fleet server. It implements crypto.Signer for SHA-256 digests, with ASN.1 DER signatures
// like crypto/ecdsa.
//
// The key has an empty auth value and NoDA (there is nothing to guess, and a dictionary-attack
// lockout caused by a wrong PIN elsewhere must not stop the box from checking in). Anyone who
// can send commands to this TPM can therefore sign with it: the TPM keeps the key from being
// copied off the box, not from being used by root on the box.
//
// [SigningKey.Blob] is what to persist (public and private areas, nothing secret in the
// clear); [Sealer.LoadSigningKey] restores the key from it. Each Sign re-creates the SRK, loads
// the key, signs and flushes both (a few milliseconds), so no handle stays loaded.
type SigningKey struct {
	s         *Sealer
	pub       *ecdsa.PublicKey
	pubArea   []byte // TPM2B_PUBLIC contents (TPMT_PUBLIC)
	privArea  []byte // TPM2B_PRIVATE contents
	blobBytes []byte
}

// signKeyMagic starts a signing key blob; the version follows.
const (
	signKeyMagic   = "ANYA-TPM-SIGNKEY"
	signKeyVersion = 1
	maxAreaSize    = 4096
)

// signingKeyTemplate is the public area of a device signing key.
func signingKeyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			NoDA:                true,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
					&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	}
}

// CreateSigningKey creates a new signing key in the TPM and returns it; persist its Blob.
func (s *Sealer) CreateSigningKey(ctx context.Context) (*SigningKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpm: create signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		return nil, err
	}
	defer s.flush(srk.Handle)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(signingKeyTemplate()),
	}.Execute(s.tpm)
	if err != nil {
		return nil, tpmErr("create signing key", err)
	}
	return newSigningKey(s, rsp.OutPublic.Bytes(), rsp.OutPrivate.Buffer)
}

// LoadSigningKey restores a signing key from its Blob. It loads the key once to check that
// this TPM accepts it: a damaged blob, or one made by another TPM (a cleared TPM or a new
// mainboard counts as another), is [seal.ErrCorrupt].
func (s *Sealer) LoadSigningKey(ctx context.Context, blob []byte) (*SigningKey, error) {
	pub, priv, err := parseSigningKeyBlob(blob)
	if err != nil {
		return nil, fmt.Errorf("tpm: signing key blob: %w: %w", err, seal.ErrCorrupt)
	}
	k, err := newSigningKey(s, pub, priv)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpm: load signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		return nil, err
	}
	defer s.flush(srk.Handle)
	h, err := s.load(srk, k.pubArea, k.privArea, "signing key")
	if err != nil {
		return nil, err
	}
	s.flush(h.Handle)
	return k, nil
}

// newSigningKey checks that the public area is a signing key made from our template (so that
// a blob cannot smuggle in, say, a key imported from outside the TPM) and returns the key.
func newSigningKey(s *Sealer, pubArea, privArea []byte) (*SigningKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](pubArea)
	if err != nil {
		return nil, fmt.Errorf("tpm: signing key public area: %w: %w", err, seal.ErrCorrupt)
	}
	want := signingKeyTemplate()
	if pub.Type != tpm2.TPMAlgECC || pub.NameAlg != want.NameAlg || pub.ObjectAttributes != want.ObjectAttributes {
		return nil, fmt.Errorf("tpm: signing key public area: not a TPM-generated signing key: %w", seal.ErrCorrupt)
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil || parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, fmt.Errorf("tpm: signing key public area: not a P-256 key: %w", seal.ErrCorrupt)
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("tpm: signing key public area: %w: %w", err, seal.ErrCorrupt)
	}
	ecpub, err := tpm2.ECDSAPub(parms, point)
	if err != nil || !ecpub.Curve.IsOnCurve(ecpub.X, ecpub.Y) {
		return nil, fmt.Errorf("tpm: signing key public area: invalid point: %w", seal.ErrCorrupt)
	}
	k := &SigningKey{s: s, pub: ecpub, pubArea: pubArea, privArea: privArea}
	k.blobBytes = k.encode()
	return k, nil
}

// encode lays out a blob: magic, version, then the public and the private area, each with a
// 16-bit big-endian length.
func (k *SigningKey) encode() []byte {
	b := append([]byte(signKeyMagic), signKeyVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.pubArea)))
	b = append(b, k.pubArea...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.privArea)))
	return append(b, k.privArea...)
}

func parseSigningKeyBlob(b []byte) (pub, priv []byte, err error) {
	if len(b) < len(signKeyMagic)+1 || string(b[:len(signKeyMagic)]) != signKeyMagic {
		return nil, nil, errors.New("not a signing key blob")
	}
	if v := b[len(signKeyMagic)]; v != signKeyVersion {
		return nil, nil, fmt.Errorf("unknown version %d", v)
	}
	r := b[len(signKeyMagic)+1:]
	field := func() ([]byte, error) {
		if len(r) < 2 {
			return nil, errors.New("truncated")
		}
		n := int(binary.BigEndian.Uint16(r))
		if n == 0 || n > maxAreaSize || len(r) < 2+n {
			return nil, errors.New("truncated or oversized area")
		}
		f := r[2 : 2+n]
		r = r[2+n:]
		return f, nil
	}
	if pub, err = field(); err != nil {
		return nil, nil, err
	}
	if priv, err = field(); err != nil {
		return nil, nil, err
	}
	if len(r) != 0 {
		return nil, nil, errors.New("trailing bytes")
	}
	return pub, priv, nil
}

// Blob returns the key's persistent form (no secret in the clear: the private area is
// encrypted under this TPM's SRK).
func (k *SigningKey) Blob() []byte { return append([]byte(nil), k.blobBytes...) }

// Public returns the *ecdsa.PublicKey.
func (k *SigningKey) Public() crypto.PublicKey { return k.pub }

// Sign signs a SHA-256 digest in the TPM and returns an ASN.1 DER ECDSA signature. The
// random source is not used: the TPM makes its own nonce.
func (k *SigningKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, errors.New("tpm: signing key signs SHA-256 digests only")
	}
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		return nil, err
	}
	defer s.flush(srk.Handle)
	h, err := s.load(srk, k.pubArea, k.privArea, "signing key")
	if err != nil {
		return nil, err
	}
	defer s.flush(h.Handle)
	rsp, err := tpm2.Sign{
		KeyHandle: tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)},
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(s.tpm)
	if err != nil {
		return nil, tpmErr("sign", err)
	}
	sig, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig.SignatureR.Buffer), new(big.Int).SetBytes(sig.SignatureS.Buffer)})
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: encode signature: %w", err)
	}
	return der, nil
}
