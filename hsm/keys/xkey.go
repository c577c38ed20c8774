package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// Extended-key errors.
var (
	ErrHardenedFromPublic = errors.New("keys: a hardened step cannot be derived from an extended public key")
	ErrNotPublicKey       = errors.New("keys: this is an extended private key; an extended public key was expected (the key is not repeated here)")
	ErrNotPrivateKey      = errors.New("keys: this is an extended public key; an extended private key was expected")
	ErrWrongNetwork       = errors.New("keys: the extended key belongs to another network (xpub is mainnet, tpub is test networks)")
	ErrZeroed             = errors.New("keys: the key was zeroed")
)

// versionInfo describes a registered 4-byte extended key version (BIP32 and SLIP-132).
type versionInfo struct {
	name    string // base58 prefix: "xpub", "zprv", "Vpub", …
	private bool   // xprv-style
	mainnet bool   // mainnet or test networks
}

// The registry of SLIP-132 (satoshilabs/slips slip-0132.md), which includes BIP32's xpub/tpub.
// "Multi-signature P2WSH" (Zpub, Vpub) is what BIP48 script type 2' announces.
var versions = map[[4]byte]versionInfo{
	{0x04, 0x88, 0xb2, 0x1e}: {"xpub", false, true},
	{0x04, 0x88, 0xad, 0xe4}: {"xprv", true, true},
	{0x04, 0x9d, 0x7c, 0xb2}: {"ypub", false, true},
	{0x04, 0x9d, 0x78, 0x78}: {"yprv", true, true},
	{0x04, 0xb2, 0x47, 0x46}: {"zpub", false, true},
	{0x04, 0xb2, 0x43, 0x0c}: {"zprv", true, true},
	{0x02, 0xaa, 0x7e, 0xd3}: {"Zpub", false, true},
	{0x02, 0xaa, 0x7a, 0x99}: {"Zprv", true, true},
	{0x04, 0x35, 0x87, 0xcf}: {"tpub", false, false},
	{0x04, 0x35, 0x83, 0x94}: {"tprv", true, false},
	{0x04, 0x4a, 0x52, 0x62}: {"upub", false, false},
	{0x04, 0x4a, 0x4e, 0x28}: {"uprv", true, false},
	{0x04, 0x5f, 0x1c, 0xf6}: {"vpub", false, false},
	{0x04, 0x5f, 0x18, 0xbc}: {"vprv", true, false},
	{0x02, 0x57, 0x54, 0x83}: {"Vpub", false, false},
	{0x02, 0x57, 0x50, 0x48}: {"Vprv", true, false},
	// Ypub/Upub (P2WSH nested in P2SH) are registered but no purpose here emits them; they parse.
	{0x02, 0x95, 0xb4, 0x3f}: {"Ypub", false, true},
	{0x02, 0x95, 0xb0, 0x05}: {"Yprv", true, true},
	{0x02, 0x42, 0x89, 0xef}: {"Upub", false, false},
	{0x02, 0x42, 0x85, 0xb5}: {"Uprv", true, false},
}

// versionByName indexes versions by their base58 prefix.
var versionByName = func() map[string][4]byte {
	m := make(map[string][4]byte, len(versions))
	for v, info := range versions {
		m[info.name] = v
	}
	return m
}()

// versionFor returns the version bytes for a purpose (SLIP-132 for BIP49, BIP84 and BIP48, plain
// BIP32 otherwise), key kind and network.
func versionFor(p Purpose, private, mainnet bool) [4]byte {
	prefix := map[Purpose][2]string{PurposeBIP49: {"y", "u"}, PurposeBIP84: {"z", "v"}, PurposeBIP48: {"Z", "V"}}[p]
	if prefix[0] == "" {
		prefix = [2]string{"x", "t"}
	}
	name := prefix[0]
	if !mainnet {
		name = prefix[1]
	}
	if private {
		name += "prv"
	} else {
		name += "pub"
	}
	return versionByName[name]
}

// decoded is a parsed and fully validated serialized extended key.
type decoded struct {
	info      versionInfo
	depth     uint8
	parentFP  [4]byte
	childNum  uint32
	chainCode []byte
	key       []byte // 32-byte private scalar or 33-byte compressed public key
}

func (d *decoded) zero() {
	clear(d.chainCode)
	clear(d.key)
}

