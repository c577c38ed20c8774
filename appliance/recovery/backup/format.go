package backup

import (
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/anya-edge/anya/hsm"
)

// Errors of Verify and Restore (wrapped, with details in the message). Exactly one of them
// applies to any backup that cannot be read; see the package documentation for how they are
// told apart.
var (
	ErrNotBackup   = errors.New("this is not an Anya backup")
	ErrCorrupted   = errors.New("the backup is damaged")
	ErrTruncated   = errors.New("the backup is incomplete: the file was cut short")
	ErrOtherWallet = errors.New("the backup was made for another wallet")
	ErrWrongKey    = errors.New("the key does not open this backup")
	ErrNewerFormat = errors.New("the backup was written by newer firmware in a format this firmware cannot read")
	ErrNewerSchema = errors.New("the backup holds data from newer firmware that this firmware cannot read")
)

// WalletMismatchError says which wallet a backup was made for and which one the key (the
// mnemonic typed, or this box's wallet) belongs to. It wraps ErrOtherWallet.
type WalletMismatchError struct {
	BackupFingerprint string
	BackupWallet      hsm.WalletID
	BackupNetwork     string
	KeyFingerprint    string
	KeyWallet         hsm.WalletID
	Network           string // the network this box runs, when it is what differs
}

func (e *WalletMismatchError) Error() string {
	if e.Network != "" {
		return fmt.Sprintf("%v: the backup is of wallet %s on %s, this box runs %s", ErrOtherWallet, e.BackupFingerprint, e.BackupNetwork, e.Network)
	}
	return fmt.Sprintf("%v: the backup is of wallet %s (id %s), the key opens wallet %s (id %s) — check the mnemonic and passphrase",
		ErrOtherWallet, e.BackupFingerprint, e.BackupWallet, e.KeyFingerprint, e.KeyWallet)
}

func (e *WalletMismatchError) Unwrap() error { return ErrOtherWallet }

