package sign

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// ScriptType is the kind of output an input spends or an output pays to.
type ScriptType string

// Script types.
const (
	P2PKH     ScriptType = "p2pkh"
	P2SH      ScriptType = "p2sh" // legacy P2SH (multisig)
	P2WPKH    ScriptType = "p2wpkh"
	P2SHP2WPK ScriptType = "p2sh-p2wpkh"
	P2WSH     ScriptType = "p2wsh"
	P2SHP2WSH ScriptType = "p2sh-p2wsh"
	P2TR      ScriptType = "p2tr"
	Unknown   ScriptType = "unknown"
)

func (t ScriptType) segwitV0() bool {
	return t == P2WPKH || t == P2SHP2WPK || t == P2WSH || t == P2SHP2WSH
}

// InputSummary describes one input for the review screen.
type InputSummary struct {
	Index     int
	OutPoint  wire.OutPoint
	Amount    int64 // satoshis
	Type      ScriptType
	Address   string // of the output being spent, when it has one
	Ours      bool   // has a key under this wallet's master fingerprint
	Paths     []string
	SigHash   txscript.SigHashType
	Finalized bool
}

// OutputSummary describes one output for the review screen.
type OutputSummary struct {
	Index   int
	Amount  int64 // satoshis
	Script  []byte
	Address string // empty for scripts without an address (OP_RETURN, bare multisig)
	// Change is true only for outputs proven to pay this wallet's change (see the package doc).
	Change bool
	Path   string // the change derivation path, when Change
	// Note explains why an output that claims to be ours is not counted as change.
	Note string
}

// Summary is what would be signed, with the numbers the policy judges.
type Summary struct {
	TxID    chainhash.Hash // of the unsigned transaction
	Inputs  []InputSummary
	Outputs []OutputSummary

	TotalIn  int64 // all inputs
	OurIn    int64 // inputs with a key of ours
	TotalOut int64
	Change   int64 // outputs proven ours
	Sent     int64 // every other output
	Fee      int64

	VSize      int64   // estimated virtual size of the signed transaction (vbytes)
	FeeRate    float64 // sat/vB, Fee / VSize
	FeePercent float64 // Fee as a percentage of Sent (0 when nothing is sent)

	// Spend is what this transaction takes out of the wallet (OurIn - Change, at least 0): the
	// amount the daily limit counts.
	Spend int64
	// SpentLast24h is what the history holds for the last 24 h (this transaction excluded).
	SpentLast24h int64
	// Violations are the policy rules this transaction breaks; Sign refuses it when non-empty.
	Violations []Violation
}

// keyPlan is one key of ours that signs an input.
type keyPlan struct {
	path   Path
	pubKey []byte // 33-byte compressed, or 32-byte x-only for taproot
}

// inputPlan is what the analysis found out about an input: everything needed to sign it
// except the private key.
type inputPlan struct {
	index      int
	utxo       *wire.TxOut
	typ        ScriptType
	subScript  []byte // script code signed over (legacy/v0)
	hashType   txscript.SigHashType
	keys       []keyPlan
	merkleRoot []byte // taproot; nil for BIP86
	finalized  bool
	ours       bool
	// addWitnessUtxo: segwit input with only NON_WITNESS_UTXO; the signer adds the witness
	// UTXO (taken from the verified previous transaction) so the finalizer treats it as segwit.
	addWitnessUtxo bool
	multisigM      int // for the size estimate
}

type analysis struct {
	inputs  []inputPlan
	summary *Summary
}