// decodeExtended parses a base58 extended key and applies every BIP32 validity rule, including
// those of BIP32 test vector 5 that hdkeychain.NewKeyFromString does not check (version/key
// kind mismatch, unknown version, zero depth with a parent or index). Errors never quote the
// input, which may be a private key.
func decodeExtended(s string) (*decoded, error) {
	if len(s) > 120 { // serialized keys are 111 or 112 characters; don't base58-decode a novel
		return nil, errors.New("keys: not an extended key (too long)")
	}
	raw := base58.Decode(s)
	defer clear(raw)
	if len(raw) != 82 {
		return nil, errors.New("keys: not an extended key (wrong length or not base58)")
	}
	sum := sha256.Sum256(raw[:78])
	sum = sha256.Sum256(sum[:])
	if !bytes.Equal(sum[:4], raw[78:]) {
		return nil, errors.New("keys: extended key checksum does not match (a character is wrong)")
	}
	var ver [4]byte
	copy(ver[:], raw[:4])
	info, ok := versions[ver]
	if !ok {
		return nil, errors.New("keys: unknown extended key version (not xpub/xprv, tpub/tprv or SLIP-132)")
	}
	d := &decoded{info: info, depth: raw[4], childNum: binary.BigEndian.Uint32(raw[9:13])}
	copy(d.parentFP[:], raw[5:9])
	if d.depth == 0 && (d.parentFP != [4]byte{} || d.childNum != 0) {
		return nil, errors.New("keys: extended key has depth 0 but a parent fingerprint or child index")
	}
	keyData := raw[45:78]
	if info.private {
		if keyData[0] != 0x00 {
			return nil, errors.New("keys: extended private key version with public key data")
		}
		var s btcec.ModNScalar
		overflow := s.SetByteSlice(keyData[1:])
		bad := overflow || s.IsZero()
		s.Zero()
		if bad {
			return nil, errors.New("keys: extended private key is not in 1..n-1")
		}
		d.key = append([]byte(nil), keyData[1:]...)
	} else {
		if keyData[0] != 0x02 && keyData[0] != 0x03 {
			return nil, errors.New("keys: extended public key version without a compressed public key")
		}
		if _, err := btcec.ParsePubKey(keyData); err != nil {
			return nil, errors.New("keys: extended public key is not a point on secp256k1")
		}
		d.key = append([]byte(nil), keyData...)
	}
	d.chainCode = append([]byte(nil), raw[13:45]...)
	return d, nil
}

// XPub is an extended public key (BIP32). It is public; its String is the plain xpub/tpub
// serialization, the one descriptors use.
type XPub struct {
	k       *hdkeychain.ExtendedKey
	mainnet bool
}

// ParseXPub reads an extended public key: xpub/tpub, or a SLIP-132 form (ypub, zpub, Zpub, upub,
// vpub, Vpub, Ypub, Upub), which is taken as the same key. It applies every check of BIP32
// (test vector 5). An extended private key is refused with ErrNotPublicKey.
func ParseXPub(s string) (*XPub, error) {
	d, err := decodeExtended(s)
	if err != nil {
		return nil, err
	}
	if d.info.private {
		d.zero()
		return nil, ErrNotPublicKey
	}
	return d.xpub(), nil
}

func (d *decoded) xpub() *XPub {
	ver := versionFor(0, false, d.info.mainnet)
	return &XPub{
		k: hdkeychain.NewExtendedKey(ver[:], d.key, d.chainCode, append([]byte(nil), d.parentFP[:]...),
			d.depth, d.childNum, false),
		mainnet: d.info.mainnet,
	}
}

// String returns the key as xpub… (mainnet) or tpub… (test networks).
func (x *XPub) String() string { return x.k.String() }

// SLIP132 returns the key with the SLIP-132 version its purpose announces to wallets that still
// expect one: ypub/upub for BIP49, zpub/vpub for BIP84, Zpub/Vpub for BIP48 (P2WSH multisig).
// BIP44 and BIP86 have none and get the plain xpub/tpub. Descriptors never need this form.
func (x *XPub) SLIP132(p Purpose) string {
	v := versionFor(p, false, x.mainnet)
	k, _ := x.k.CloneWithVersion(v[:]) // cannot fail: v has 4 bytes
	return k.String()
}

// IsMainnet reports whether the key is a mainnet (xpub) key rather than a test-network (tpub) one.
func (x *XPub) IsMainnet() bool { return x.mainnet }

// Depth is the number of derivation steps from the master key (0 for the master).
func (x *XPub) Depth() uint8 { return x.k.Depth() }

// ChildIndex is the index this key was derived at (with Hardened added if it was hardened).
func (x *XPub) ChildIndex() uint32 { return x.k.ChildIndex() }

