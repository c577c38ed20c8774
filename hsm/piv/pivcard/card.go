package pivcard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// Status words.
const (
	swOK                 = 0x9000
	swWrongLength        = 0x6700
	swSecurityStatus     = 0x6982
	swAuthBlocked        = 0x6983
	swConditions         = 0x6985
	swWrongData          = 0x6a80
	swFuncNotSupported   = 0x6a81
	swNotFound           = 0x6a82
	swWrongP1P2          = 0x6a86
	swRefDataNotFound    = 0x6a88
	swINSNotSupported    = 0x6d00
	swCLANotSupported    = 0x6e00
	swVerifyFailedPrefix = 0x63c0
)

// Algorithms, slots and policies as encoded on the card.
const (
	alg3DES   = 0x03
	algAES128 = 0x08
	algAES192 = 0x0a
	algAES256 = 0x0c
	algP256   = 0x11

	slotMgmt        = 0x9b
	slotAttestation = 0xf9
	refPIN          = 0x80
	refPUK          = 0x81

	// PINPolicyNever and friends are the on-card encodings of the PIN policy.
	PINPolicyNever  = 0x01
	PINPolicyOnce   = 0x02
	PINPolicyAlways = 0x03
	// TouchPolicyNever and friends are the on-card encodings of the touch policy.
	TouchPolicyNever  = 0x01
	TouchPolicyAlways = 0x02
	TouchPolicyCached = 0x03

	originGenerated = 0x01

	objAttestation = 0x5fff01
)

var (
	aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}

	// DefaultPIN, DefaultPUK and DefaultManagementKey are a new YubiKey's credentials.
	DefaultPIN           = "123456"
	DefaultPUK           = "12345678"
	DefaultManagementKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	}

	extFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	extSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	extPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	extFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// Config describes a card. The zero value is a YubiKey 5 (firmware 5.4.3) with serial
// 12345678, default PIN/PUK/management key and a self-signed attestation key.
type Config struct {
	Serial     uint32
	Version    [3]byte // firmware version; zero means 5.4.3
	FormFactor byte    // 0 means 0x01 (USB-A keychain)
	PIN, PUK   string  // "" means the defaults
	PINRetries int     // 0 means 3 (also for the PUK)
	// ManagementKey is a 3DES key (24 bytes); nil means DefaultManagementKey.
	ManagementKey []byte
	// Attestation issues the card's f9 attestation certificate; nil means self-signed.
	Attestation *CA
	// Rand is the card's randomness; nil means crypto/rand.
	Rand io.Reader
}

type slotKey struct {
	priv        *ecdsa.PrivateKey
	pinPolicy   byte
	touchPolicy byte
	origin      byte
}

// Counters counts what the card did, for tests and benchmarks.
type Counters struct {
	APDUs, Verifies, FailedVerifies, ECDH, Signs, Generates, Attests, Touches int64
}

// Card is an emulated YubiKey PIV applet. It is safe for concurrent use; commands are
// processed one at a time as on the device.
type Card struct {
	mu   sync.Mutex
	rand io.Reader

	serial     uint32
	version    [3]byte
	formFactor byte

	// Non-volatile state.
	pin, puk                []byte // padded to 8 bytes with 0xff
	pinMax, pukMax          int
	pinRetries, pukRetries  int
	mgmAlg                  byte
	mgmKey                  []byte
	keys                    map[byte]*slotKey
	objects                 map[uint32][]byte
	attKey                  *ecdsa.PrivateKey
	attCert                 *x509.Certificate
	touch                   func() bool
	lastTouch               time.Time
	defaultPIN, defaultPUK  []byte
	defaultMgm              []byte
	defaultPINMax, defPUKMx int

	// Volatile (session) state, cleared by power cycle, reset and SELECT.
	selected    bool
	pinVerified bool
	pinFresh    bool // verified since the last private-key operation
	mgmAuthed   bool
	witness     []byte
	chain       []byte
	chainINS    byte
	pending     []byte

	counters struct {
		apdus, verifies, failedVerifies, ecdh, signs, generates, attests, touches atomic.Int64
	}
}

