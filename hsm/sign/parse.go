package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"
)

var psbtMagic = []byte{0x70, 0x73, 0x62, 0x74, 0xff} // "psbt" 0xff

// Global key types that matter for telling the PSBT version apart.
const (
	globalUnsignedTx  = 0x00
	globalTxVersion   = 0x02 // BIP370
	globalInputCount  = 0x04 // BIP370
	globalOutputCount = 0x05 // BIP370
	globalVersion     = 0xfb
)

// Parse decodes a PSBT given as binary or as base64 text (surrounding white space is ignored).
// Version 2 (BIP370) PSBTs are refused with [ErrVersion2]; every other failure wraps
// [ErrMalformed]. Parse never panics, whatever the input.
func Parse(data []byte) (*psbt.Packet, error) {
	raw, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(raw); err != nil {
		return nil, err
	}
	return parseRaw(raw)
}

// decode returns the binary PSBT.
func decode(data []byte) ([]byte, error) {
	if bytes.HasPrefix(data, psbtMagic) {
		return data, nil
	}
	text := bytes.TrimSpace(data)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		return nil, fmt.Errorf("%w: neither binary (no psbt magic) nor valid base64", ErrMalformed)
	}
	raw = raw[:n]
	if !bytes.HasPrefix(raw, psbtMagic) {
		return nil, fmt.Errorf("%w: no psbt magic bytes", ErrMalformed)
	}
	return raw, nil
}

// checkVersion walks the global map (without interpreting values) to find PSBT_GLOBAL_VERSION
// and the BIP370-only fields, so that a version 2 PSBT gets a clear error rather than the
// parser's "invalid format".
func checkVersion(raw []byte) error {
	r := bytes.NewReader(raw[len(psbtMagic):])
	var sawTx, saw370 bool
	for {
		keyLen, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return fmt.Errorf("%w: truncated global map", ErrMalformed)
		}
		if keyLen == 0 {
			break
		}
		if keyLen > uint64(r.Len()) {
			return fmt.Errorf("%w: truncated global key", ErrMalformed)
		}
		key := make([]byte, keyLen)
		_, _ = r.Read(key)
		keyType, err := wire.ReadVarInt(bytes.NewReader(key), 0)
		if err != nil {
			return fmt.Errorf("%w: bad global key type", ErrMalformed)
		}
		valLen, err := wire.ReadVarInt(r, 0)
		if err != nil || valLen > uint64(r.Len()) {
			return fmt.Errorf("%w: truncated global value", ErrMalformed)
		}
		val := make([]byte, valLen)
		_, _ = r.Read(val)
		switch keyType {
		case globalUnsignedTx:
			sawTx = true
		case globalTxVersion, globalInputCount, globalOutputCount:
			saw370 = true
		case globalVersion:
			if len(val) != 4 {
				return fmt.Errorf("%w: PSBT_GLOBAL_VERSION is not 4 bytes", ErrMalformed)
			}
			switch v := binary.LittleEndian.Uint32(val); v {
			case 0:
			case 2:
				return ErrVersion2
			default:
				return fmt.Errorf("%w %d", ErrVersion, v)
			}
		}
	}
	if !sawTx && saw370 {
		return ErrVersion2
	}
	return nil
}

// parseRaw runs btcd's parser, turning any panic in it into an error: the bytes come from outside.
func parseRaw(raw []byte) (p *psbt.Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	r := bytes.NewReader(raw)
	p, err = psbt.NewFromRawBytes(r, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes of trailing data", ErrMalformed, r.Len())
	}
	if len(p.Inputs) != len(p.UnsignedTx.TxIn) || len(p.Outputs) != len(p.UnsignedTx.TxOut) {
		return nil, fmt.Errorf("%w: input/output maps do not match the transaction", ErrMalformed)
	}
	if len(p.UnsignedTx.TxIn) == 0 || len(p.UnsignedTx.TxOut) == 0 {
		return nil, fmt.Errorf("%w: the transaction has no inputs or no outputs", ErrMalformed)
	}
	return p, nil
}