// ParentFingerprint is the fingerprint of the key this one was derived from (zero for a master).
func (x *XPub) ParentFingerprint() Fingerprint {
	var f Fingerprint
	binary.BigEndian.PutUint32(f[:], x.k.ParentFingerprint())
	return f
}

// PublicKey returns the 33-byte compressed public key.
func (x *XPub) PublicKey() []byte {
	pk, err := x.k.ECPubKey()
	if err != nil {
		return nil // unreachable: keys are validated when made
	}
	return pk.SerializeCompressed()
}

// Fingerprint returns this key's own fingerprint (for a master key, the master fingerprint).
func (x *XPub) Fingerprint() Fingerprint {
	var f Fingerprint
	copy(f[:], btcutil.Hash160(x.PublicKey()))
	return f
}

// Derive returns the key at path below x. Every step must be unhardened
// (ErrHardenedFromPublic otherwise).
func (x *XPub) Derive(p Path) (*XPub, error) {
	k := x.k
	for _, i := range p {
		if i >= Hardened {
			return nil, ErrHardenedFromPublic
		}
		c, err := k.Derive(i)
		if err != nil {
			return nil, fmt.Errorf("keys: deriving %s: %w", p, err)
		}
		k = c
	}
	return &XPub{k: k, mainnet: x.mainnet}, nil
}

// Equal reports whether two extended public keys serialize identically.
func (x *XPub) Equal(y *XPub) bool {
	return x != nil && y != nil && x.String() == y.String()
}

// XPrv is an extended private key (BIP32). It is secret: String is redacted, Serialize returns
// bytes the caller zeroes, and the owner calls Zero when done. Zero clears the key and chain
// code this value holds; Go may still have copied them (the garbage collector moves nothing, but
// hdkeychain's intermediate buffers are not cleared), so zeroing is best effort.
type XPrv struct {
	k       *hdkeychain.ExtendedKey
	mainnet bool
}

// NewMasterKey derives the BIP32 master key of a seed (16 to 64 bytes, normally the 64-byte BIP39
// seed) for a network. It keeps no reference to seed; the caller zeroes it. The caller zeroes
// the returned key.
func NewMasterKey(seed []byte, net Network) (*XPrv, error) {
	if err := net.check(); err != nil {
		return nil, err
	}
	k, err := hdkeychain.NewMaster(seed, net.Params())
	if err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	return &XPrv{k: k, mainnet: net.IsMainnet()}, nil
}

// ParseXPrv reads an extended private key (xprv/tprv or a SLIP-132 form) with every check of
// BIP32. An extended public key is refused with ErrNotPrivateKey. The caller zeroes the result;
// s itself is a string and cannot be cleared, so prefer keeping keys as seeds.
func ParseXPrv(s string) (*XPrv, error) {
	d, err := decodeExtended(s)
	if err != nil {
		return nil, err
	}
	if !d.info.private {
		return nil, ErrNotPrivateKey
	}
	ver := versionFor(0, true, d.info.mainnet)
	k := hdkeychain.NewExtendedKey(ver[:], d.key, d.chainCode, append([]byte(nil), d.parentFP[:]...),
		d.depth, d.childNum, true)
	return &XPrv{k: k, mainnet: d.info.mainnet}, nil
}

func (x *XPrv) usable() bool { return x != nil && x.k != nil && x.k.IsPrivate() }

// IsMainnet reports whether the key is a mainnet (xprv) key.
func (x *XPrv) IsMainnet() bool { return x.mainnet }

// Depth is the number of derivation steps from the master key.
func (x *XPrv) Depth() uint8 { return x.k.Depth() }

// Derive returns the private key at path below x; x is not changed. Intermediate keys are
// zeroed. The caller zeroes the result.
func (x *XPrv) Derive(p Path) (*XPrv, error) {
	if !x.usable() {
		return nil, ErrZeroed
	}
	k := x.k
	for n, i := range p {
		c, err := k.Derive(i)
		if k != x.k {
			k.Zero()
		}
		if err != nil {
			return nil, fmt.Errorf("keys: deriving step %d of %s: %w", n+1, p, err)
		}
		k = c
	}
	if k == x.k { // empty path: return an independent copy
		return x.clone(), nil
	}
	return &XPrv{k: k, mainnet: x.mainnet}, nil
}