// New makes a card.
func New(cfg Config) (*Card, error) {
	c := &Card{
		rand:       cfg.Rand,
		serial:     cfg.Serial,
		version:    cfg.Version,
		formFactor: cfg.FormFactor,
		keys:       map[byte]*slotKey{},
		objects:    map[uint32][]byte{},
		touch:      func() bool { return true },
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.serial == 0 {
		c.serial = 12345678
	}
	if c.version == [3]byte{} {
		c.version = [3]byte{5, 4, 3}
	}
	if c.formFactor == 0 {
		c.formFactor = 0x01
	}
	pin, puk := cfg.PIN, cfg.PUK
	if pin == "" {
		pin = DefaultPIN
	}
	if puk == "" {
		puk = DefaultPUK
	}
	var err error
	if c.defaultPIN, err = padPIN(pin); err != nil {
		return nil, err
	}
	if c.defaultPUK, err = padPIN(puk); err != nil {
		return nil, err
	}
	c.defaultPINMax = cfg.PINRetries
	if c.defaultPINMax == 0 {
		c.defaultPINMax = 3
	}
	c.defPUKMx = c.defaultPINMax
	c.defaultMgm = cfg.ManagementKey
	if c.defaultMgm == nil {
		c.defaultMgm = DefaultManagementKey
	}
	if len(c.defaultMgm) != 24 {
		return nil, fmt.Errorf("pivcard: management key must be 24 bytes (3DES), got %d", len(c.defaultMgm))
	}
	c.factoryReset()

	// The attestation key and its certificate (slot f9, object 5fff01).
	c.attKey, err = ecdsa.GenerateKey(elliptic.P256(), c.rand)
	if err != nil {
		return nil, err
	}
	ca := cfg.Attestation
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(int64(c.serial)),
		Subject:               pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(20 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	parent, signer := tmpl, any(c.attKey)
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, parent, &c.attKey.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("pivcard: attestation certificate: %w", err)
	}
	if c.attCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	c.objects[objAttestation] = certObject(der)
	return c, nil
}

// factoryReset restores PIN, PUK, management key, and clears the key slots and data objects
// (except the attestation certificate).
func (c *Card) factoryReset() {
	c.pin = append([]byte(nil), c.defaultPIN...)
	c.puk = append([]byte(nil), c.defaultPUK...)
	c.pinMax, c.pukMax = c.defaultPINMax, c.defPUKMx
	c.pinRetries, c.pukRetries = c.pinMax, c.pukMax
	c.mgmAlg = alg3DES
	c.mgmKey = append([]byte(nil), c.defaultMgm...)
	c.keys = map[byte]*slotKey{}
	att := c.objects[objAttestation]
	c.objects = map[uint32][]byte{}
	if att != nil {
		c.objects[objAttestation] = att
	}
	c.resetSession()
}

func (c *Card) resetSession() {
	c.selected = false
	c.pinVerified, c.pinFresh, c.mgmAuthed = false, false, false
	c.witness, c.chain, c.pending = nil, nil, nil
}

// Reset is a power cycle: the session (PIN verified, management key authenticated,
// selected applet) is lost; keys, PIN and retry counters stay.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetSession()
}

// SetTouch sets the hook that decides whether the user touched the key when a touch-policy
// slot is used (default: always touched).
func (c *Card) SetTouch(f func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touch = f
}

// Serial returns the card's serial number.
func (c *Card) Serial() uint32 { return c.serial }

// AttestationCertificate returns the card's f9 certificate.
func (c *Card) AttestationCertificate() *x509.Certificate { return c.attCert }

// PINRetries returns the PIN tries left.
func (c *Card) PINRetries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinRetries
}

// PublicKey returns the public key in slot, or nil.
func (c *Card) PublicKey(slot byte) *ecdsa.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.keys[slot]; k != nil {
		return &k.priv.PublicKey
	}
	return nil
}

// Counters returns what the card did so far.
func (c *Card) Counters() Counters {
	return Counters{
		APDUs:          c.counters.apdus.Load(),
		Verifies:       c.counters.verifies.Load(),
		FailedVerifies: c.counters.failedVerifies.Load(),
		ECDH:           c.counters.ecdh.Load(),
		Signs:          c.counters.signs.Load(),
		Generates:      c.counters.generates.Load(),
		Attests:        c.counters.attests.Load(),
		Touches:        c.counters.touches.Load(),
	}
}

