package sign

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Config configures a Signer.
type Config struct {
	// Master is the wallet's BIP32 master private key (depth 0). The Signer keeps the pointer
	// and never modifies or zeroes it: the caller owns it and zeroes it when done.
	Master *hdkeychain.ExtendedKey
	// Net selects the coin type of change paths and the address format of the summary. Nil:
	// mainnet for an xprv, testnet3 for a tprv.
	Net *chaincfg.Params
	// Policy is the owner's policy, enforced on every Sign.
	Policy Policy
	// History feeds and records the daily limit. It may be nil only when the policy has no
	// daily limit.
	History History
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Rand supplies the BIP340 auxiliary randomness of Schnorr signatures (default
	// crypto/rand). An all-zero reader gives the deterministic signatures of the BIP340 and
	// BIP341 test vectors.
	Rand io.Reader
}

// Signer signs PSBTs with one master key under one policy. It is safe for concurrent use;
// signings are serialized so that the daily limit cannot be raced.
type Signer struct {
	master  *hdkeychain.ExtendedKey
	fp      uint32 // as PSBT stores it: the 4 fingerprint bytes read little-endian
	net     *chaincfg.Params
	policy  Policy
	history History
	now     func() time.Time
	rand    io.Reader

	mu sync.Mutex // one signing at a time: the daily limit is checked, then recorded

	changeMu    sync.Mutex
	changeNodes map[string]*hdkeychain.ExtendedKey // account/1 extended public keys

	signingKeys atomic.Int64 // private signing keys derived so far (tests check the order)
}

// New returns a Signer.
func New(cfg Config) (*Signer, error) {
	m := cfg.Master
	if m == nil || !m.IsPrivate() || m.Depth() != 0 {
		return nil, errors.New("sign: the master key must be a BIP32 master private key")
	}
	if err := cfg.Policy.validate(); err != nil {
		return nil, err
	}
	if cfg.Policy.DailyLimit > 0 && cfg.History == nil {
		return nil, errors.New("sign: a daily limit needs a History")
	}
	s := &Signer{
		master:      m,
		net:         cfg.Net,
		policy:      cfg.Policy,
		history:     cfg.History,
		now:         cfg.Now,
		rand:        cfg.Rand,
		changeNodes: make(map[string]*hdkeychain.ExtendedKey),
	}
	s.policy.ChangeAccounts = append([]Path(nil), cfg.Policy.ChangeAccounts...)
	s.policy.AllowSighash = append([]txscript.SigHashType(nil), cfg.Policy.AllowSighash...)
	if s.net == nil {
		s.net = &chaincfg.TestNet3Params
		if m.IsForNet(&chaincfg.MainNetParams) {
			s.net = &chaincfg.MainNetParams
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	pub, err := m.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("sign: master key: %w", err)
	}
	s.fp = binary.LittleEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4])
	return s, nil
}

// Fingerprint returns the master key fingerprint as PSBT fields hold it (psbt.Bip32Derivation
// MasterKeyFingerprint).
func (s *Signer) Fingerprint() uint32 { return s.fp }

// FingerprintHex returns the master key fingerprint as wallets display it (e.g. "d90c6a4f").
func (s *Signer) FingerprintHex() string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], s.fp)
	return hex.EncodeToString(b[:])
}

// SignOptions tune one signing.
type SignOptions struct {
	// Finalize finalizes every input that has all its signatures and, when all are final,
	// extracts the network transaction.
	Finalize bool
	// AllowForeignInputs signs PSBTs in which some inputs carry no key of ours (coinjoins,
	// payjoins). By default such an input is refused. The daily limit always counts only
	// what leaves our inputs.
	AllowForeignInputs bool
	// KeyFilter, when set, restricts signing to our keys whose path it accepts.
	KeyFilter func(Path) bool
}

