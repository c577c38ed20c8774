package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// Purpose is the BIP43 purpose level of an account path; it fixes the script type.
type Purpose uint32

// Purposes.
const (
	PurposeBIP44 Purpose = 44 // m/44'/coin'/account': P2PKH, pkh()
	PurposeBIP48 Purpose = 48 // m/48'/coin'/account'/2': one cosigner of a P2WSH multisig, wsh(sortedmulti())
	PurposeBIP49 Purpose = 49 // m/49'/coin'/account': P2WPKH nested in P2SH, sh(wpkh())
	PurposeBIP84 Purpose = 84 // m/84'/coin'/account': P2WPKH, wpkh()
	PurposeBIP86 Purpose = 86 // m/86'/coin'/account': P2TR key path only, tr()
)

// bip48ScriptP2WSH is BIP48's script_type level for native segwit multisig.
const bip48ScriptP2WSH = 2

// String names the purpose and its script: "BIP84 (wpkh)".
func (p Purpose) String() string {
	switch p {
	case PurposeBIP44:
		return "BIP44 (pkh)"
	case PurposeBIP48:
		return "BIP48 (wsh sortedmulti)"
	case PurposeBIP49:
		return "BIP49 (sh-wpkh)"
	case PurposeBIP84:
		return "BIP84 (wpkh)"
	case PurposeBIP86:
		return "BIP86 (tr)"
	}
	return fmt.Sprintf("Purpose(%d)", uint32(p))
}

func (p Purpose) check() error {
	switch p {
	case PurposeBIP44, PurposeBIP48, PurposeBIP49, PurposeBIP84, PurposeBIP86:
		return nil
	}
	return fmt.Errorf("keys: unsupported purpose %d (want 44, 48, 49, 84 or 86)", uint32(p))
}

// scriptType is the descriptor script a single-key purpose produces.
func (p Purpose) scriptType() ScriptType {
	switch p {
	case PurposeBIP44:
		return ScriptPKH
	case PurposeBIP49:
		return ScriptSHWPKH
	case PurposeBIP84:
		return ScriptWPKH
	case PurposeBIP86:
		return ScriptTR
	case PurposeBIP48:
		return ScriptWSHSortedMulti
	}
	return 0
}

// Chain is the BIP44 change level: 0 for receiving addresses, 1 for change.
type Chain uint32

// Chains.
const (
	Receive Chain = 0
	Change  Chain = 1
)

func (c Chain) check() error {
	if c != Receive && c != Change {
		return fmt.Errorf("keys: chain %d is neither receive (0) nor change (1)", uint32(c))
	}
	return nil
}

// AccountPath returns the standard account path for a purpose: m/purpose'/coin'/account', and
// m/48'/coin'/account'/2' for BIP48 (P2WSH). coin is the network's coin type.
func AccountPath(p Purpose, net Network, account uint32) (Path, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if err := net.check(); err != nil {
		return nil, err
	}
	if account >= Hardened {
		return nil, fmt.Errorf("keys: account number %d is out of range (0 to 2^31-1)", account)
	}
	path := Path{uint32(p) + Hardened, net.CoinType() + Hardened, account + Hardened}
	if p == PurposeBIP48 {
		path = append(path, bip48ScriptP2WSH+Hardened)
	}
	return path, nil
}

// Account is the public side of one account of a wallet: what a watch-only wallet imports. It
// holds no secret.
type Account struct {
	Purpose Purpose
	Network Network
	Origin  KeyOrigin // master fingerprint and path of XPub
	XPub    *XPub     // the account-level extended public key
}

// NewAccount derives the account (standard path, see AccountPath) from a master key. The
// intermediate private keys are zeroed; master is left as it was.
func NewAccount(master *XPrv, p Purpose, net Network, account uint32) (*Account, error) {
	path, err := AccountPath(p, net, account)
	if err != nil {
		return nil, err
	}
	if !master.usable() {
		return nil, ErrZeroed
	}
	if master.Depth() != 0 {
		return nil, errors.New("keys: NewAccount needs the master key (depth 0)")
	}
	if master.IsMainnet() != net.IsMainnet() {
		return nil, ErrWrongNetwork
	}
	fp, err := master.Fingerprint()
	if err != nil {
		return nil, err
	}
	acct, err := master.Derive(path)
	if err != nil {
		return nil, err
	}
	defer acct.Zero()
	xpub, err := acct.XPub()
	if err != nil {
		return nil, err
	}
	return &Account{Purpose: p, Network: net, Origin: KeyOrigin{Fingerprint: fp, Path: path}, XPub: xpub}, nil
}