// ATR returns the card's answer-to-reset: a YubiKey 5's (T=1, historical bytes "YubiKey").
func (c *Card) ATR() []byte {
	atr := []byte{0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0, 0x21,
		0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79}
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

type apduError uint16

func (e apduError) Error() string { return fmt.Sprintf("sw %04x", uint16(e)) }

func sw(code int) error { return apduError(code) }

// Transmit processes one command APDU and returns the response APDU (data + SW1 SW2).
func (c *Card) Transmit(apdu []byte) []byte {
	c.counters.apdus.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := c.process(apdu)
	code := swOK
	if err != nil {
		var e apduError
		if !errors.As(err, &e) {
			e = apduError(swConditions)
		}
		code = int(e)
		data = nil
	}
	if code == swOK && len(data) > 256 {
		c.pending = data[256:]
		data = data[:256]
		code = 0x6100 | min(len(c.pending), 0xff)
		if len(c.pending) > 0xff {
			code = 0x6100
		}
	}
	return append(append([]byte(nil), data...), byte(code>>8), byte(code))
}

func (c *Card) process(apdu []byte) ([]byte, error) {
	if len(apdu) < 4 {
		return nil, sw(swWrongLength)
	}
	cla, ins, p1, p2 := apdu[0], apdu[1], apdu[2], apdu[3]
	var data []byte
	switch {
	case len(apdu) <= 5: // case 1 or case 2 (Le only)
	case apdu[4] == 0 && len(apdu) >= 7: // extended length
		n := int(apdu[5])<<8 | int(apdu[6])
		if len(apdu) < 7+n {
			return nil, sw(swWrongLength)
		}
		data = apdu[7 : 7+n]
	default:
		n := int(apdu[4])
		if len(apdu) < 5+n {
			return nil, sw(swWrongLength)
		}
		data = apdu[5 : 5+n]
	}
	if cla&^0x10 != 0 {
		return nil, sw(swCLANotSupported)
	}
	if ins != 0xc0 {
		c.pending = nil
	}
	if cla&0x10 != 0 { // command chaining: not the last piece
		if c.chain != nil && c.chainINS != ins {
			c.chain = nil
		}
		c.chain = append(c.chain, data...)
		c.chainINS = ins
		return nil, nil
	}
	if c.chain != nil {
		if c.chainINS == ins {
			data = append(c.chain, data...)
		}
		c.chain = nil
	}

	if ins == 0xa4 {
		return c.selectApp(p1, data)
	}
	if !c.selected {
		return nil, sw(swINSNotSupported)
	}
	switch ins {
	case 0xc0: // GET RESPONSE
		if c.pending == nil {
			return nil, sw(swConditions)
		}
		out := c.pending
		c.pending = nil
		return out, nil
	case 0xfd: // GET VERSION
		return c.version[:], nil
	case 0xf8: // GET SERIAL
		return binary.BigEndian.AppendUint32(nil, c.serial), nil
	case 0xf7:
		return c.getMetadata(p2)
	case 0x20:
		return c.verify(p2, data)
	case 0x24:
		return c.changeReference(p2, data)
	case 0x2c:
		return c.resetRetry(p2, data)
	case 0x87:
		return c.generalAuthenticate(p1, p2, data)
	case 0x47:
		return c.generate(p2, data)
	case 0xf9:
		return c.attest(p1)
	case 0xcb:
		return c.getData(p1, p2, data)
	case 0xdb:
		return c.putData(p1, p2, data)
	case 0xff:
		return c.setManagementKey(p1, p2, data)
	case 0xfa:
		return c.setRetries(p1, p2)
	case 0xfb:
		if c.pinRetries != 0 || c.pukRetries != 0 {
			return nil, sw(swConditions)
		}
		c.factoryReset()
		c.selected = true
		return nil, nil
	}
	return nil, sw(swINSNotSupported)
}

func (c *Card) selectApp(p1 byte, aid []byte) ([]byte, error) {
	if p1 != 0x04 {
		return nil, sw(swWrongP1P2)
	}
	c.resetSession()
	if len(aid) < len(aidPIV) || !bytes.Equal(aid[:len(aidPIV)], aidPIV) {
		return nil, sw(swNotFound)
	}
	c.selected = true
	// Application property template: PIX of the applet, and its coexistent tag allocation.
	return tlv(0x61, append(tlv(0x4f, []byte{0x00, 0x00, 0x10, 0x00, 0x01, 0x00}),
		tlv(0x79, tlv(0x4f, aidPIV))...)), nil
}

func (c *Card) getMetadata(p2 byte) ([]byte, error) {
	switch p2 {
	case refPIN, refPUK:
		max, left, isDefault := c.pinMax, c.pinRetries, bytes.Equal(c.pin, mustPad(DefaultPIN))
		if p2 == refPUK {
			max, left = c.pukMax, c.pukRetries
			isDefault = bytes.Equal(c.puk, mustPad(DefaultPUK))
		}
		def := byte(0)
		if isDefault {
			def = 1
		}
		out := tlv(0x01, []byte{0xff})
		out = append(out, tlv(0x05, []byte{def})...)
		return append(out, tlv(0x06, []byte{byte(max), byte(left)})...), nil
	case slotMgmt:
		def := byte(0)
		if bytes.Equal(c.mgmKey, DefaultManagementKey) {
			def = 1
		}
		out := tlv(0x01, []byte{c.mgmAlg})
		out = append(out, tlv(0x02, []byte{0x00, TouchPolicyNever})...)
		return append(out, tlv(0x05, []byte{def})...), nil
	}
	k := c.keys[p2]
	if k == nil {
		return nil, sw(swNotFound)
	}
	out := tlv(0x01, []byte{algP256})
	out = append(out, tlv(0x02, []byte{k.pinPolicy, k.touchPolicy})...)
	out = append(out, tlv(0x03, []byte{k.origin})...)
	return append(out, tlv(0x04, publicKeyTLV(&k.priv.PublicKey))...), nil
}

func publicKeyTLV(pub *ecdsa.PublicKey) []byte {
	p, err := pub.ECDH()
	if err != nil {
		panic(err)
	}
	return tlv(0x86, p.Bytes())
}

// checkPIN compares a padded PIN/PUK attempt against the reference, handling the counter.
func checkRef(attempt, ref []byte, left *int) error {
	if *left == 0 {
		return sw(swAuthBlocked)
	}
	if len(attempt) != 8 {
		return sw(swWrongData)
	}
	if subtle.ConstantTimeCompare(attempt, ref) != 1 {
		*left--
		return sw(swVerifyFailedPrefix | *left)
	}
	return nil
}

func (c *Card) verify(p2 byte, data []byte) ([]byte, error) {
	if p2 != refPIN {
		return nil, sw(swRefDataNotFound)
	}
	if len(data) == 0 { // status query
		if c.pinRetries == 0 {
			return nil, sw(swAuthBlocked)
		}
		if c.pinVerified {
			return nil, nil
		}
		return nil, sw(swVerifyFailedPrefix | c.pinRetries)
	}
	c.counters.verifies.Add(1)
	c.pinVerified, c.pinFresh = false, false
	if err := checkRef(data, c.pin, &c.pinRetries); err != nil {
		c.counters.failedVerifies.Add(1)
		return nil, err
	}
	c.pinRetries = c.pinMax
	c.pinVerified, c.pinFresh = true, true
	return nil, nil
}

func (c *Card) changeReference(p2 byte, data []byte) ([]byte, error) {
	if len(data) != 16 {
		return nil, sw(swWrongData)
	}
	ref, left, max := &c.pin, &c.pinRetries, c.pinMax
	switch p2 {
	case refPIN:
	case refPUK:
		ref, left, max = &c.puk, &c.pukRetries, c.pukMax
	default:
		return nil, sw(swRefDataNotFound)
	}
	if err := checkRef(data[:8], *ref, left); err != nil {
		return nil, err
	}
	*left = max
	if !validPIN(data[8:]) {
		return nil, sw(swWrongData)
	}
	*ref = append([]byte(nil), data[8:]...)
	return nil, nil
}

func (c *Card) resetRetry(p2 byte, data []byte) ([]byte, error) {
	if p2 != refPIN {
		return nil, sw(swRefDataNotFound)
	}
	if len(data) != 16 {
		return nil, sw(swWrongData)
	}
	if err := checkRef(data[:8], c.puk, &c.pukRetries); err != nil {
		return nil, err
	}
	c.pukRetries = c.pukMax
	if !validPIN(data[8:]) {
		return nil, sw(swWrongData)
	}
	c.pin = append([]byte(nil), data[8:]...)
	c.pinRetries = c.pinMax
	return nil, nil
}

func (c *Card) setRetries(p1, p2 byte) ([]byte, error) {
	if !c.mgmAuthed || !c.pinVerified {
		return nil, sw(swSecurityStatus)
	}
	if p1 == 0 || p2 == 0 {
		return nil, sw(swWrongP1P2)
	}
	c.pinMax, c.pukMax = int(p1), int(p2)
	c.pinRetries, c.pukRetries = c.pinMax, c.pukMax
	c.pin, c.puk = mustPad(DefaultPIN), mustPad(DefaultPUK)
	return nil, nil
}

func (c *Card) mgmCipher(alg byte) (cipher.Block, int, error) {
	if alg != c.mgmAlg {
		return nil, 0, sw(swWrongP1P2)
	}
	switch alg {
	case alg3DES:
		b, err := des.NewTripleDESCipher(c.mgmKey)
		return b, 8, err
	case algAES128, algAES192, algAES256:
		b, err := aes.NewCipher(c.mgmKey)
		return b, 16, err
	}
	return nil, 0, sw(swWrongP1P2)
}

func (c *Card) generalAuthenticate(p1, p2 byte, data []byte) ([]byte, error) {
	outer, ok := parseTLV(data)
	if !ok || len(outer) != 1 || outer[0].tag != 0x7c {
		return nil, sw(swWrongData)
	}
	inner, ok := parseTLV(outer[0].value)
	if !ok {
		return nil, sw(swWrongData)
	}
	get := func(tag byte) ([]byte, bool) {
		for _, t := range inner {
			if t.tag == tag {
				return t.value, true
			}
		}
		return nil, false
	}
	if p2 == slotMgmt {
		block, n, err := c.mgmCipher(p1)
		if err != nil {
			return nil, err
		}
		witness, hasWitness := get(0x80)
		challenge, hasChallenge := get(0x81)
		switch {
		case hasWitness && len(witness) == 0: // step 1: request a witness
			c.mgmAuthed = false
			c.witness = make([]byte, n)
			if _, err := io.ReadFull(c.rand, c.witness); err != nil {
				return nil, err
			}
			enc := make([]byte, n)
			block.Encrypt(enc, c.witness)
			return tlv(0x7c, tlv(0x80, enc)), nil
		case hasWitness && hasChallenge && len(witness) == n && len(challenge) == n:
			expected := c.witness
			c.witness = nil
			if expected == nil || subtle.ConstantTimeCompare(expected, witness) != 1 {
				return nil, sw(swSecurityStatus)
			}
			c.mgmAuthed = true
			resp := make([]byte, n)
			block.Encrypt(resp, challenge)
			return tlv(0x7c, tlv(0x82, resp)), nil
		}
		return nil, sw(swWrongData)
	}

	k := c.keys[p2]
	if k == nil {
		return nil, sw(swNotFound)
	}
	if p1 != algP256 {
		return nil, sw(swWrongP1P2)
	}
	if r, ok := get(0x82); !ok || len(r) != 0 {
		return nil, sw(swWrongData)
	}
	peer, isECDH := get(0x85)
	digest, isSign := get(0x81)
	if isECDH == isSign {
		return nil, sw(swWrongData)
	}
	if err := c.authorizeKeyUse(k); err != nil {
		return nil, err
	}
	if isECDH {
		pub, err := ecdh.P256().NewPublicKey(peer)
		if err != nil {
			return nil, sw(swWrongData)
		}
		priv, err := k.priv.ECDH()
		if err != nil {
			return nil, err
		}
		secret, err := priv.ECDH(pub)
		if err != nil {
			return nil, sw(swWrongData)
		}
		c.counters.ecdh.Add(1)
		return tlv(0x7c, tlv(0x82, secret)), nil
	}
	if len(digest) != 32 {
		return nil, sw(swWrongData)
	}
	sig, err := ecdsa.SignASN1(c.rand, k.priv, digest)
	if err != nil {
		return nil, err
	}
	c.counters.signs.Add(1)
	return tlv(0x7c, tlv(0x82, sig)), nil
}

// authorizeKeyUse enforces the slot's PIN and touch policies before a private-key operation.
func (c *Card) authorizeKeyUse(k *slotKey) error {
	switch k.pinPolicy {
	case PINPolicyAlways:
		if !c.pinFresh {
			return sw(swSecurityStatus)
		}
	case PINPolicyOnce:
		if !c.pinVerified {
			return sw(swSecurityStatus)
		}
	}
	c.pinFresh = false
	switch k.touchPolicy {
	case TouchPolicyAlways, TouchPolicyCached:
		if k.touchPolicy == TouchPolicyCached && time.Since(c.lastTouch) < 15*time.Second {
			break
		}
		c.counters.touches.Add(1)
		if !c.touch() {
			return sw(swConditions)
		}
		c.lastTouch = time.Now()
	}
	return nil
}

func (c *Card) generate(p2 byte, data []byte) ([]byte, error) {
	if !c.mgmAuthed {
		return nil, sw(swSecurityStatus)
	}
	if !isKeySlot(p2) {
		return nil, sw(swWrongP1P2)
	}
	outer, ok := parseTLV(data)
	if !ok || len(outer) != 1 || outer[0].tag != 0xac {
		return nil, sw(swWrongData)
	}
	params, ok := parseTLV(outer[0].value)
	if !ok {
		return nil, sw(swWrongData)
	}
	alg, pp, tp := byte(0), byte(PINPolicyOnce), byte(TouchPolicyNever)
	for _, t := range params {
		if len(t.value) != 1 {
			return nil, sw(swWrongData)
		}
		switch t.tag {
		case 0x80:
			alg = t.value[0]
		case 0xaa:
			pp = t.value[0]
		case 0xab:
			tp = t.value[0]
		}
	}
	if alg != algP256 {
		return nil, sw(swWrongData) // this emulator only does P-256
	}
	if pp < PINPolicyNever || pp > PINPolicyAlways || tp < TouchPolicyNever || tp > TouchPolicyCached {
		return nil, sw(swWrongData)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), c.rand)
	if err != nil {
		return nil, err
	}
	c.keys[p2] = &slotKey{priv: priv, pinPolicy: pp, touchPolicy: tp, origin: originGenerated}
	c.counters.generates.Add(1)
	return tlv2(0x7f49, publicKeyTLV(&priv.PublicKey)), nil
}