// analyze checks the PSBT and works out what to sign, deriving no private key (change outputs
// are checked against cached account public keys).
func (s *Signer) analyze(p *psbt.Packet, opts *SignOptions) (*analysis, error) {
	tx := p.UnsignedTx
	sum := &Summary{TxID: tx.TxHash()}
	a := &analysis{summary: sum, inputs: make([]inputPlan, len(tx.TxIn))}

	seen := make(map[wire.OutPoint]int, len(tx.TxIn))
	for i, txIn := range tx.TxIn {
		if j, dup := seen[txIn.PreviousOutPoint]; dup {
			return nil, inputErr(i, ErrDuplicateInput, "input %d", j)
		}
		seen[txIn.PreviousOutPoint] = i
		plan, err := s.analyzeInput(p, i, opts)
		if err != nil {
			return nil, err
		}
		a.inputs[i] = *plan
		if sum.TotalIn, err = addAmount(sum.TotalIn, plan.utxo.Value); err != nil {
			return nil, inputErr(i, err, "")
		}
		if plan.ours {
			sum.OurIn += plan.utxo.Value
		}
		in := InputSummary{
			Index:     i,
			OutPoint:  txIn.PreviousOutPoint,
			Amount:    plan.utxo.Value,
			Type:      plan.typ,
			Address:   s.address(plan.utxo.PkScript),
			Ours:      plan.ours,
			SigHash:   plan.hashType,
			Finalized: plan.finalized,
		}
		for _, k := range plan.keys {
			in.Paths = append(in.Paths, k.path.String())
		}
		sum.Inputs = append(sum.Inputs, in)
	}

	for j, out := range tx.TxOut {
		var err error
		if sum.TotalOut, err = addAmount(sum.TotalOut, out.Value); err != nil {
			return nil, fmt.Errorf("output %d: %w", j, err)
		}
		o := OutputSummary{Index: j, Amount: out.Value, Script: out.PkScript, Address: s.address(out.PkScript)}
		o.Change, o.Path, o.Note = s.isChange(&p.Outputs[j], out.PkScript)
		if o.Change {
			sum.Change += out.Value
		} else {
			sum.Sent += out.Value
		}
		sum.Outputs = append(sum.Outputs, o)
	}

	sum.Fee = sum.TotalIn - sum.TotalOut
	if sum.Fee < 0 {
		return nil, fmt.Errorf("%w (inputs %d sats, outputs %d sats)", ErrFeeNegative, sum.TotalIn, sum.TotalOut)
	}
	sum.Spend = max(sum.OurIn-sum.Change, 0)
	sum.VSize = estimateVSize(p, a.inputs)
	sum.FeeRate = float64(sum.Fee) / float64(sum.VSize)
	if sum.Sent > 0 {
		sum.FeePercent = float64(sum.Fee) * 100 / float64(sum.Sent)
	}
	return a, nil
}

func addAmount(total, v int64) (int64, error) {
	if v < 0 || v > btcutil.MaxSatoshi {
		return 0, fmt.Errorf("amount %d sats is out of range", v)
	}
	total += v
	if total > btcutil.MaxSatoshi {
		return 0, fmt.Errorf("total amount exceeds 21 million BTC")
	}
	return total, nil
}

func (s *Signer) address(pkScript []byte) string {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(pkScript, s.net)
	if err != nil || len(addrs) != 1 {
		return ""
	}
	return addrs[0].EncodeAddress()
}

