package tpm

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/anya-edge/anya/hsm/seal"
)

// Blob format, version 1 (seal.Blob.Kind = "tpm", seal.Blob.Version = 1). Data is, in order
// (integers big endian, "var" = uint16 length followed by that many bytes):
//
//	u8   format version (1)
//	u16  PCR bank hash algorithm (TPM_ALG_SHA256 = 0x000B)
//	u32  PCR selection, bit i = PCR i (0..23)
//	var  policy-signing public key: uncompressed P-256 point (65 bytes)
//	var  signer object public area (TPMT_PUBLIC): sealed data object holding the signing key
//	var  signer object private area (TPM2B_PRIVATE contents, encrypted by the SRK)
//	var  seed object public area (TPMT_PUBLIC): sealed data object holding the data key
//	var  seed object private area
//	24   XChaCha20-Poly1305 nonce
//	---- everything above is the AEAD's associated data (after "anya/seal/tpm\x00")
//	var  ciphertext of the secret under the data key, with the tag
//	u8   number of approvals (1..maxApprovals)
//	96×n approvals: SHA-256 PCR digest (32), ECDSA signature r (32), s (32)
//
// The approvals are outside the associated data because [Sealer.Authorize] replaces them
// without the data key (the owner's PIN is not needed for an update); each is signed by the
// policy-signing key, whose public half is bound both by the associated data and, inside the
// TPM, by the name in both objects' authPolicy.
const (
	formatVersion    = 1
	maxApprovals     = 4
	approvalLen      = 32 + 32 + 32
	maxField         = 2048
	associatedPrefix = "anya/seal/tpm\x00"
	pcrMaskAll       = 1<<24 - 1
)

type approval struct {
	pcrDigest [32]byte
	r, s      [32]byte
}

type blobV1 struct {
	pcrMask       uint32
	signerPub     []byte
	signerObjPub  []byte
	signerObjPriv []byte
	seedObjPub    []byte
	seedObjPriv   []byte
	nonce         []byte
	ciphertext    []byte
	approvals     []approval

	// head is the encoded prefix up to the nonce, covered by the AEAD as associated data
	// (set by parse and encodeHead).
	head []byte
}

var errFormat = errors.New("malformed")

// encodeHead encodes everything up to the nonce and stores it in b.head.
func (b *blobV1) encodeHead() {
	out := []byte{formatVersion}
	out = binary.BigEndian.AppendUint16(out, uint16(tpm2.TPMAlgSHA256))
	out = binary.BigEndian.AppendUint32(out, b.pcrMask)
	for _, f := range [][]byte{b.signerPub, b.signerObjPub, b.signerObjPriv, b.seedObjPub, b.seedObjPriv} {
		out = appendVar(out, f)
	}
	out = append(out, b.nonce...)
	b.head = out
}

// encode returns the full Data: the stored head, the ciphertext and the approvals.
func (b *blobV1) encode() []byte {
	out := append([]byte(nil), b.head...)
	out = appendVar(out, b.ciphertext)
	out = append(out, byte(len(b.approvals)))
	for _, a := range b.approvals {
		out = append(out, a.pcrDigest[:]...)
		out = append(out, a.r[:]...)
		out = append(out, a.s[:]...)
	}
	return out
}

func appendVar(out, f []byte) []byte {
	out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
	return append(out, f...)
}

// decode parses Data strictly: any length mismatch, unknown field value or trailing byte is an
// error wrapping seal.ErrCorrupt.
func decode(blob seal.Blob) (*blobV1, error) {
	if blob.Kind != seal.KindTPM {
		return nil, fmt.Errorf("tpm: blob of kind %q: %w", blob.Kind, seal.ErrWrongKind)
	}
	if blob.Version != formatVersion {
		return nil, fmt.Errorf("tpm: blob version %d, want %d: %w", blob.Version, formatVersion, seal.ErrCorrupt)
	}
	b, err := parse(blob.Data)
	if err != nil {
		return nil, fmt.Errorf("tpm: blob: %w: %w", err, seal.ErrCorrupt)
	}
	return b, nil
}

func parse(d []byte) (*blobV1, error) {
	r := reader{buf: d}
	var b blobV1
	if v := r.u8(); v != formatVersion {
		return nil, fmt.Errorf("%w: format %d", errFormat, v)
	}
	if alg := r.u16(); alg != uint16(tpm2.TPMAlgSHA256) {
		return nil, fmt.Errorf("%w: PCR bank 0x%04x", errFormat, alg)
	}
	b.pcrMask = r.u32()
	if b.pcrMask == 0 || b.pcrMask&^pcrMaskAll != 0 {
		return nil, fmt.Errorf("%w: PCR selection 0x%x", errFormat, b.pcrMask)
	}
	b.signerPub = r.vbytes()
	b.signerObjPub = r.vbytes()
	b.signerObjPriv = r.vbytes()
	b.seedObjPub = r.vbytes()
	b.seedObjPriv = r.vbytes()
	b.nonce = r.bytes(chacha20poly1305.NonceSizeX)
	if r.err != nil {
		return nil, r.err
	}
	b.head = d[:r.off]
	b.ciphertext = r.vbytes()
	if len(b.signerPub) != 65 || len(b.ciphertext) <= chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: field sizes", errFormat)
	}
	n := int(r.u8())
	if r.err == nil && (n < 1 || n > maxApprovals) {
		return nil, fmt.Errorf("%w: %d approvals", errFormat, n)
	}
	for range n {
		var a approval
		copy(a.pcrDigest[:], r.bytes(32))
		copy(a.r[:], r.bytes(32))
		copy(a.s[:], r.bytes(32))
		b.approvals = append(b.approvals, a)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(d) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errFormat, len(d)-r.off)
	}
	return &b, nil
}

type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.err = fmt.Errorf("%w: truncated", errFormat)
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) vbytes() []byte {
	n := int(r.u16())
	if r.err == nil && (n == 0 || n > maxField) {
		r.err = fmt.Errorf("%w: field of %d bytes", errFormat, n)
		return nil
	}
	return r.bytes(n)
}

// associatedData is what the AEAD authenticates besides the ciphertext.
func (b *blobV1) associatedData() []byte {
	ad := make([]byte, 0, len(associatedPrefix)+len(b.head))
	ad = append(ad, associatedPrefix...)
	return append(ad, b.head...)
}

// pcrDigest is the PolicyPCR digest: SHA-256 over the selected PCR values in ascending order.
func pcrDigest(mask uint32, values PCRValues) ([32]byte, error) {
	h := sha256.New()
	for i := range 24 {
		if mask&(1<<i) == 0 {
			continue
		}
		v, ok := values[i]
		if !ok {
			return [32]byte{}, fmt.Errorf("no value for PCR %d", i)
		}
		if len(v) != sha256.Size {
			return [32]byte{}, fmt.Errorf("PCR %d value of %d bytes, want %d", i, len(v), sha256.Size)
		}
		h.Write(v)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}