func isKeySlot(s byte) bool {
	return s == 0x9a || s == 0x9c || s == 0x9d || s == 0x9e || (s >= 0x82 && s <= 0x95)
}

func (c *Card) attest(slot byte) ([]byte, error) {
	k := c.keys[slot]
	if k == nil || k.origin != originGenerated {
		return nil, sw(swWrongData) // as the device: 6a80 for an empty or imported slot
	}
	serialDER, err := asn1.Marshal(int64(c.serial))
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(c.rand, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %x", slot)},
		NotBefore:    c.attCert.NotBefore,
		NotAfter:     c.attCert.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: extFirmware, Value: c.version[:]},
			{Id: extSerial, Value: serialDER},
			{Id: extPolicy, Value: []byte{k.pinPolicy, k.touchPolicy}},
			{Id: extFormFactor, Value: []byte{c.formFactor}},
		},
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, c.attCert, &k.priv.PublicKey, c.attKey)
	if err != nil {
		return nil, err
	}
	c.counters.attests.Add(1)
	return der, nil
}

func parseObjectID(p1, p2 byte, data []byte) (uint32, []byte, error) {
	if p1 != 0x3f || p2 != 0xff {
		return 0, nil, sw(swWrongP1P2)
	}
	if len(data) < 2 || data[0] != 0x5c {
		return 0, nil, sw(swWrongData)
	}
	n := int(data[1])
	if n < 1 || n > 3 || len(data) < 2+n {
		return 0, nil, sw(swWrongData)
	}
	var id uint32
	for _, b := range data[2 : 2+n] {
		id = id<<8 | uint32(b)
	}
	return id, data[2+n:], nil
}

