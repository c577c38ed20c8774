package hsm

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// # Lightning node key
//
// The box's Lightning node identity (its node id in the channel graph and the static key of
// its BOLT 8 transport) is a secp256k1 key derived from the wallet seed, so that the same
// mnemonic always gives the same node id on a new box.
//
// Derivation, version 1 (NodeKeyVersion):
//
//	node key = BIP32 private key at m/1095653697'/1'/0' of the wallet's master key
//	           (1095653697 = 0x414E5941, "ANYA", the box's own hardened purpose, see
//	           backupkey.go; 1' = Lightning node identity; 0' = the first key version).
//
// Hardened all the way, so no exported xpub leads to it and no standard wallet path uses it.
// Like the backup key, BIP32 private derivation does not depend on the network.
//
// The key never leaves this package: NodeKey offers only what the Lightning layer needs —
// the public key, the ECDH of BOLT 8 (the method set of lnd's keychain.SingleKeyECDH, which
// brontide takes) and signatures over the double SHA-256 of a message (BOLT 7 gossip
// signatures). Zero clears it.

// NodeKeyVersion is the node-key derivation described above.
const NodeKeyVersion = 1

// nodeKeyPath is m/1095653697'/1'/0'.
var nodeKeyPath = keys.Path{0x414E5941 + keys.Hardened, 1 + keys.Hardened, 0 + keys.Hardened}

var errNodeKeyZeroed = errors.New("node key: the key was zeroed")

// NodeKey is the box's Lightning node identity key. It is secret: it has no accessor for the
// private key, its String is redacted, and the holder calls Zero when done. It is safe for
// concurrent use until Zero.
type NodeKey struct {
	priv *btcec.PrivateKey // nil once zeroed
	pub  *btcec.PublicKey
}

// PubKey is the node id.
func (k *NodeKey) PubKey() *btcec.PublicKey { return k.pub }

// ECDH returns SHA-256 of the compressed point k*pub, as BOLT 8 and lnd's
// keychain.SingleKeyECDH define it.
func (k *NodeKey) ECDH(pub *btcec.PublicKey) ([32]byte, error) {
	if k == nil || k.priv == nil {
		return [32]byte{}, errNodeKeyZeroed
	}
	if pub == nil {
		return [32]byte{}, errors.New("node key: ECDH with no public key")
	}
	var p, s btcec.JacobianPoint
	pub.AsJacobian(&p)
	btcec.ScalarMultNonConst(&k.priv.Key, &p, &s)
	s.ToAffine()
	return sha256.Sum256(btcec.NewPublicKey(&s.X, &s.Y).SerializeCompressed()), nil
}

// SignMessage signs the double SHA-256 of msg (the digest BOLT 7 signs) with a low-S
// deterministic (RFC 6979) ECDSA signature.
func (k *NodeKey) SignMessage(msg []byte) (*ecdsa.Signature, error) {
	if k == nil || k.priv == nil {
		return nil, errNodeKeyZeroed
	}
	return ecdsa.Sign(k.priv, chainhash.DoubleHashB(msg)), nil
}

// Zero clears the key; it is unusable afterwards (PubKey still answers).
func (k *NodeKey) Zero() {
	if k == nil || k.priv == nil {
		return
	}
	k.priv.Zero()
	k.priv = nil
}

// String never shows key material.
func (k *NodeKey) String() string {
	if k == nil || k.pub == nil {
		return "hsm.NodeKey(nil)"
	}
	return fmt.Sprintf("hsm.NodeKey(%x, redacted)", k.pub.SerializeCompressed())
}

// GoString keeps %#v from printing the key.
func (k *NodeKey) GoString() string { return k.String() }

// nodeKeyFromSeed derives the node key of a BIP39 seed. The caller zeroes seed.
func nodeKeyFromSeed(seed []byte) (*NodeKey, error) {
	master, err := keys.NewMasterKey(seed, keys.Mainnet)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	defer master.Zero()
	child, err := master.Derive(nodeKeyPath)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	defer child.Zero()
	priv, err := child.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return &NodeKey{priv: priv, pub: priv.PubKey()}, nil
}

// NodeKeyFromMnemonic derives the node key of the wallet a mnemonic (and optional BIP39
// passphrase) make. The caller zeroes the key.
func NodeKeyFromMnemonic(phrase string, passphrase []byte) (*NodeKey, error) {
	seed, err := keys.SeedFromMnemonic(phrase, passphrase)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	defer clear(seed)
	return nodeKeyFromSeed(seed)
}

// NodeKey returns the Lightning node key of the unlocked wallet. It fails with ErrLocked while
// the wallet is locked and with ErrNoWallet before setup. The call is recorded in the audit
// trail. The caller zeroes the key when the Lightning node stops.
func (c *Custody) NodeKey() (*NodeKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok, err := c.record(); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("node key: %w", ErrNoWallet)
	}
	if c.seed == nil {
		return nil, fmt.Errorf("node key: %w", ErrLocked)
	}
	k, err := nodeKeyFromSeed(c.seed)
	if err != nil {
		return nil, err
	}
	c.appendAudit(audit.EventNodeKey, "Lightning node key opened")
	return k, nil
}
