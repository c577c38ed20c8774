package fleet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// AuthScheme is the scheme of the Authorization header of device requests.
const AuthScheme = "Anya-P256"

// NonceSize is the size of a request nonce in bytes.
const NonceSize = 16

// DefaultWindow is how far a request's timestamp may be from the server's clock.
const DefaultWindow = 5 * time.Minute

// maxAuthLen bounds the Authorization header the parser looks at.
const maxAuthLen = 512

// signContext starts every signed string, so a device key's signatures cannot be taken for
// anything else.
const signContext = "anya-fleet-v1"

// DeviceID is the id of the device whose public key is pub: "d-" and the first 24 hex digits
// of the SHA-256 of its PKIX encoding.
func DeviceID(pub crypto.PublicKey) (string, error) {
	der, err := MarshalPublicKey(pub)
	if err != nil {
		return "", err
	}
	return deviceIDOf(der), nil
}

func deviceIDOf(pkix []byte) string {
	sum := sha256.Sum256(pkix)
	return "d-" + hex.EncodeToString(sum[:12])
}

// DeviceIDFromPKIX is DeviceID for a PKIX-encoded key (as in EnrollRequest.PublicKey).
func DeviceIDFromPKIX(pkix []byte) string { return deviceIDOf(pkix) }

// MarshalPublicKey encodes a P-256 ECDSA public key in PKIX DER. Other keys are refused.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("fleet: device key: %T is not an ECDSA P-256 public key", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("fleet: device key: %w", err)
	}
	return der, nil
}

// ParsePublicKey decodes a PKIX DER public key and requires ECDSA P-256.
func ParsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("public key: %T is not ECDSA P-256", k)
	}
	return pub, nil
}

// Auth is a parsed Authorization header of a device request.
type Auth struct {
	ID        string
	Timestamp int64 // unix ms
	Nonce     []byte
	Sig       []byte // ASN.1 DER ECDSA signature
}

// Time is the request's timestamp.
func (a Auth) Time() time.Time { return time.UnixMilli(a.Timestamp) }

// NonceString is the nonce as it appears in the header.
func (a Auth) NonceString() string { return base64.RawURLEncoding.EncodeToString(a.Nonce) }

// Header formats a as an Authorization header value.
func (a Auth) Header() string {
	return fmt.Sprintf("%s id=%s, ts=%d, nonce=%s, sig=%s", AuthScheme, a.ID, a.Timestamp,
		base64.RawURLEncoding.EncodeToString(a.Nonce), base64.RawURLEncoding.EncodeToString(a.Sig))
}

// Digest is the SHA-256 a device signs for a request: the context string and the fields
// METHOD, PATH, ID, TS (decimal), NONCE (base64url) and hex(SHA-256(body)), each preceded by
// its length as 4 bytes big-endian, so that no field can run into the next.
func Digest(method, path, id string, ts int64, nonce []byte, body []byte) []byte {
	bh := sha256.Sum256(body)
	h := sha256.New()
	var n [4]byte
	for _, f := range []string{signContext, method, path, id, strconv.FormatInt(ts, 10),
		base64.RawURLEncoding.EncodeToString(nonce), hex.EncodeToString(bh[:])} {
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		io.WriteString(h, f)
	}
	return h.Sum(nil)
}

// SignRequest signs a request with key and returns its Auth: id is the device id, now the
// timestamp, rand the source of the nonce (and of the ECDSA signature).
func SignRequest(key crypto.Signer, rand io.Reader, method, path, id string, now time.Time, body []byte) (Auth, error) {
	a := Auth{ID: id, Timestamp: now.UnixMilli(), Nonce: make([]byte, NonceSize)}
	if _, err := io.ReadFull(rand, a.Nonce); err != nil {
		return Auth{}, fmt.Errorf("fleet: sign request: nonce: %w", err)
	}
	sig, err := key.Sign(rand, Digest(method, path, id, a.Timestamp, a.Nonce, body), crypto.SHA256)
	if err != nil {
		return Auth{}, fmt.Errorf("fleet: sign request: %w", err)
	}
	a.Sig = sig
	return a, nil
}

// Verify checks a's signature over the request with pub.
func (a Auth) Verify(pub *ecdsa.PublicKey, method, path string, body []byte) error {
	if !ecdsa.VerifyASN1(pub, Digest(method, path, a.ID, a.Timestamp, a.Nonce, body), a.Sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

// ParseAuth parses an Authorization header value of AuthScheme. It checks only the syntax:
// each field once, a device id of the right form, a 16-byte nonce, a signature of plausible
// size.
func ParseAuth(h string) (Auth, error) {
	var a Auth
	if len(h) > maxAuthLen {
		return a, errors.New("authorization header too long")
	}
	rest, ok := strings.CutPrefix(h, AuthScheme+" ")
	if !ok {
		return a, fmt.Errorf("authorization scheme is not %s", AuthScheme)
	}
	seen := map[string]bool{}
	for field := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok || v == "" {
			return a, fmt.Errorf("authorization field %q is not key=value", field)
		}
		if seen[k] {
			return a, fmt.Errorf("authorization field %s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "id":
			if !ValidDeviceID(v) {
				return a, errors.New("authorization: malformed device id")
			}
			a.ID = v
		case "ts":
			a.Timestamp, err = strconv.ParseInt(v, 10, 64)
			if err != nil || a.Timestamp <= 0 {
				return a, errors.New("authorization: malformed timestamp")
			}
		case "nonce":
			a.Nonce, err = base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(a.Nonce) != NonceSize {
				return a, fmt.Errorf("authorization: nonce must be %d bytes, base64url", NonceSize)
			}
		case "sig":
			a.Sig, err = base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(a.Sig) < 8 || len(a.Sig) > 80 {
				return a, errors.New("authorization: malformed signature")
			}
		default:
			return a, fmt.Errorf("authorization: unknown field %q", k)
		}
	}
	if len(seen) != 4 {
		return a, errors.New("authorization: id, ts, nonce and sig are required")
	}
	return a, nil
}

// ValidDeviceID reports whether id has the form DeviceID gives.
func ValidDeviceID(id string) bool {
	if len(id) != 26 || !strings.HasPrefix(id, "d-") {
		return false
	}
	for _, c := range id[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