func (c *Card) getData(p1, p2 byte, data []byte) ([]byte, error) {
	id, _, err := parseObjectID(p1, p2, data)
	if err != nil {
		return nil, err
	}
	obj, ok := c.objects[id]
	if !ok {
		return nil, sw(swNotFound)
	}
	return tlv(0x53, obj), nil
}

func (c *Card) putData(p1, p2 byte, data []byte) ([]byte, error) {
	if !c.mgmAuthed {
		return nil, sw(swSecurityStatus)
	}
	id, rest, err := parseObjectID(p1, p2, data)
	if err != nil {
		return nil, err
	}
	t, ok := parseTLV(rest)
	if !ok || len(t) != 1 || t[0].tag != 0x53 {
		return nil, sw(swWrongData)
	}
	if len(t[0].value) == 0 {
		delete(c.objects, id)
	} else {
		c.objects[id] = append([]byte(nil), t[0].value...)
	}
	return nil, nil
}

func (c *Card) setManagementKey(p1, p2 byte, data []byte) ([]byte, error) {
	if !c.mgmAuthed {
		return nil, sw(swSecurityStatus)
	}
	if p1 != 0xff || (p2 != 0xff && p2 != 0xfe) || len(data) < 3 || data[1] != slotMgmt {
		return nil, sw(swWrongData)
	}
	alg, key := data[0], data[3:]
	if int(data[2]) != len(key) {
		return nil, sw(swWrongData)
	}
	want := map[byte]int{alg3DES: 24, algAES128: 16, algAES192: 24, algAES256: 32}[alg]
	if want == 0 || len(key) != want {
		return nil, sw(swWrongData)
	}
	c.mgmAlg, c.mgmKey = alg, append([]byte(nil), key...)
	return nil, nil
}