// Result is a signed PSBT.
type Result struct {
	Packet  *psbt.Packet
	Summary *Summary
	// Signed lists the inputs that received at least one new signature.
	Signed []int
	// Complete: every input is finalized (only with SignOptions.Finalize).
	Complete bool
	// Incomplete lists the inputs left unfinalized (only with SignOptions.Finalize), e.g. a
	// multisig that still needs another cosigner.
	Incomplete []int
	// Tx is the network transaction, when Complete.
	Tx *wire.MsgTx
}

// Base64 returns the signed PSBT as base64.
func (r *Result) Base64() (string, error) { return r.Packet.B64Encode() }

// Bytes returns the signed PSBT in binary.
func (r *Result) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := r.Packet.Serialize(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Summarize describes what Sign would sign and which policy rules it would break, without
// deriving any private signing key and without recording anything.
func (s *Signer) Summarize(data []byte, opts SignOptions) (*Summary, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return s.SummarizePacket(p, opts)
}

// SummarizePacket is Summarize for a parsed PSBT; p is not modified.
func (s *Signer) SummarizePacket(p *psbt.Packet, opts SignOptions) (*Summary, error) {
	if err := checkPacket(p); err != nil {
		return nil, err
	}
	a, err := s.analyze(p, &opts)
	if err != nil {
		return nil, err
	}
	if err := s.judge(a.summary, s.now()); err != nil {
		return nil, err
	}
	return a.summary, nil
}

func (s *Signer) judge(sum *Summary, now time.Time) error {
	var err error
	sum.SpentLast24h, err = spentInWindow(s.history, now, sum.TxID)
	if err != nil {
		return err
	}
	sum.Violations = s.policy.evaluate(sum)
	return nil
}

func checkPacket(p *psbt.Packet) error {
	if p == nil || p.UnsignedTx == nil || len(p.Inputs) != len(p.UnsignedTx.TxIn) ||
		len(p.Outputs) != len(p.UnsignedTx.TxOut) || len(p.UnsignedTx.TxIn) == 0 || len(p.UnsignedTx.TxOut) == 0 {
		return fmt.Errorf("%w: inconsistent packet", ErrMalformed)
	}
	return nil
}

// Sign parses a PSBT (binary or base64), checks it and the policy, signs every input it can
// with the master key and returns the updated PSBT. On any error nothing is signed.
func (s *Signer) Sign(data []byte, opts SignOptions) (*Result, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return s.SignPacket(p, opts)
}

// SignPacket is Sign for a parsed PSBT. It adds the signatures to p in place; on error p is
// left as it was.
func (s *Signer) SignPacket(p *psbt.Packet, opts SignOptions) (*Result, error) {
	if err := checkPacket(p); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	// 1. Everything that can be checked on public data, then the policy: no private signing
	// key exists before the transaction has passed both.
	a, err := s.analyze(p, &opts)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sum := a.summary
	if err := s.judge(sum, now); err != nil {
		return nil, err
	}
	if len(sum.Violations) > 0 {
		return nil, &PolicyError{Violations: sum.Violations}
	}

	// 2. Signatures, each key derived for its signature and zeroed after it.
	sigs, err := s.signatures(p, a)
	if err != nil {
		return nil, err
	}

	// 3. Put them in the PSBT and record the spend before handing anything out; on failure
	// the PSBT gets its inputs back as they were.
	saved := append([]psbt.PInput(nil), p.Inputs...)
	if err := applySignatures(p, a, sigs); err != nil {
		copy(p.Inputs, saved)
		return nil, err
	}
	if len(sigs) > 0 && s.history != nil {
		if err := s.history.Record(Spend{Time: now, Amount: sum.Spend, TxID: sum.TxID}); err != nil {
			copy(p.Inputs, saved)
			return nil, fmt.Errorf("recording the spend: %w", err)
		}
	}

	res := &Result{Packet: p, Summary: sum}
	for _, sg := range sigs {
		if n := len(res.Signed); n == 0 || res.Signed[n-1] != sg.input {
			res.Signed = append(res.Signed, sg.input)
		}
	}
	if opts.Finalize {
		res.Complete, res.Incomplete, res.Tx = finalize(p, a)
	}
	return res, nil
}

type signature struct {
	input  int
	pubKey []byte
	sig    []byte // with the sighash byte when not SIGHASH_DEFAULT
	tap    bool
}

// signatures makes every signature the analysis planned.
func (s *Signer) signatures(p *psbt.Packet, a *analysis) ([]signature, error) {
	tx := p.UnsignedTx
	haveKeys := false
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i := range a.inputs {
		fetcher.AddPrevOut(tx.TxIn[i].PreviousOutPoint, a.inputs[i].utxo)
		haveKeys = haveKeys || len(a.inputs[i].keys) > 0
	}
	if !haveKeys {
		return nil, nil
	}
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)

	d := &deriver{master: s.master}
	defer d.zero()
	var out []signature
	for i := range a.inputs {
		plan := &a.inputs[i]
		for _, k := range plan.keys {
			sig, err := s.signOne(d, tx, sigHashes, fetcher, plan, k)
			if err != nil {
				return nil, err
			}
			out = append(out, signature{input: i, pubKey: k.pubKey, sig: sig, tap: plan.typ == P2TR})
		}
	}
	return out, nil
}