// The layout; see the package documentation.
const (
	magic         = "ANYABKUP"
	FormatVersion = 1 // the format this code writes and the newest it reads

	prefixSize    = 18 // magic, version, body length, CRC-32C
	maxHeaderBody = 64 << 10
	checksumSize  = sha256.Size

	// ChunkSize is the plaintext size of every chunk; a chunk's ciphertext is 16 bytes
	// longer (the Poly1305 tag).
	ChunkSize = 16 << 10
	// chunkData is what a chunk carries of the payload: its first 4 bytes are the count.
	chunkData   = ChunkSize - 4
	chunkSealed = ChunkSize + chacha20poly1305.Overhead

	noncePrefixSize = chacha20poly1305.NonceSizeX - 9 // 15: then 8 counter bytes and the final flag
	keyCheckSize    = 16
	contentIDSize   = 16

	// Identifiers in the header of version 1.
	kemX25519      = 0x0020 // HPKE DHKEM(X25519, HKDF-SHA256)
	kdfHKDFSHA256  = 0x0001 // HPKE HKDF-SHA256
	aeadExportOnly = 0xFFFF // HPKE export-only
	cipherName     = "xchacha20poly1305-chunked"
	compressName   = "zstd"
	encSize        = 32 // X25519 encapsulated key

	// HPKE info and exporter labels.
	hpkeInfoLabel  = "anya backup v1"
	keyCheckLabel  = "anya backup v1 key check"
	payloadLabel   = "anya backup v1 payload key"
	contentIDLabel = "anya backup v1 content id"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Content is one subsystem listed in a backup's header.
type Content struct {
	Subsystem string   `json:"subsystem"`
	Version   int      `json:"version"`
	MinReader int      `json:"min_reader"`
	Only      []string `json:"only,omitempty"`
	Except    []string `json:"except,omitempty"`
}

// Header is the clear, authenticated part of a backup: what the page can show about a
// backup without the key. Every field is covered by the header checksum and, through it,
// authenticated by every chunk.
type Header struct {
	Format      int          `json:"-"` // from the prefix
	Created     time.Time    `json:"created"`
	BoxVersion  string       `json:"box_version"`
	Network     string       `json:"network"`
	Fingerprint string       `json:"fingerprint"`
	WalletID    hsm.WalletID `json:"wallet_id"`
	KeyVersion  int          `json:"key_version"`
	KEM         uint16       `json:"kem"`
	KDF         uint16       `json:"kdf"`
	AEAD        uint16       `json:"aead"`
	Cipher      string       `json:"cipher"`
	Compression string       `json:"compression"`
	ChunkSize   int          `json:"chunk_size"`
	Contents    []Content    `json:"contents"`
	// ContentID is a keyed digest of the content (see ContentID), equal for equal content.
	ContentID []byte `json:"content_id"`
	Enc       []byte `json:"enc"`       // HPKE encapsulated key
	KeyCheck  []byte `json:"key_check"` // HPKE export, tells a wrong key from damage
	Nonce     []byte `json:"nonce"`     // prefix of every chunk's nonce
}

// encodeHeader returns the header bytes (prefix, body, checksum) and the checksum.
func encodeHeader(h *Header) ([]byte, [checksumSize]byte, error) {
	body, err := json.Marshal(h)
	if err != nil {
		return nil, [checksumSize]byte{}, fmt.Errorf("encode header: %w", err)
	}
	if len(body) > maxHeaderBody {
		return nil, [checksumSize]byte{}, fmt.Errorf("encode header: %d bytes, the limit is %d", len(body), maxHeaderBody)
	}
	out := make([]byte, 0, prefixSize+len(body)+checksumSize)
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint16(out, FormatVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	out = append(out, body...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), sum, nil
}

// readHeader reads and checks a header: magic (ErrNotBackup), version (ErrNewerFormat),
// prefix CRC and checksum (ErrCorrupted), length (ErrTruncated), then the fields.
func readHeader(r io.Reader) (*Header, [checksumSize]byte, error) {
	var sum [checksumSize]byte
	var prefix [prefixSize]byte
	n, err := io.ReadFull(r, prefix[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, sum, fmt.Errorf("read backup header: %w", err)
	}
	m := min(n, len(magic))
	if !bytes.Equal(prefix[:m], []byte(magic)[:m]) {
		return nil, sum, fmt.Errorf("%w: the file does not start with %q", ErrNotBackup, magic)
	}
	if n < prefixSize {
		return nil, sum, fmt.Errorf("%w: the file ends within the header (%d bytes)", ErrTruncated, n)
	}
	if got, want := binary.BigEndian.Uint32(prefix[14:]), crc32.Checksum(prefix[:14], castagnoli); got != want {
		return nil, sum, fmt.Errorf("%w: the header's first bytes do not match their checksum", ErrCorrupted)
	}
	version := int(binary.BigEndian.Uint16(prefix[8:]))
	if version > FormatVersion {
		return nil, sum, fmt.Errorf("%w: format version %d, this firmware reads up to %d", ErrNewerFormat, version, FormatVersion)
	}
	if version < 1 {
		return nil, sum, fmt.Errorf("%w: format version %d", ErrCorrupted, version)
	}
	bodyLen := binary.BigEndian.Uint32(prefix[10:])
	if bodyLen == 0 || bodyLen > maxHeaderBody {
		return nil, sum, fmt.Errorf("%w: header length %d", ErrCorrupted, bodyLen)
	}
	rest := make([]byte, int(bodyLen)+checksumSize)
	if _, err := io.ReadFull(r, rest); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, sum, fmt.Errorf("%w: the file ends within the header", ErrTruncated)
		}
		return nil, sum, fmt.Errorf("read backup header: %w", err)
	}
	body := rest[:bodyLen]
	h := sha256.New()
	h.Write(prefix[:])
	h.Write(body)
	copy(sum[:], h.Sum(nil))
	if !bytes.Equal(sum[:], rest[bodyLen:]) {
		return nil, sum, fmt.Errorf("%w: the header does not match its checksum", ErrCorrupted)
	}
	var hdr Header
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil {
		return nil, sum, fmt.Errorf("%w: header: %v", ErrCorrupted, err)
	}
	if dec.More() {
		return nil, sum, fmt.Errorf("%w: header: data after the header object", ErrCorrupted)
	}
	hdr.Format = version
	if err := hdr.check(); err != nil {
		return nil, sum, err
	}
	return &hdr, sum, nil
}

// check validates the fields of a version-1 header.
func (h *Header) check() error {
	switch {
	case h.KeyVersion > hsm.BackupKeyVersion:
		return fmt.Errorf("%w: backup key version %d, this firmware derives version %d", ErrNewerFormat, h.KeyVersion, hsm.BackupKeyVersion)
	case h.KEM != kemX25519 || h.KDF != kdfHKDFSHA256 || h.AEAD != aeadExportOnly || h.Cipher != cipherName || h.Compression != compressName:
		return fmt.Errorf("%w: unknown algorithms (kem %#04x, kdf %#04x, aead %#04x, cipher %q, compression %q)",
			ErrNewerFormat, h.KEM, h.KDF, h.AEAD, h.Cipher, h.Compression)
	case h.KeyVersion != hsm.BackupKeyVersion, h.ChunkSize != ChunkSize, len(h.Enc) != encSize,
		len(h.KeyCheck) != keyCheckSize, len(h.Nonce) != noncePrefixSize, len(h.ContentID) != contentIDSize:
		return fmt.Errorf("%w: header fields out of range", ErrCorrupted)
	}
	for _, c := range h.Contents {
		if c.Subsystem == "" || c.Version < 0 || c.MinReader < 0 {
			return fmt.Errorf("%w: header lists a malformed subsystem", ErrCorrupted)
		}
	}
	return nil
}

// hpkeInfo binds the HPKE context to the format and the wallet.
func hpkeInfo(id hsm.WalletID) []byte {
	return append([]byte(hpkeInfoLabel), id[:]...)
}

// nonce is the nonce of chunk i: the header's prefix, the counter, the final flag.
func nonce(prefix []byte, i uint64, final bool) []byte {
	n := make([]byte, 0, chacha20poly1305.NonceSizeX)
	n = append(n, prefix...)
	n = binary.BigEndian.AppendUint64(n, i)
	if final {
		return append(n, 1)
	}
	return append(n, 0)
}

// chunkWriter encrypts the payload into chunks. Every chunk has ChunkSize bytes of
// plaintext: a 4-byte count, that many payload bytes, zero padding. All chunks but the last
// are full (chunkData payload bytes); the last one is sealed with the final flag.
type chunkWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	prefix []byte
	ad     []byte
	buf    []byte // pending payload bytes, at most chunkData
	plain  []byte
	sealed []byte
	i      uint64
	n      int64 // bytes written to w
	err    error
}

