package piv

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Blob.Data layout, format version 1 (all integers big-endian):
//
//	magic      "APIV" (4)
//	serial     uint32        YubiKey serial from the verified attestation
//	firmware   3 bytes       major, minor, patch
//	slot       1 byte        PIV key reference (0x9d)
//	pinPolicy  1 byte        on-card encoding: 1 never, 2 once, 3 always
//	touch      1 byte        1 never, 2 always, 3 cached
//	formFactor 1 byte
//	slotPub    65 bytes      uncompressed P-256 public key of the slot
//	ephemeral  65 bytes      uncompressed P-256 ephemeral public key of this seal
//	nonce      24 bytes      XChaCha20-Poly1305 nonce
//	slotCert   uint16 + DER  the slot's attestation certificate (signed by the f9 key)
//	deviceCert uint16 + DER  the YubiKey's f9 attestation certificate
//	ciphertext rest - 32     XChaCha20-Poly1305(secret), AAD = every byte before it
//	checksum   32 bytes      SHA-256 of every byte before it
//
// The checksum only catches accidental damage offline (without the card and without spending
// a PIN try); the AEAD is what authenticates the header and the secret.
const (
	formatVersion = 1
	magic         = "APIV"
	pointLen      = 65
	nonceLen      = 24
	checksumLen   = sha256.Size
	fixedLen      = 4 + 4 + 3 + 1 + 1 + 1 + 1 + pointLen + pointLen + nonceLen
	tagLen        = 16
)

// header is the authenticated, unencrypted part of a blob.
type header struct {
	serial      uint32
	firmware    [3]byte
	slot        byte
	pinPolicy   byte
	touchPolicy byte
	formFactor  byte
	slotPub     []byte
	ephemeral   []byte
	nonce       []byte
	slotCert    []byte
	deviceCert  []byte
}

func (h *header) marshal() []byte {
	b := make([]byte, 0, fixedLen+4+len(h.slotCert)+len(h.deviceCert))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint32(b, h.serial)
	b = append(b, h.firmware[:]...)
	b = append(b, h.slot, h.pinPolicy, h.touchPolicy, h.formFactor)
	b = append(b, h.slotPub...)
	b = append(b, h.ephemeral...)
	b = append(b, h.nonce...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.slotCert)))
	b = append(b, h.slotCert...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.deviceCert)))
	b = append(b, h.deviceCert...)
	return b
}

var errFormat = errors.New("malformed blob")

// parseBlob checks the checksum and splits data into header, its encoding (the AAD) and
// the ciphertext.
func parseBlob(data []byte) (h *header, aad, ciphertext []byte, err error) {
	if len(data) < fixedLen+4+tagLen+checksumLen {
		return nil, nil, nil, errFormat
	}
	body, sum := data[:len(data)-checksumLen], data[len(data)-checksumLen:]
	want := sha256.Sum256(body)
	if !bytes.Equal(want[:], sum) {
		return nil, nil, nil, errors.New("checksum mismatch")
	}
	if string(body[:4]) != magic {
		return nil, nil, nil, errFormat
	}
	h = &header{}
	p := body[4:]
	h.serial = binary.BigEndian.Uint32(p)
	copy(h.firmware[:], p[4:7])
	h.slot, h.pinPolicy, h.touchPolicy, h.formFactor = p[7], p[8], p[9], p[10]
	p = p[11:]
	h.slotPub, p = p[:pointLen], p[pointLen:]
	h.ephemeral, p = p[:pointLen], p[pointLen:]
	h.nonce, p = p[:nonceLen], p[nonceLen:]
	for _, dst := range []*[]byte{&h.slotCert, &h.deviceCert} {
		if len(p) < 2 {
			return nil, nil, nil, errFormat
		}
		n := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+n {
			return nil, nil, nil, errFormat
		}
		*dst, p = p[2:2+n], p[2+n:]
	}
	if len(p) < tagLen {
		return nil, nil, nil, errFormat
	}
	aad = body[:len(body)-len(p)]
	if _, err := ecdh.P256().NewPublicKey(h.slotPub); err != nil {
		return nil, nil, nil, errFormat
	}
	if _, err := ecdh.P256().NewPublicKey(h.ephemeral); err != nil {
		return nil, nil, nil, errFormat
	}
	return h, aad, p, nil
}

// finish appends the checksum.
func finish(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}