func (s *Signer) signOne(d *deriver, tx *wire.MsgTx, sigHashes *txscript.TxSigHashes,
	fetcher txscript.PrevOutputFetcher, plan *inputPlan, k keyPlan) ([]byte, error) {

	i := plan.index
	priv, err := d.privKey(k.path)
	if err != nil {
		return nil, inputErr(i, ErrKeyMismatch, "cannot derive %v: %v", k.path, err)
	}
	s.signingKeys.Add(1)
	defer priv.Zero()

	// The key the PSBT names must be the key the path gives: otherwise it is not ours.
	pub := priv.PubKey()
	var have []byte
	if plan.typ == P2TR {
		have = schnorr.SerializePubKey(pub)
	} else {
		have = pub.SerializeCompressed()
	}
	if !bytes.Equal(have, k.pubKey) {
		return nil, inputErr(i, ErrKeyMismatch, "%v gives %x, the PSBT names %x", k.path, have, k.pubKey)
	}

	if plan.typ == P2TR {
		hash, err := txscript.CalcTaprootSignatureHash(sigHashes, plan.hashType, tx, i, fetcher)
		if err != nil {
			return nil, inputErr(i, ErrUnsupported, "taproot sighash: %v", err)
		}
		var aux [32]byte
		if _, err := io.ReadFull(s.rand, aux[:]); err != nil {
			return nil, fmt.Errorf("sign: reading randomness: %w", err)
		}
		return signTaproot(priv, plan.merkleRoot, hash, plan.hashType, aux)
	}

	var hash []byte
	if plan.typ.segwitV0() {
		hash, err = txscript.CalcWitnessSigHash(plan.subScript, sigHashes, plan.hashType, tx, i, plan.utxo.Value)
	} else {
		hash, err = txscript.CalcSignatureHash(plan.subScript, plan.hashType, tx, i)
	}
	if err != nil {
		return nil, inputErr(i, ErrUnsupported, "sighash: %v", err)
	}
	return signECDSA(priv, hash, plan.hashType)
}

// signECDSA signs hash (RFC6979 nonce, low S) and checks the signature before returning it: a
// faulty deterministic ECDSA signature can leak the key.
func signECDSA(priv *btcec.PrivateKey, hash []byte, ht txscript.SigHashType) ([]byte, error) {
	sig := ecdsa.Sign(priv, hash)
	if !sig.Verify(hash, priv.PubKey()) {
		return nil, errors.New("sign: ECDSA signature failed its own verification")
	}
	return append(sig.Serialize(), byte(ht)), nil
}