func newChunkWriter(w io.Writer, key, prefix, ad []byte) (*chunkWriter, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return &chunkWriter{w: w, aead: aead, prefix: prefix, ad: ad,
		buf: make([]byte, 0, chunkData), plain: make([]byte, ChunkSize), sealed: make([]byte, 0, chunkSealed)}, nil
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && c.err == nil {
		if len(c.buf) == chunkData {
			c.seal(false) // more data follows, so this chunk is not the last
			continue
		}
		k := copy(c.buf[len(c.buf):chunkData], p)
		c.buf = c.buf[:len(c.buf)+k]
		p = p[k:]
		written += k
	}
	return written, c.err
}

func (c *chunkWriter) seal(final bool) {
	binary.BigEndian.PutUint32(c.plain, uint32(len(c.buf)))
	copy(c.plain[4:], c.buf)
	clear(c.plain[4+len(c.buf):])
	c.sealed = c.aead.Seal(c.sealed[:0], nonce(c.prefix, c.i, final), c.plain, c.ad)
	var k int
	k, c.err = c.w.Write(c.sealed)
	c.n += int64(k)
	c.i++
	clear(c.buf)
	c.buf = c.buf[:0]
}

// Close writes the final chunk. It does not close the underlying writer.
func (c *chunkWriter) Close() error {
	if c.err == nil {
		c.seal(true)
	}
	clear(c.plain)
	return c.err
}

// openChunks reads and decrypts the chunks that follow a header, up to limit payload bytes,
// and returns the payload. Damage gives ErrCorrupted, a file cut short ErrTruncated.
func openChunks(r io.Reader, key, prefix, ad []byte, limit int64) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	sealed := make([]byte, chunkSealed)
	plain := make([]byte, 0, ChunkSize)
	var out []byte
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(r, sealed)
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: it ends after %d chunks, before the last one", ErrTruncated, i)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%w: it ends within chunk %d (%d of %d bytes)", ErrTruncated, i, n, chunkSealed)
		case err != nil:
			return nil, fmt.Errorf("read backup: %w", err)
		}
		final := false
		p, err := aead.Open(plain[:0], nonce(prefix, i, false), sealed, ad)
		if err != nil {
			if p, err = aead.Open(plain[:0], nonce(prefix, i, true), sealed, ad); err != nil {
				return nil, fmt.Errorf("%w: chunk %d (bytes %d to %d after the header) fails authentication",
					ErrCorrupted, i, int64(i)*chunkSealed, int64(i+1)*chunkSealed)
			}
			final = true
		}
		count := int(binary.BigEndian.Uint32(p))
		switch {
		case count > chunkData, !final && count != chunkData, !allZero(p[4+count:]):
			// Authenticated, so this was written so: not by this format.
			return nil, fmt.Errorf("%w: chunk %d is malformed", ErrCorrupted, i)
		case int64(len(out)+count) > limit:
			return nil, fmt.Errorf("%w: the payload is larger than the limit of %d bytes", ErrCorrupted, limit)
		}
		out = append(out, p[4:4+count]...)
		clear(p)
		if final {
			var one [1]byte
			if n, _ := io.ReadFull(r, one[:]); n > 0 {
				return nil, fmt.Errorf("%w: data follows the last chunk", ErrCorrupted)
			}
			return out, nil
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