// analyzeInput resolves the UTXO of input i, classifies it and, for inputs of ours, finds the
// keys to sign with and checks them against the script (public data only).
func (s *Signer) analyzeInput(p *psbt.Packet, i int, opts *SignOptions) (*inputPlan, error) {
	txIn := p.UnsignedTx.TxIn[i]
	pin := &p.Inputs[i]
	plan := &inputPlan{index: i}

	// The UTXO: the full previous transaction proves the amount; the witness UTXO alone is
	// enough for segwit (whose signatures commit to the amount).
	switch {
	case pin.NonWitnessUtxo != nil:
		prev := pin.NonWitnessUtxo
		if prev.TxHash() != txIn.PreviousOutPoint.Hash {
			return nil, inputErr(i, ErrPrevTxMismatch, "NON_WITNESS_UTXO has txid %s, the input spends %s",
				prev.TxHash(), txIn.PreviousOutPoint.Hash)
		}
		idx := txIn.PreviousOutPoint.Index
		if int64(idx) >= int64(len(prev.TxOut)) {
			return nil, inputErr(i, ErrPrevTxMismatch, "previous transaction has no output %d", idx)
		}
		plan.utxo = prev.TxOut[idx]
		if w := pin.WitnessUtxo; w != nil && !psbt.TxOutsEqual(w, plan.utxo) {
			return nil, inputErr(i, ErrPrevTxMismatch, "WITNESS_UTXO disagrees with NON_WITNESS_UTXO")
		}
	case pin.WitnessUtxo != nil:
		plan.utxo = pin.WitnessUtxo
	default:
		return nil, inputErr(i, ErrMissingUTXO, "")
	}
	if plan.utxo.Value < 0 || plan.utxo.Value > btcutil.MaxSatoshi {
		return nil, inputErr(i, ErrMissingUTXO, "amount %d sats is out of range", plan.utxo.Value)
	}
	plan.finalized = len(pin.FinalScriptSig) > 0 || len(pin.FinalScriptWitness) > 0
	for _, d := range pin.Bip32Derivation {
		plan.ours = plan.ours || d.MasterKeyFingerprint == s.fp
	}
	for _, d := range pin.TaprootBip32Derivation {
		plan.ours = plan.ours || d.MasterKeyFingerprint == s.fp
	}

	if err := s.classifyInput(p, plan); err != nil {
		return nil, err
	}
	legacy := plan.typ == P2PKH || plan.typ == P2SH ||
		(plan.typ == Unknown && !txscript.IsWitnessProgram(plan.utxo.PkScript) && !txscript.IsPayToScriptHash(plan.utxo.PkScript))
	if legacy && pin.NonWitnessUtxo == nil {
		return nil, inputErr(i, ErrLegacyNoPrevTx, "")
	}
	if plan.finalized {
		plan.ours = false // nothing left to sign; counted as someone else's
		return plan, nil
	}
	if !plan.ours {
		if opts.AllowForeignInputs {
			return plan, nil
		}
		return nil, inputErr(i, ErrNotOurs, "no derivation under master fingerprint %s", s.FingerprintHex())
	}
	if s.policy.RequireNonWitnessUTXO && plan.typ.segwitV0() && pin.NonWitnessUtxo == nil {
		return nil, inputErr(i, ErrNeedPrevTx, "")
	}
	if plan.typ != P2TR && plan.typ.segwitV0() && pin.WitnessUtxo == nil {
		plan.addWitnessUtxo = true
	}
	if err := s.checkSighash(p, plan, pin.SighashType); err != nil {
		return nil, err
	}
	if plan.typ == P2TR {
		return plan, s.planTaproot(pin, plan, opts)
	}
	return plan, s.planECDSA(pin, plan, opts)
}

// classifyInput works out the script type and the script code, checking that redeem and witness
// scripts hash to what the output commits to.
func (s *Signer) classifyInput(p *psbt.Packet, plan *inputPlan) error {
	pin := &p.Inputs[plan.index]
	pk := plan.utxo.PkScript
	i := plan.index
	checkWitnessScript := func(program []byte) error {
		if pin.WitnessScript == nil {
			if plan.ours && !plan.finalized {
				return inputErr(i, ErrScriptMismatch, "P2WSH input without WITNESS_SCRIPT")
			}
			return nil
		}
		h := sha256.Sum256(pin.WitnessScript)
		if !bytes.Equal(program, h[:]) {
			return inputErr(i, ErrScriptMismatch, "WITNESS_SCRIPT does not hash to the witness program")
		}
		plan.subScript = pin.WitnessScript
		return nil
	}
	switch {
	case txscript.IsPayToTaproot(pk):
		plan.typ = P2TR
	case txscript.IsPayToWitnessPubKeyHash(pk):
		plan.typ, plan.subScript = P2WPKH, pk
	case txscript.IsPayToWitnessScriptHash(pk):
		plan.typ = P2WSH
		return checkWitnessScript(pk[2:])
	case txscript.IsPayToScriptHash(pk):
		if pin.RedeemScript == nil {
			plan.typ = Unknown
			if plan.ours && !plan.finalized {
				return inputErr(i, ErrScriptMismatch, "P2SH input without REDEEM_SCRIPT")
			}
			return nil
		}
		if !bytes.Equal(btcutil.Hash160(pin.RedeemScript), pk[2:22]) {
			return inputErr(i, ErrScriptMismatch, "REDEEM_SCRIPT does not hash to the P2SH script")
		}
		switch rs := pin.RedeemScript; {
		case txscript.IsPayToWitnessPubKeyHash(rs):
			plan.typ, plan.subScript = P2SHP2WPK, rs
		case txscript.IsPayToWitnessScriptHash(rs):
			plan.typ = P2SHP2WSH
			return checkWitnessScript(rs[2:])
		case txscript.IsWitnessProgram(rs):
			plan.typ = Unknown
		default:
			plan.typ, plan.subScript = P2SH, rs
		}
	case txscript.IsPayToPubKeyHash(pk):
		plan.typ, plan.subScript = P2PKH, pk
	default:
		plan.typ = Unknown
	}
	return nil
}