// signTaproot signs a BIP341 key-path sighash: the internal key is tweaked with the merkle root
// (nil: BIP86) and the BIP340 signature uses aux as auxiliary randomness. schnorr.Sign verifies
// the signature before returning it.
func signTaproot(internal *btcec.PrivateKey, merkleRoot, hash []byte, ht txscript.SigHashType, aux [32]byte) ([]byte, error) {
	tweaked, err := tweakTaproot(internal, merkleRoot)
	if err != nil {
		return nil, err
	}
	defer tweaked.Zero()
	sig, err := schnorr.Sign(tweaked, hash, schnorr.CustomNonce(aux))
	if err != nil {
		return nil, fmt.Errorf("sign: schnorr: %w", err)
	}
	out := sig.Serialize()
	if ht != txscript.SigHashDefault {
		out = append(out, byte(ht))
	}
	return out, nil
}

// tweakTaproot returns the BIP341 output private key: d' = (d or -d, so that d'G has even y) +
// hash_TapTweak(x(P) || merkleRoot). Like txscript.TweakTaprootPrivKey, with its scalars zeroed.
func tweakTaproot(internal *btcec.PrivateKey, merkleRoot []byte) (*btcec.PrivateKey, error) {
	var k btcec.ModNScalar
	k.Set(&internal.Key)
	defer k.Zero()
	pub := internal.PubKey().SerializeCompressed()
	if pub[0] == 0x03 { // odd y
		k.Negate()
	}
	t := chainhash.TaggedHash(chainhash.TagTapTweak, pub[1:], merkleRoot)
	var tweak btcec.ModNScalar
	if tweak.SetBytes((*[32]byte)(t)) != 0 {
		return nil, errors.New("sign: taproot tweak is out of range")
	}
	k.Add(&tweak)
	if k.IsZero() {
		return nil, errors.New("sign: taproot tweak gives a zero key")
	}
	return btcec.PrivKeyFromScalar(&k), nil
}

