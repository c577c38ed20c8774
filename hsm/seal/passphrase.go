package seal

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Argon2Params are the argon2id cost parameters. They are stored in every blob, so a blob
// sealed with one set opens under a [Passphrase] configured with another (within its limits).
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultArgon2 is the cost used by [NewPassphrase]: t=3, m=64 MiB, p=2.
//
// Measured with BenchmarkArgon2 / BenchmarkAnchorArgon2id (go test -bench . ./hsm/seal) on the
// 2-core x86-64 development machine: ~72 ms per derivation with x/crypto's SSE code, ~285 ms
// with -tags purego, which is the generic code arm64 runs; t=1 and t=2 cost 27 and 48 ms,
// m=128 MiB 190-330 ms. A Cortex-A72/A76 class ARM box should therefore take roughly
// 0.3-0.6 s per Seal or Unseal (an estimate, not a measurement on the board): an acceptable
// pause once per unlock, and 64 MiB is affordable next to the node. This meets the RFC 9106 /
// OWASP second recommendation (t=3, m=64 MiB). p=2 matches the cores a small box can spare;
// lanes add parallelism, not security.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// DefaultArgon2Limits bound the parameters an Unseal accepts from a blob, so that a damaged or
// crafted blob cannot make the box spend minutes or gigabytes deriving a key.
var DefaultArgon2Limits = Argon2Params{Time: 16, MemoryKiB: 1024 * 1024, Threads: 16}

// Passphrase blob format, version 1 (Blob.Version = 1, Blob.Kind = "passphrase"). Data is:
//
//	offset size
//	0      1    format version (1)
//	1      1    KDF (1 = argon2id v1.3)
//	2      4    time, big endian
//	6      4    memory KiB, big endian
//	10     1    threads
//	11     16   salt
//	27     24   XChaCha20-Poly1305 nonce
//	51     n+16 ciphertext of the n-byte secret, with the Poly1305 tag
//	end-32 32   SHA-256 of everything before it
//
// The first 51 bytes are the header; the AEAD's associated data is "anya/seal/passphrase\x00"
// followed by the header, so the parameters, salt and nonce cannot be changed without the
// tag failing. The trailing SHA-256 is not a security measure (anyone can recompute it): it
// tells accidental damage (ErrCorrupt) from a wrong passphrase (ErrWrongAuth) before an
// expensive derivation, and costs 32 bytes.
const (
	passphraseVersion  = 1
	kdfArgon2id        = 1
	ppSaltLen          = 16
	ppHeaderLen        = 11 + ppSaltLen + chacha20poly1305.NonceSizeX
	ppChecksumLen      = sha256.Size
	ppMinLen           = ppHeaderLen + chacha20poly1305.Overhead + ppChecksumLen
	ppAssociatedPrefix = "anya/seal/passphrase\x00"
	// MaxPassphraseSecret is the largest secret the passphrase provider seals.
	MaxPassphraseSecret = 64 << 10
)

// Passphrase seals secrets with a key derived from the owner's passphrase (argon2id) and
// XChaCha20-Poly1305. It needs no device: it is the recovery path when the TPM is gone and the
// provider for boxes without one. It is safe for concurrent use.
type Passphrase struct {
	params Argon2Params
	limits Argon2Params
	rand   io.Reader
}

// PassphraseOption configures a [Passphrase].
type PassphraseOption func(*Passphrase)

// WithArgon2 sets the cost used for new blobs (tests use tiny values; production keeps
// [DefaultArgon2]). Limits are raised to admit them if needed.
func WithArgon2(p Argon2Params) PassphraseOption {
	return func(s *Passphrase) { s.params = p }
}

// WithArgon2Limits sets the largest parameters Unseal accepts from a blob.
func WithArgon2Limits(max Argon2Params) PassphraseOption {
	return func(s *Passphrase) { s.limits = max }
}