func validSighash(t txscript.SigHashType, taproot bool) bool {
	if taproot && t == txscript.SigHashDefault {
		return true
	}
	switch t &^ txscript.SigHashAnyOneCanPay {
	case txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle:
		return true
	}
	return false
}

func (s *Signer) checkSighash(p *psbt.Packet, plan *inputPlan, t txscript.SigHashType) error {
	taproot := plan.typ == P2TR
	if t == 0 && !taproot {
		t = txscript.SigHashAll // absent PSBT_IN_SIGHASH_TYPE
	}
	plan.hashType = t
	if !validSighash(t, taproot) {
		return inputErr(plan.index, ErrSighash, "0x%x is not a valid sighash type", uint32(t))
	}
	if t != txscript.SigHashAll && !(taproot && t == txscript.SigHashDefault) && !s.policy.sighashAllowed(t) {
		return inputErr(plan.index, ErrSighash, "%s is not allowed by the policy (only ALL)", sighashName(t))
	}
	if t&^txscript.SigHashAnyOneCanPay == txscript.SigHashSingle && plan.index >= len(p.UnsignedTx.TxOut) {
		return inputErr(plan.index, ErrSighash, "SIGHASH_SINGLE without a matching output")
	}
	return nil
}

func sighashName(t txscript.SigHashType) string {
	var n string
	switch t &^ txscript.SigHashAnyOneCanPay {
	case txscript.SigHashDefault:
		n = "SIGHASH_DEFAULT"
	case txscript.SigHashAll:
		n = "SIGHASH_ALL"
	case txscript.SigHashNone:
		n = "SIGHASH_NONE"
	case txscript.SigHashSingle:
		n = "SIGHASH_SINGLE"
	default:
		return fmt.Sprintf("sighash 0x%x", uint32(t))
	}
	if t&txscript.SigHashAnyOneCanPay != 0 {
		n += "|ANYONECANPAY"
	}
	return n
}

func (s *Signer) checkPath(i int, path []uint32) error {
	if len(path) > maxPathLen {
		return inputErr(i, ErrUnsupported, "derivation path of %d levels", len(path))
	}
	return nil
}