// NewWatchAccount makes an Account from public data, e.g. a cosigner's key exported by another
// device. The key must belong to net; when origin has a path, its length must be the key's depth.
func NewWatchAccount(p Purpose, net Network, origin KeyOrigin, xpub *XPub) (*Account, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if err := net.check(); err != nil {
		return nil, err
	}
	if xpub == nil {
		return nil, errors.New("keys: no extended public key")
	}
	if xpub.IsMainnet() != net.IsMainnet() {
		return nil, ErrWrongNetwork
	}
	if len(origin.Path) != 0 && len(origin.Path) != int(xpub.Depth()) {
		return nil, fmt.Errorf("keys: key origin path %s has %d steps but the key has depth %d",
			origin.Path, len(origin.Path), xpub.Depth())
	}
	return &Account{Purpose: p, Network: net, Origin: KeyOrigin{Fingerprint: origin.Fingerprint,
		Path: origin.Path.Child()}, XPub: xpub}, nil
}

// SLIP132 returns the account key in the SLIP-132 form its purpose uses (zpub for BIP84 …), for
// wallets that import a bare extended key; BIP44/BIP86 accounts get plain xpub/tpub.
func (a *Account) SLIP132() string { return a.XPub.SLIP132(a.Purpose) }

// Address derives the address at chain/index of a single-key account (BIP44, 49, 84, 86). A
// BIP48 account is one cosigner: put it in a Multisig.
func (a *Account) Address(chain Chain, index uint32) (*Address, error) {
	d, err := a.descriptor(chain, false)
	if err != nil {
		return nil, err
	}
	return d.DeriveAddress(a.Network, index)
}