// NewPassphrase returns the passphrase provider.
func NewPassphrase(opts ...PassphraseOption) (*Passphrase, error) {
	s := &Passphrase{params: DefaultArgon2, limits: DefaultArgon2Limits, rand: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	s.limits.Time = max(s.limits.Time, s.params.Time)
	s.limits.MemoryKiB = max(s.limits.MemoryKiB, s.params.MemoryKiB)
	s.limits.Threads = max(s.limits.Threads, s.params.Threads)
	if err := s.params.check(s.limits); err != nil {
		return nil, fmt.Errorf("seal: passphrase: argon2 parameters: %w", err)
	}
	return s, nil
}

func (p Argon2Params) check(limits Argon2Params) error {
	switch {
	case p.Time < 1 || p.Time > limits.Time:
		return fmt.Errorf("time %d outside 1..%d", p.Time, limits.Time)
	case p.Threads < 1 || p.Threads > limits.Threads:
		return fmt.Errorf("threads %d outside 1..%d", p.Threads, limits.Threads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > limits.MemoryKiB:
		return fmt.Errorf("memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), limits.MemoryKiB)
	}
	return nil
}

// Kind implements [Sealer].
func (s *Passphrase) Kind() string { return KindPassphrase }

// Seal implements [Sealer]. It uses auth.Passphrase (auth.PIN is ignored) and rejects an empty
// one with [ErrEmptyPassphrase].
func (s *Passphrase) Seal(ctx context.Context, secret []byte, auth Auth) (Blob, error) {
	if err := ctx.Err(); err != nil {
		return Blob{}, fmt.Errorf("seal: passphrase: %w", err)
	}
	if len(auth.Passphrase) == 0 {
		return Blob{}, fmt.Errorf("seal: passphrase: %w", ErrEmptyPassphrase)
	}
	if len(secret) == 0 || len(secret) > MaxPassphraseSecret {
		return Blob{}, fmt.Errorf("seal: passphrase: secret of %d bytes, want 1..%d", len(secret), MaxPassphraseSecret)
	}
	data := make([]byte, ppHeaderLen, ppHeaderLen+len(secret)+chacha20poly1305.Overhead+ppChecksumLen)
	data[0] = passphraseVersion
	data[1] = kdfArgon2id
	binary.BigEndian.PutUint32(data[2:], s.params.Time)
	binary.BigEndian.PutUint32(data[6:], s.params.MemoryKiB)
	data[10] = s.params.Threads
	if _, err := io.ReadFull(s.rand, data[11:ppHeaderLen]); err != nil { // salt and nonce
		return Blob{}, fmt.Errorf("seal: passphrase: random salt and nonce: %w", err)
	}
	aead, err := s.aead(auth.Passphrase, s.params, data[11:11+ppSaltLen])
	if err != nil {
		return Blob{}, fmt.Errorf("seal: passphrase: %w", err)
	}
	nonce := data[11+ppSaltLen : ppHeaderLen]
	data = aead.Seal(data, nonce, secret, associated(data[:ppHeaderLen]))
	sum := sha256.Sum256(data)
	data = append(data, sum[:]...)
	return Blob{Kind: KindPassphrase, Version: passphraseVersion, Data: data}, nil
}

// Unseal implements [Sealer]. A damaged blob gives [ErrCorrupt]; a wrong passphrase — or a blob
// deliberately altered with its checksum recomputed, which cannot be told apart from it —
// gives [ErrWrongAuth].
func (s *Passphrase) Unseal(ctx context.Context, blob Blob, auth Auth) ([]byte, error) {
	if blob.Kind != KindPassphrase {
		return nil, fmt.Errorf("seal: passphrase: blob of kind %q: %w", blob.Kind, ErrWrongKind)
	}
	if blob.Version != passphraseVersion {
		return nil, fmt.Errorf("seal: passphrase: blob version %d, want %d: %w", blob.Version, passphraseVersion, ErrCorrupt)
	}
	data := blob.Data
	if len(data) < ppMinLen {
		return nil, fmt.Errorf("seal: passphrase: blob of %d bytes is too short: %w", len(data), ErrCorrupt)
	}
	body, sum := data[:len(data)-ppChecksumLen], data[len(data)-ppChecksumLen:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("seal: passphrase: checksum mismatch: %w", ErrCorrupt)
	}
	if body[0] != passphraseVersion || body[1] != kdfArgon2id {
		return nil, fmt.Errorf("seal: passphrase: format %d, KDF %d not supported: %w", body[0], body[1], ErrCorrupt)
	}
	params := Argon2Params{
		Time:      binary.BigEndian.Uint32(body[2:]),
		MemoryKiB: binary.BigEndian.Uint32(body[6:]),
		Threads:   body[10],
	}
	if err := params.check(s.limits); err != nil {
		return nil, fmt.Errorf("seal: passphrase: blob's argon2 parameters: %v: %w", err, ErrCorrupt)
	}
	if len(auth.Passphrase) == 0 {
		return nil, fmt.Errorf("seal: passphrase: %w: %w", ErrWrongAuth, ErrEmptyPassphrase)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("seal: passphrase: %w", err)
	}
	aead, err := s.aead(auth.Passphrase, params, body[11:11+ppSaltLen])
	if err != nil {
		return nil, fmt.Errorf("seal: passphrase: %w", err)
	}
	secret, err := aead.Open(nil, body[11+ppSaltLen:ppHeaderLen], body[ppHeaderLen:], associated(body[:ppHeaderLen]))
	if err != nil {
		return nil, fmt.Errorf("seal: passphrase: authentication failed: %w", ErrWrongAuth)
	}
	return secret, nil
}

// aead derives the key and returns the cipher; the derived key is zeroed before returning
// (the cipher keeps its own copy, which Go gives no way to wipe).
func (s *Passphrase) aead(passphrase []byte, p Argon2Params, salt []byte) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	defer Zero(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, errors.New("XChaCha20-Poly1305 setup failed")
	}
	return aead, nil
}

func associated(header []byte) []byte {
	return bytes.Join([][]byte{[]byte(ppAssociatedPrefix), header}, nil)
}