// planECDSA collects our keys for a legacy or segwit v0 input and checks that each is in the
// script being spent.
func (s *Signer) planECDSA(pin *psbt.PInput, plan *inputPlan, opts *SignOptions) error {
	i := plan.index
	var multisigKeys [][]byte
	switch plan.typ {
	case P2PKH, P2WPKH, P2SHP2WPK:
	case P2SH, P2WSH, P2SHP2WSH:
		if ok, err := txscript.IsMultisigScript(plan.subScript); !ok || err != nil {
			return inputErr(i, ErrUnsupported, "%s script is not a multisig script", plan.typ)
		}
		_, m, err := txscript.CalcMultiSigStats(plan.subScript)
		if err != nil {
			return inputErr(i, ErrUnsupported, "%v", err)
		}
		plan.multisigM = m
		multisigKeys, err = txscript.PushedData(plan.subScript)
		if err != nil {
			return inputErr(i, ErrUnsupported, "%v", err)
		}
	default:
		return inputErr(i, ErrUnsupported, "%s output script %x", plan.typ, plan.utxo.PkScript)
	}
	for _, d := range pin.Bip32Derivation {
		if d.MasterKeyFingerprint != s.fp {
			continue
		}
		if err := s.checkPath(i, d.Bip32Path); err != nil {
			return err
		}
		if len(d.PubKey) != btcec.PubKeyBytesLenCompressed {
			return inputErr(i, ErrUnsupported, "uncompressed key %x", d.PubKey)
		}
		if multisigKeys == nil {
			// Single-key script: the key must be the one the output pays to.
			if !bytes.Equal(btcutil.Hash160(d.PubKey), singleKeyHash(plan)) {
				return inputErr(i, ErrScriptMismatch, "key %x at %v is not the key of this output", d.PubKey, Path(d.Bip32Path))
			}
		} else if !containsKey(multisigKeys, d.PubKey) {
			return inputErr(i, ErrScriptMismatch, "key %x at %v is not in the multisig script", d.PubKey, Path(d.Bip32Path))
		}
		if opts.KeyFilter != nil && !opts.KeyFilter(Path(d.Bip32Path)) {
			continue
		}
		if hasPartialSig(pin, d.PubKey) {
			continue // already signed by this key
		}
		plan.keys = append(plan.keys, keyPlan{path: Path(d.Bip32Path), pubKey: d.PubKey})
	}
	return nil
}

