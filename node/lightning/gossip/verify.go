package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// ErrInvalid marks data that no honest peer sends (a bad signature, a malformed key): the
// peer that sent it is dropped.
var ErrInvalid = errors.New("invalid gossip")

// keyCacheMax bounds the cache of parsed node keys.
const keyCacheMax = 200_000

// Verifier checks gossip signatures. Node keys are parsed once (parsing a compressed key
// costs a square root) and cached after a signature by the key verified.
type Verifier struct {
	mu   sync.RWMutex
	keys map[[33]byte]*btcec.PublicKey
}

// NewVerifier returns a verifier with an empty key cache.
func NewVerifier() *Verifier { return &Verifier{keys: make(map[[33]byte]*btcec.PublicKey)} }

func (v *Verifier) key(raw [33]byte) (*btcec.PublicKey, bool, error) {
	v.mu.RLock()
	k, ok := v.keys[raw]
	v.mu.RUnlock()
	if ok {
		return k, true, nil
	}
	k, err := btcec.ParsePubKey(raw[:])
	if err != nil {
		return nil, false, fmt.Errorf("%w: key %x: %v", ErrInvalid, raw, err)
	}
	return k, false, nil
}

func (v *Verifier) remember(raw [33]byte, k *btcec.PublicKey) {
	v.mu.Lock()
	if len(v.keys) >= keyCacheMax {
		clear(v.keys)
	}
	v.keys[raw] = k
	v.mu.Unlock()
}

// verifySig checks sig by the key raw over the double SHA-256 of data.
func (v *Verifier) verifySig(what string, raw [33]byte, sig lnwire.Sig, digest []byte) error {
	k, cached, err := v.key(raw)
	if err != nil {
		return err
	}
	s, err := parseSig(sig)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	if !s.Verify(digest, k) {
		return fmt.Errorf("%w: %s: bad signature", ErrInvalid, what)
	}
	if !cached {
		v.remember(raw, k)
	}
	return nil
}

// parseSig turns the 64-byte wire signature (r || s) into an ECDSA signature.
func parseSig(sig lnwire.Sig) (*ecdsa.Signature, error) {
	raw := sig.RawBytes()
	if len(raw) != 64 {
		return nil, fmt.Errorf("signature of %d bytes", len(raw))
	}
	var r, s btcec.ModNScalar
	if r.SetByteSlice(raw[:32]) || s.SetByteSlice(raw[32:]) || r.IsZero() || s.IsZero() {
		return nil, errors.New("signature out of range")
	}
	return ecdsa.NewSignature(&r, &s), nil
}

// VerifyChannelAnnouncement checks the node ids' order and the four signatures.
func (v *Verifier) VerifyChannelAnnouncement(a *lnwire.ChannelAnnouncement1) error {
	if bytes.Compare(a.NodeID1[:], a.NodeID2[:]) >= 0 {
		return fmt.Errorf("%w: channel %v: node ids not in ascending order", ErrInvalid, a.ShortChannelID)
	}
	data, err := a.DataToSign()
	if err != nil {
		return fmt.Errorf("%w: channel %v: %v", ErrInvalid, a.ShortChannelID, err)
	}
	digest := chainhash.DoubleHashB(data)
	for _, c := range []struct {
		what string
		key  [33]byte
		sig  lnwire.Sig
	}{
		{"node_signature_1", a.NodeID1, a.NodeSig1},
		{"node_signature_2", a.NodeID2, a.NodeSig2},
		{"bitcoin_signature_1", a.BitcoinKey1, a.BitcoinSig1},
		{"bitcoin_signature_2", a.BitcoinKey2, a.BitcoinSig2},
	} {
		if err := v.verifySig(fmt.Sprintf("channel %v %s", a.ShortChannelID, c.what), c.key, c.sig, digest); err != nil {
			return err
		}
	}
	return nil
}

// VerifyChannelUpdate checks the update's signature by node, the node at the start of the
// direction the update is for.
func (v *Verifier) VerifyChannelUpdate(u *lnwire.ChannelUpdate1, node [33]byte) error {
	data, err := u.DataToSign()
	if err != nil {
		return fmt.Errorf("%w: update %v: %v", ErrInvalid, u.ShortChannelID, err)
	}
	return v.verifySig(fmt.Sprintf("update of %v", u.ShortChannelID), node, u.Signature, chainhash.DoubleHashB(data))
}

// VerifyNodeAnnouncement checks the announcement's signature by the node.
func (v *Verifier) VerifyNodeAnnouncement(n *lnwire.NodeAnnouncement1) error {
	data, err := n.DataToSign()
	if err != nil {
		return fmt.Errorf("%w: node %x: %v", ErrInvalid, n.NodeID, err)
	}
	return v.verifySig(fmt.Sprintf("node %x", n.NodeID), n.NodeID, n.Signature, chainhash.DoubleHashB(data))
}

// Parallel runs fn(0) … fn(n-1) on GOMAXPROCS goroutines and waits for them.
func Parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