// Descriptor returns the output descriptor with checksum for one chain of a single-key account,
// e.g. "wpkh([73c5da0a/84h/0h/0h]xpub…/0/*)#…". Keys are plain xpub/tpub and hardened steps
// are written with h.
func (a *Account) Descriptor(chain Chain) (string, error) {
	d, err := a.descriptor(chain, false)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// MultipathDescriptor returns the BIP389 descriptor for both chains, ".../<0;1>/*". Sparrow and
// Bitcoin Core 29 and later import it; older Core wants the two Descriptor strings.
func (a *Account) MultipathDescriptor() (string, error) {
	d, err := a.descriptor(0, true)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

func (a *Account) descriptor(chain Chain, multipath bool) (*Descriptor, error) {
	if a.Purpose == PurposeBIP48 {
		return nil, errors.New("keys: a BIP48 account is one cosigner's key; build a Multisig to get addresses and descriptors")
	}
	if err := a.Purpose.check(); err != nil {
		return nil, err
	}
	k, err := a.keyExpr(chain, multipath)
	if err != nil {
		return nil, err
	}
	return &Descriptor{Type: a.Purpose.scriptType(), Keys: []DescriptorKey{k}}, nil
}

func (a *Account) keyExpr(chain Chain, multipath bool) (DescriptorKey, error) {
	if a.XPub == nil {
		return DescriptorKey{}, errors.New("keys: account has no extended public key")
	}
	if a.XPub.IsMainnet() != a.Network.IsMainnet() {
		return DescriptorKey{}, ErrWrongNetwork
	}
	origin := a.Origin
	origin.Path = origin.Path.Child()
	k := DescriptorKey{Origin: &origin, XPub: a.XPub, Wildcard: true}
	if multipath {
		k.Steps = []PathStep{{uint32(Receive), uint32(Change)}}
	} else {
		if err := chain.check(); err != nil {
			return DescriptorKey{}, err
		}
		k.Steps = []PathStep{{uint32(chain)}}
	}
	return k, nil
}

// MaxMultisigKeys is the most keys a wsh(sortedmulti()) may have (OP_CHECKMULTISIG's limit).
const MaxMultisigKeys = 20

// Multisig is a k-of-n P2WSH wallet, wsh(sortedmulti(k, …)), from BIP48 cosigner accounts.
type Multisig struct {
	Threshold int
	Network   Network
	Cosigners []*Account // BIP48 accounts, in the order their keys appear in descriptors
}

// NewMultisig checks and assembles a multisig wallet: 1 ≤ threshold ≤ len(cosigners) ≤ 20, all
// cosigners BIP48 accounts of net, no key twice.
func NewMultisig(net Network, threshold int, cosigners ...*Account) (*Multisig, error) {
	if err := net.check(); err != nil {
		return nil, err
	}
	if len(cosigners) == 0 || len(cosigners) > MaxMultisigKeys {
		return nil, fmt.Errorf("keys: a multisig has 1 to %d cosigners, not %d", MaxMultisigKeys, len(cosigners))
	}
	if threshold < 1 || threshold > len(cosigners) {
		return nil, fmt.Errorf("keys: threshold %d is not between 1 and %d (the number of cosigners)", threshold, len(cosigners))
	}
	seen := make(map[string]bool, len(cosigners))
	for i, c := range cosigners {
		if c == nil || c.XPub == nil {
			return nil, fmt.Errorf("keys: cosigner %d has no key", i+1)
		}
		if c.Purpose != PurposeBIP48 {
			return nil, fmt.Errorf("keys: cosigner %d is a %v account, not BIP48", i+1, c.Purpose)
		}
		if c.Network != net || c.XPub.IsMainnet() != net.IsMainnet() {
			return nil, fmt.Errorf("keys: cosigner %d: %w", i+1, ErrWrongNetwork)
		}
		s := c.XPub.String()
		if seen[s] {
			return nil, fmt.Errorf("keys: cosigner %d repeats another cosigner's key", i+1)
		}
		seen[s] = true
	}
	return &Multisig{Threshold: threshold, Network: net, Cosigners: append([]*Account(nil), cosigners...)}, nil
}

// Address derives the P2WSH address at chain/index.
func (m *Multisig) Address(chain Chain, index uint32) (*Address, error) {
	d, err := m.descriptor(chain, false)
	if err != nil {
		return nil, err
	}
	return d.DeriveAddress(m.Network, index)
}

// Descriptor returns "wsh(sortedmulti(k,[fp/48h/0h/0h/2h]xpub…/chain/*,…))#checksum".
func (m *Multisig) Descriptor(chain Chain) (string, error) {
	d, err := m.descriptor(chain, false)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// MultipathDescriptor returns the BIP389 form with /<0;1>/* for every key.
func (m *Multisig) MultipathDescriptor() (string, error) {
	d, err := m.descriptor(0, true)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

func (m *Multisig) descriptor(chain Chain, multipath bool) (*Descriptor, error) {
	if m.Threshold < 1 || m.Threshold > len(m.Cosigners) || len(m.Cosigners) > MaxMultisigKeys {
		return nil, errors.New("keys: invalid multisig threshold or cosigner count")
	}
	d := &Descriptor{Type: ScriptWSHSortedMulti, Threshold: m.Threshold}
	for _, c := range m.Cosigners {
		if c == nil {
			return nil, errors.New("keys: nil cosigner")
		}
		k, err := c.keyExpr(chain, multipath)
		if err != nil {
			return nil, err
		}
		d.Keys = append(d.Keys, k)
	}
	return d, nil
}

// Address is one derived output: the address text and everything a watch-only wallet or a
// signer needs to recognise and spend it.
type Address struct {
	Address      string
	ScriptPubKey []byte
	// PubKeys are the compressed public keys the script commits to: one for single-key scripts
	// (for tr, the internal key is PubKeys[0] without its first byte), sorted for sortedmulti.
	PubKeys       [][]byte
	RedeemScript  []byte // sh(wpkh()): the P2WPKH program in the scriptSig
	WitnessScript []byte // wsh(): the multisig script
	OutputKey     []byte // tr(): the 32-byte tweaked output key (BIP341, no script tree)
}

// String is the address text.
func (a *Address) String() string { return a.Address }

// buildAddress makes the output of script type t over already derived compressed keys.
func buildAddress(t ScriptType, threshold int, pubkeys [][]byte, params *chaincfg.Params) (*Address, error) {
	out := &Address{PubKeys: pubkeys}
	var addr btcutil.Address
	var err error
	switch t {
	case ScriptPKH, ScriptSHWPKH, ScriptWPKH, ScriptTR:
		if len(pubkeys) != 1 {
			return nil, errors.New("keys: a single-key script needs exactly one key")
		}
		pk := pubkeys[0]
		switch t {
		case ScriptPKH:
			addr, err = btcutil.NewAddressPubKeyHash(btcutil.Hash160(pk), params)
		case ScriptWPKH:
			addr, err = btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pk), params)
		case ScriptSHWPKH:
			out.RedeemScript = append([]byte{txscript.OP_0, txscript.OP_DATA_20}, btcutil.Hash160(pk)...)
			addr, err = btcutil.NewAddressScriptHash(out.RedeemScript, params)
		case ScriptTR:
			var internal *btcec.PublicKey
			internal, err = btcec.ParsePubKey(pk)
			if err != nil {
				return nil, err
			}
			out.OutputKey = schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(internal))
			addr, err = btcutil.NewAddressTaproot(out.OutputKey, params)
		}
	case ScriptWSHSortedMulti:
		if threshold < 1 || threshold > len(pubkeys) || len(pubkeys) > MaxMultisigKeys {
			return nil, errors.New("keys: invalid multisig threshold or key count")
		}
		sorted := append([][]byte(nil), pubkeys...)
		sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
		out.PubKeys = sorted
		b := txscript.NewScriptBuilder().AddInt64(int64(threshold))
		for _, pk := range sorted {
			b.AddData(pk)
		}
		b.AddInt64(int64(len(sorted))).AddOp(txscript.OP_CHECKMULTISIG)
		out.WitnessScript, err = b.Script()
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(out.WitnessScript)
		addr, err = btcutil.NewAddressWitnessScriptHash(h[:], params)
	default:
		return nil, fmt.Errorf("keys: unsupported script type %v", t)
	}
	if err != nil {
		return nil, err
	}
	out.Address = addr.EncodeAddress()
	out.ScriptPubKey, err = txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, err
	}
	return out, nil
}