// singleKeyHash returns the key hash a P2PKH / P2WPKH / P2SH-P2WPKH input pays to.
func singleKeyHash(plan *inputPlan) []byte {
	switch plan.typ {
	case P2PKH:
		return plan.subScript[3:23]
	default: // P2WPKH, P2SH-P2WPKH: subScript is the v0 key-hash program
		return plan.subScript[2:22]
	}
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

func hasPartialSig(pin *psbt.PInput, pub []byte) bool {
	for _, ps := range pin.PartialSigs {
		if bytes.Equal(ps.PubKey, pub) {
			return true
		}
	}
	return false
}

// planTaproot finds our key-path key and checks that the output key is that key tweaked with
// the PSBT's merkle root (none: BIP86).
func (s *Signer) planTaproot(pin *psbt.PInput, plan *inputPlan, opts *SignOptions) error {
	i := plan.index
	switch len(pin.TaprootMerkleRoot) {
	case 0:
	case 32:
		plan.merkleRoot = pin.TaprootMerkleRoot
	default:
		return inputErr(i, ErrScriptMismatch, "TAP_MERKLE_ROOT is %d bytes", len(pin.TaprootMerkleRoot))
	}
	var found *psbt.TaprootBip32Derivation
	scriptPathOnly := false
	for _, d := range pin.TaprootBip32Derivation {
		if d.MasterKeyFingerprint != s.fp {
			continue
		}
		isInternal := len(d.LeafHashes) == 0
		if len(pin.TaprootInternalKey) != 0 {
			isInternal = bytes.Equal(d.XOnlyPubKey, pin.TaprootInternalKey)
		}
		if !isInternal {
			if len(d.LeafHashes) > 0 {
				scriptPathOnly = true // a key of ours in a script leaf
				continue
			}
			return inputErr(i, ErrScriptMismatch, "our key %x is not the taproot internal key", d.XOnlyPubKey)
		}
		if found != nil {
			return inputErr(i, ErrScriptMismatch, "two key-path derivations of ours")
		}
		found = d
	}
	if found == nil {
		if scriptPathOnly {
			return inputErr(i, ErrUnsupported, "taproot script-path spending")
		}
		return inputErr(i, ErrNotOurs, "no taproot key derivation under master fingerprint %s", s.FingerprintHex())
	}
	if err := s.checkPath(i, found.Bip32Path); err != nil {
		return err
	}
	internal, err := schnorr.ParsePubKey(found.XOnlyPubKey)
	if err != nil {
		return inputErr(i, ErrScriptMismatch, "bad internal key: %v", err)
	}
	outKey := txscript.ComputeTaprootOutputKey(internal, plan.merkleRoot)
	if !bytes.Equal(schnorr.SerializePubKey(outKey), plan.utxo.PkScript[2:34]) {
		what := "BIP86, no script tree"
		if plan.merkleRoot != nil {
			what = "the PSBT's merkle root"
		}
		return inputErr(i, ErrScriptMismatch, "the output key is not our key %x tweaked with %s", found.XOnlyPubKey, what)
	}
	if opts.KeyFilter != nil && !opts.KeyFilter(Path(found.Bip32Path)) {
		return nil
	}
	if len(pin.TaprootKeySpendSig) != 0 {
		return nil // already signed
	}
	plan.keys = []keyPlan{{path: Path(found.Bip32Path), pubKey: found.XOnlyPubKey}}
	return nil
}

// Purposes whose internal chain may hold change, with the script each pays to.
const (
	purposeBIP44 = 44 + Hardened
	purposeBIP49 = 49 + Hardened
	purposeBIP84 = 84 + Hardened
	purposeBIP86 = 86 + Hardened
)

// isChange decides whether an output provably pays this wallet's change: a derivation under
// our fingerprint on an allowed change path (account/1/i) whose key, derived here, gives the
// output's script.
func (s *Signer) isChange(pout *psbt.POutput, pkScript []byte) (bool, string, string) {
	note := ""
	type claim struct {
		path   Path
		pubKey []byte
		xonly  bool
	}
	var claims []claim
	for _, d := range pout.Bip32Derivation {
		if d.MasterKeyFingerprint == s.fp {
			claims = append(claims, claim{Path(d.Bip32Path), d.PubKey, false})
		}
	}
	for _, d := range pout.TaprootBip32Derivation {
		if d.MasterKeyFingerprint == s.fp && len(d.LeafHashes) == 0 {
			claims = append(claims, claim{Path(d.Bip32Path), d.XOnlyPubKey, true})
		}
	}
	for _, c := range claims {
		if !s.changePathAllowed(c.path) {
			note = fmt.Sprintf("%v is not a change path of this wallet", c.path)
			continue
		}
		pub, err := s.changeKey(c.path)
		if err != nil {
			note = fmt.Sprintf("cannot derive %v: %v", c.path, err)
			continue
		}
		var want []byte
		if c.xonly {
			want = schnorr.SerializePubKey(pub)
		} else {
			want = pub.SerializeCompressed()
		}
		if !bytes.Equal(want, c.pubKey) {
			note = fmt.Sprintf("the key at %v is not this wallet's", c.path)
			continue
		}
		script, err := changeScript(c.path[0], pub, c.xonly)
		if err != nil || !bytes.Equal(script, pkScript) {
			note = fmt.Sprintf("the script is not the %v key's standard script", c.path)
			continue
		}
		return true, c.path.String(), ""
	}
	return false, "", note
}

func (s *Signer) changePathAllowed(p Path) bool {
	if len(p) != 5 || p[3] != 1 || p[4] >= s.policy.changeIndexLimit() {
		return false
	}
	if len(s.policy.ChangeAccounts) > 0 {
		for _, a := range s.policy.ChangeAccounts {
			if p.HasPrefix(a) {
				return true
			}
		}
		return false
	}
	switch p[0] {
	case purposeBIP44, purposeBIP49, purposeBIP84, purposeBIP86:
	default:
		return false
	}
	return p[1] == s.net.HDCoinType+Hardened && p[2] >= Hardened
}

// changeScript is the standard script of key for a purpose.
func changeScript(purpose uint32, key *btcec.PublicKey, xonly bool) ([]byte, error) {
	if xonly != (purpose == purposeBIP86) {
		return nil, fmt.Errorf("key kind does not fit purpose")
	}
	h := btcutil.Hash160(key.SerializeCompressed())
	switch purpose {
	case purposeBIP44:
		return txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
			AddData(h).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	case purposeBIP49:
		redeem, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
		if err != nil {
			return nil, err
		}
		return txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).
			AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
	case purposeBIP84:
		return txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
	case purposeBIP86:
		return txscript.PayToTaprootScript(txscript.ComputeTaprootKeyNoScript(key))
	}
	return nil, fmt.Errorf("purpose %d has no change script", purpose)
}