// certObject wraps a DER certificate as a PIV certificate data object.
func certObject(der []byte) []byte {
	out := tlv(0x70, der)
	out = append(out, tlv(0x71, []byte{0x00})...)
	return append(out, tlv(0xfe, nil)...)
}

func padPIN(pin string) ([]byte, error) {
	if len(pin) < 6 || len(pin) > 8 {
		return nil, fmt.Errorf("pivcard: PIN/PUK must be 6 to 8 bytes")
	}
	b := []byte(pin)
	for len(b) < 8 {
		b = append(b, 0xff)
	}
	return b, nil
}

func mustPad(pin string) []byte {
	b, err := padPIN(pin)
	if err != nil {
		panic(err)
	}
	return b
}

func validPIN(padded []byte) bool {
	n := bytes.IndexByte(padded, 0xff)
	if n < 0 {
		n = len(padded)
	}
	for _, b := range padded[n:] {
		if b != 0xff {
			return false
		}
	}
	return n >= 6
}

// BER-TLV helpers (single-byte tags on input; lengths up to 0xffff).

type tlvItem struct {
	tag   byte
	value []byte
}

func parseTLV(b []byte) ([]tlvItem, bool) {
	var out []tlvItem
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, false
		}
		tag := b[0]
		n, hdr := int(b[1]), 2
		switch b[1] {
		case 0x81:
			if len(b) < 3 {
				return nil, false
			}
			n, hdr = int(b[2]), 3
		case 0x82:
			if len(b) < 4 {
				return nil, false
			}
			n, hdr = int(b[2])<<8|int(b[3]), 4
		default:
			if b[1] > 0x80 {
				return nil, false
			}
		}
		if len(b) < hdr+n {
			return nil, false
		}
		out = append(out, tlvItem{tag, b[hdr : hdr+n]})
		b = b[hdr+n:]
	}
	return out, true
}

func tlvLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	default:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
}

func tlv(tag byte, value []byte) []byte {
	out := append([]byte{tag}, tlvLen(len(value))...)
	return append(out, value...)
}

func tlv2(tag uint16, value []byte) []byte {
	out := append([]byte{byte(tag >> 8), byte(tag)}, tlvLen(len(value))...)
	return append(out, value...)
}