func (x *XPrv) clone() *XPrv {
	priv, _ := x.k.ECPrivKey()
	b := priv.Key.Bytes()
	priv.Zero()
	var pfp [4]byte
	binary.BigEndian.PutUint32(pfp[:], x.k.ParentFingerprint())
	k := hdkeychain.NewExtendedKey(append([]byte(nil), x.k.Version()...), append([]byte(nil), b[:]...),
		x.k.ChainCode(), pfp[:], x.k.Depth(), x.k.ChildIndex(), true)
	clear(b[:])
	return &XPrv{k: k, mainnet: x.mainnet}
}

// XPub returns the extended public key of x. It shares no memory with x, so zeroing x leaves it
// intact.
func (x *XPrv) XPub() (*XPub, error) {
	if !x.usable() {
		return nil, ErrZeroed
	}
	pk, err := x.k.ECPubKey()
	if err != nil {
		return nil, err
	}
	var pfp [4]byte
	binary.BigEndian.PutUint32(pfp[:], x.k.ParentFingerprint())
	ver := versionFor(0, false, x.mainnet)
	k := hdkeychain.NewExtendedKey(ver[:], pk.SerializeCompressed(), x.k.ChainCode(), pfp[:],
		x.k.Depth(), x.k.ChildIndex(), false)
	return &XPub{k: k, mainnet: x.mainnet}, nil
}

// Fingerprint returns the fingerprint of this key's public key; for the master key that is the
// master fingerprint of key origins. A fingerprint is public.
func (x *XPrv) Fingerprint() (Fingerprint, error) {
	pub, err := x.XPub()
	if err != nil {
		return Fingerprint{}, err
	}
	return pub.Fingerprint(), nil
}

// ECPrivKey returns the secp256k1 private key for signing. The caller calls Zero on it.
func (x *XPrv) ECPrivKey() (*btcec.PrivateKey, error) {
	if !x.usable() {
		return nil, ErrZeroed
	}
	return x.k.ECPrivKey()
}

// Serialize returns the key as base58 xprv… / tprv… text in a byte slice the caller zeroes
// (built without an intermediate string).
func (x *XPrv) Serialize() ([]byte, error) { return x.serialize(0) }

// SerializeSLIP132 is Serialize with the SLIP-132 version for p (yprv/uprv, zprv/vprv,
// Zprv/Vprv; BIP44 and BIP86 keep xprv/tprv). The caller zeroes the result.
func (x *XPrv) SerializeSLIP132(p Purpose) ([]byte, error) { return x.serialize(p) }

func (x *XPrv) serialize(p Purpose) ([]byte, error) {
	if !x.usable() {
		return nil, ErrZeroed
	}
	priv, err := x.k.ECPrivKey()
	if err != nil {
		return nil, err
	}
	key := priv.Key.Bytes()
	priv.Zero()
	defer clear(key[:])
	ver := versionFor(p, true, x.mainnet)
	buf := make([]byte, 0, 82)
	defer clear(buf[:82])
	buf = append(buf, ver[:]...)
	buf = append(buf, x.k.Depth())
	buf = binary.BigEndian.AppendUint32(buf, x.k.ParentFingerprint())
	buf = binary.BigEndian.AppendUint32(buf, x.k.ChildIndex())
	cc := x.k.ChainCode()
	buf = append(buf, cc...)
	clear(cc)
	buf = append(buf, 0)
	buf = append(buf, key[:]...)
	sum := sha256.Sum256(buf)
	sum = sha256.Sum256(sum[:])
	buf = append(buf, sum[:4]...)
	return base58Append(nil, buf), nil
}

// Zero clears the key material x holds; x is unusable afterwards.
func (x *XPrv) Zero() {
	if x == nil || x.k == nil {
		return
	}
	x.k.Zero()
}

// String never shows key material.
func (x *XPrv) String() string {
	if !x.usable() {
		return "keys.XPrv(zeroed)"
	}
	return fmt.Sprintf("keys.XPrv(redacted, depth %d)", x.k.Depth())
}

// GoString keeps %#v from printing the key.
func (x *XPrv) GoString() string { return x.String() }

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Append appends the Bitcoin base58 encoding of src to dst. Its scratch space is cleared.
func base58Append(dst, src []byte) []byte {
	zeros := 0
	for zeros < len(src) && src[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37: enough digits for the number.
	digits := make([]byte, len(src)*137/100+1)
	defer clear(digits)
	n := 0
	for _, b := range src[zeros:] {
		carry := int(b)
		for i := 0; i < n; i++ {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits[n] = byte(carry % 58)
			n++
			carry /= 58
		}
	}
	for i := 0; i < zeros; i++ {
		dst = append(dst, '1')
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, base58Alphabet[digits[i]])
	}
	return dst
}