// Size estimate. ECDSA signatures are counted at 72 bytes with the sighash byte (the low-S
// maximum), so the size is an upper bound for our inputs and the fee rate a lower bound by at
// most a byte per signature.
const (
	ecdsaSigLen   = 72
	schnorrSigLen = 64
	pubKeyLen     = 33
)

func estimateVSize(p *psbt.Packet, plans []inputPlan) int64 {
	tx := p.UnsignedTx
	base := int64(tx.SerializeSizeStripped())
	var wit int64
	segwit := false
	for i := range plans {
		sigScript, witness, isWit := inputSize(p, &plans[i])
		if sigScript > 0 {
			base += sigScript + int64(wire.VarIntSerializeSize(uint64(sigScript))) - 1
		}
		if isWit {
			segwit = true
			wit += witness
		} else {
			wit++ // empty witness: one byte item count, only paid when the tx is segwit
		}
	}
	weight := base * 4
	if segwit {
		weight += 2 + wit // marker, flag and witnesses
	}
	return (weight + 3) / 4
}

func pushLen(n int64) int64 {
	switch {
	case n < txscript.OP_PUSHDATA1:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	default:
		return 3 + n
	}
}

func varBytes(n int64) int64 { return int64(wire.VarIntSerializeSize(uint64(n))) + n }

// inputSize returns the estimated scriptSig length and witness size of an input.
func inputSize(p *psbt.Packet, plan *inputPlan) (sigScript, witness int64, isWitness bool) {
	pin := &p.Inputs[plan.index]
	if plan.finalized {
		sigScript = int64(len(pin.FinalScriptSig))
		if len(pin.FinalScriptWitness) > 0 {
			return sigScript, int64(len(pin.FinalScriptWitness)), true
		}
		return sigScript, 0, false
	}
	m := int64(plan.multisigM)
	if m == 0 && plan.subScript != nil {
		if ok, _ := txscript.IsMultisigScript(plan.subScript); ok {
			if _, mm, err := txscript.CalcMultiSigStats(plan.subScript); err == nil {
				m = int64(mm)
			}
		}
	}
	p2wpkhWitness := int64(1) + varBytes(ecdsaSigLen) + varBytes(pubKeyLen)
	msWitness := func() int64 {
		return int64(wire.VarIntSerializeSize(uint64(m+2))) + 1 + m*varBytes(ecdsaSigLen) + varBytes(int64(len(plan.subScript)))
	}
	switch plan.typ {
	case P2PKH:
		return pushLen(ecdsaSigLen) + pushLen(pubKeyLen), 0, false
	case P2SH:
		return 1 + m*pushLen(ecdsaSigLen) + pushLen(int64(len(plan.subScript))), 0, false
	case P2WPKH:
		return 0, p2wpkhWitness, true
	case P2SHP2WPK:
		return pushLen(22), p2wpkhWitness, true
	case P2WSH:
		return 0, msWitness(), true
	case P2SHP2WSH:
		return pushLen(34), msWitness(), true
	case P2TR:
		sig := int64(schnorrSigLen)
		if plan.hashType != txscript.SigHashDefault {
			sig++
		}
		return 0, 1 + varBytes(sig), true
	}
	// Someone else's input of a kind we cannot see into: guess a single-key spend.
	if txscript.IsWitnessProgram(plan.utxo.PkScript) || txscript.IsPayToScriptHash(plan.utxo.PkScript) {
		return 0, p2wpkhWitness, true
	}
	return pushLen(ecdsaSigLen) + pushLen(pubKeyLen), 0, false
}