// applySignatures puts the signatures into the PSBT.
func applySignatures(p *psbt.Packet, a *analysis, sigs []signature) error {
	if len(sigs) == 0 {
		return nil
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for i := range a.inputs {
		if a.inputs[i].addWitnessUtxo && len(a.inputs[i].keys) > 0 {
			// Segwit input given only as NON_WITNESS_UTXO: add the (verified) witness UTXO so
			// that finalizers treat it as segwit.
			u.Upsbt.Inputs[i].WitnessUtxo = wire.NewTxOut(a.inputs[i].utxo.Value, a.inputs[i].utxo.PkScript)
		}
	}
	for _, sg := range sigs {
		if sg.tap {
			p.Inputs[sg.input].TaprootKeySpendSig = sg.sig
			continue
		}
		outcome, err := u.Sign(sg.input, sg.sig, sg.pubKey, nil, nil)
		if err != nil || outcome != psbt.SignSuccesful {
			return inputErr(sg.input, ErrScriptMismatch, "adding the signature: %v (outcome %d)", err, outcome)
		}
	}
	return nil
}

// finalize finalizes the inputs that have all their signatures and extracts the transaction
// when every input is final. btcd's finalizer only completes multisig inputs holding exactly
// m signatures, so readiness is checked here first.
func finalize(p *psbt.Packet, a *analysis) (complete bool, incomplete []int, tx *wire.MsgTx) {
	for i := range p.Inputs {
		pin := &p.Inputs[i]
		if len(pin.FinalScriptSig) > 0 || len(pin.FinalScriptWitness) > 0 {
			continue
		}
		if !readyToFinalize(pin, &a.inputs[i]) || !safeFinalize(p, i) {
			incomplete = append(incomplete, i)
		}
	}
	if len(incomplete) > 0 {
		return false, incomplete, nil
	}
	tx, err := safeExtract(p)
	if err != nil {
		return false, nil, nil
	}
	return true, nil, tx
}

func readyToFinalize(pin *psbt.PInput, plan *inputPlan) bool {
	switch plan.typ {
	case P2TR:
		return len(pin.TaprootKeySpendSig) > 0
	case P2PKH, P2WPKH, P2SHP2WPK:
		return len(pin.PartialSigs) == 1
	case P2SH, P2WSH, P2SHP2WSH:
		if plan.multisigM == 0 {
			return false
		}
		return len(pin.PartialSigs) == plan.multisigM
	}
	return false
}

// safeFinalize runs btcd's finalizer on input i; a panic in it (hostile PSBT) counts as failure.
func safeFinalize(p *psbt.Packet, i int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	done, err := psbt.MaybeFinalize(p, i)
	return err == nil && done
}

func safeExtract(p *psbt.Packet) (tx *wire.MsgTx, err error) {
	defer func() {
		if r := recover(); r != nil {
			tx, err = nil, fmt.Errorf("extract: %v", r)
		}
	}()
	return psbt.Extract(p)
}

// deriver derives private keys from the master for one signing call, sharing the intermediate
// nodes between keys, and zeroes every node it made.
type deriver struct {
	master *hdkeychain.ExtendedKey
	nodes  map[string]*hdkeychain.ExtendedKey
}

func (d *deriver) node(path Path) (*hdkeychain.ExtendedKey, error) {
	if d.nodes == nil {
		d.nodes = make(map[string]*hdkeychain.ExtendedKey)
	}
	node, start := d.master, 0
	for n := len(path); n > 0; n-- {
		if k, ok := d.nodes[path[:n].key()]; ok {
			node, start = k, n
			break
		}
	}
	for j := start; j < len(path); j++ {
		child, err := node.Derive(path[j])
		if err != nil {
			return nil, err
		}
		d.nodes[path[:j+1].key()] = child
		node = child
	}
	return node, nil
}

func (d *deriver) privKey(path Path) (*btcec.PrivateKey, error) {
	n, err := d.node(path)
	if err != nil {
		return nil, err
	}
	return n.ECPrivKey()
}

func (d *deriver) zero() {
	for k, n := range d.nodes {
		n.Zero()
		delete(d.nodes, k)
	}
}

// changeKey derives the public key at a change path (account/1/i) from a cached extended public
// key of account/1. Building the cache derives the account's private node once and zeroes it;
// only the extended public key is kept.
func (s *Signer) changeKey(path Path) (*btcec.PublicKey, error) {
	chain := path[:4]
	s.changeMu.Lock()
	xpub, ok := s.changeNodes[chain.key()]
	if !ok {
		d := &deriver{master: s.master}
		node, err := d.node(chain)
		if err == nil {
			xpub, err = neuterCopy(node)
		}
		d.zero()
		if err != nil {
			s.changeMu.Unlock()
			return nil, err
		}
		s.changeNodes[chain.key()] = xpub
	}
	s.changeMu.Unlock()
	child, err := xpub.Derive(path[4])
	if err != nil {
		return nil, err
	}
	return child.ECPubKey()
}

// neuterCopy returns the extended public key of k sharing no memory with k (hdkeychain's Neuter
// shares the chain code, which zeroing k would wipe).
func neuterCopy(k *hdkeychain.ExtendedKey) (*hdkeychain.ExtendedKey, error) {
	n, err := k.Neuter()
	if err != nil {
		return nil, err
	}
	pub, err := n.ECPubKey()
	if err != nil {
		return nil, err
	}
	var fp [4]byte
	binary.BigEndian.PutUint32(fp[:], n.ParentFingerprint())
	return hdkeychain.NewExtendedKey(bytes.Clone(n.Version()), pub.SerializeCompressed(),
		bytes.Clone(n.ChainCode()), fp[:], n.Depth(), n.ChildIndex(), false), nil
}
