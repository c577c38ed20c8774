package wallet

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet/txsize"
)

// Sequence numbers.
const (
	// SequenceRBF signals replaceability (BIP125) and enables nLockTime.
	SequenceRBF uint32 = wire.MaxTxInSequenceNum - 2
	// txVersion is 2, which BIP68 relative locks need.
	txVersion = 2
	// longTermFeeRate is Core's -consolidatefeerate (10 sat/vB), for the waste metric.
	longTermFeeRate txsize.FeeRate = 10_000
)

// spendCoin is a wallet output that a transaction spends, with what building it needs.
type spendCoin struct {
	Output
	op     wire.OutPoint
	pk     []byte
	d      *derived
	weight int  // worst-case weight of the input spending it
	segwit bool // spent with a witness
}

// coinOf resolves a stored output to a spendable coin; ok is false for a script the
// keyring does not know (an output of a descriptor no longer configured).
func (w *Wallet) coinOf(o Output) (spendCoin, bool) {
	op, err := parseOutPoint(o.OutPoint)
	if err != nil {
		return spendCoin{}, false
	}
	pk, err := hex.DecodeString(o.PkScript)
	if err != nil {
		return spendCoin{}, false
	}
	d, ok := w.keys.lookup(pk)
	if !ok {
		return spendCoin{}, false
	}
	weight, segwit := inputWeight(d.acct)
	return spendCoin{Output: o, op: op, pk: pk, d: d, weight: weight, segwit: segwit}, true
}

func parseOutPoint(s string) (wire.OutPoint, error) {
	op, err := wire.NewOutPointFromString(s)
	if err != nil {
		return wire.OutPoint{}, fmt.Errorf("outpoint %q: %w", s, err)
	}
	return *op, nil
}

// inputWeight is the worst-case weight of an input of the account (signatures of maximal
// size), and whether it has a witness.
func inputWeight(a *account) (int, bool) {
	var t txsize.ScriptType
	switch a.desc.Type {
	case keys.ScriptPKH:
		t = txsize.P2PKH
	case keys.ScriptSHWPKH:
		t = txsize.P2SHP2WPKH
	case keys.ScriptWPKH:
		t = txsize.P2WPKH
	case keys.ScriptTR:
		t = txsize.P2TR
	case keys.ScriptWSHSortedMulti:
		n, k := len(a.desc.Keys), a.desc.Threshold
		script := 1 + n*34 + 1 + 1 // OP_k <33>… OP_n OP_CHECKMULTISIG
		// The empty element for CHECKMULTISIG's extra pop, k signatures, the script.
		wit := txsize.VarIntSize(uint64(k+2)) + 1 + k*(1+72) + txsize.VarIntSize(uint64(script)) + script
		return (32+4+1+4)*txsize.WitnessScaleFactor + wit, true
	}
	w, segwit, err := txsize.InputWeight(t)
	if err != nil {
		return 0, false // unreachable: every descriptor type is mapped above
	}
	return w, segwit
}

// estimateWeight is the worst-case weight of a transaction spending ins and paying outs.
func estimateWeight(ins []spendCoin, outs []*wire.TxOut) int {
	w := (8 + txsize.VarIntSize(uint64(len(ins))) + txsize.VarIntSize(uint64(len(outs)))) * txsize.WitnessScaleFactor
	segwit, legacy := false, 0
	for _, c := range ins {
		w += c.weight
		if c.segwit {
			segwit = true
		} else {
			legacy++
		}
	}
	for _, o := range outs {
		w += txsize.OutputSizeScript(len(o.PkScript)) * txsize.WitnessScaleFactor
	}
	if segwit {
		w += 2 + legacy
	}
	return w
}

func vsizeOfWeight(weight int) int64 { return int64(txsize.VSize(weight)) }

// txVSize is the virtual size of a signed transaction.
func txVSize(tx *wire.MsgTx) int64 {
	weight := blockchain.GetTransactionWeight(btcutil.NewTx(tx))
	return (weight + blockchain.WitnessScaleFactor - 1) / blockchain.WitnessScaleFactor
}

// spendable lists the coins a new transaction may spend: unspent outputs (no transaction,
// not even an unconfirmed one, spends them) that are confirmed, or unconfirmed change of
// the wallet's own transactions (all inputs ours, as Bitcoin Core trusts them), with
// mature coinbases only. With confirmedOnly, unconfirmed ones are left out.
func (w *Wallet) spendable(confirmedOnly bool) ([]spendCoin, error) {
	outs, err := w.store.Outputs(true)
	if err != nil {
		return nil, err
	}
	tip, _, err := w.store.Tip()
	if err != nil {
		return nil, err
	}
	trusted := map[string]bool{}
	var coins []spendCoin
	for _, o := range outs {
		txid := o.OutPoint[:64]
		if o.Height == 0 {
			if confirmedOnly {
				continue
			}
			ok, seen := trusted[txid]
			if !seen {
				ok, err = w.ownUnconfirmed(txid)
				if err != nil {
					return nil, err
				}
				trusted[txid] = ok
			}
			if !ok {
				continue
			}
		}
		if o.Coinbase && (o.Height == 0 || tip.Height+1-o.Height < int32(w.params.CoinbaseMaturity)) {
			continue
		}
		c, ok := w.coinOf(o)
		if !ok {
			continue
		}
		coins = append(coins, c)
	}
	return coins, nil
}

// ownUnconfirmed reports whether an unconfirmed transaction spends only the wallet's coins
// and was not replaced.
func (w *Wallet) ownUnconfirmed(txid string) (bool, error) {
	e, ok, err := w.store.Entry(txid)
	if err != nil || !ok || e.ReplacedBy != "" || e.Sent == 0 {
		return false, err
	}
	tx, ok, err := w.store.Tx(txid)
	if err != nil || !ok {
		return false, err
	}
	_, all, err := w.txFee(tx)
	return all, err
}

// txFee is the fee of tx when all its inputs are the wallet's (all is false otherwise).
func (w *Wallet) txFee(tx *wire.MsgTx) (fee int64, all bool, err error) {
	for _, in := range tx.TxIn {
		o, ok, err := w.store.Output(in.PreviousOutPoint.String())
		if err != nil {
			return 0, false, err
		}
		if !ok {
			return 0, false, nil
		}
		fee += o.Value
	}
	for _, out := range tx.TxOut {
		fee -= out.Value
	}
	return fee, true, nil
}

// signalsRBF reports whether tx opts in to replacement (BIP125).
func signalsRBF(tx *wire.MsgTx) bool {
	for _, in := range tx.TxIn {
		if in.Sequence < wire.MaxTxInSequenceNum-1 {
			return true
		}
	}
	return false
}

// otherNetworks are tried to tell a wrong-network address from an invalid one.
var otherNetworks = []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params,
	&chaincfg.RegressionNetParams, &chaincfg.SigNetParams, &chaincfg.SimNetParams}

// payScript decodes an address of the wallet's network into its output script.
func (w *Wallet) payScript(address string) ([]byte, error) {
	address = strings.TrimSpace(address)
	a, err := btcutil.DecodeAddress(address, w.params)
	if err == nil && !a.IsForNet(w.params) {
		return nil, fmt.Errorf("%w: %s is not a %s address", ErrWrongNetwork, address, w.params.Name)
	}
	if err != nil {
		for _, p := range otherNetworks {
			if p.Net == w.params.Net {
				continue
			}
			if o, err2 := btcutil.DecodeAddress(address, p); err2 == nil && o.IsForNet(p) {
				return nil, fmt.Errorf("%w: %q is a %s address, the wallet is on %s", ErrWrongNetwork, address, p.Name, w.params.Name)
			}
		}
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, address, err)
	}
	pk, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, address, err)
	}
	return pk, nil
}

// scriptAddress is the address of an output script, or its hex when it has none.
func (w *Wallet) scriptAddress(pk []byte) string {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(pk, w.params)
	if err != nil || len(addrs) != 1 {
		return hex.EncodeToString(pk)
	}
	return addrs[0].EncodeAddress()
}

// antiFeeSniping is Bitcoin Core's nLockTime for a new transaction: the current height,
// or with a chance of one in ten up to 100 blocks less, so that transactions with a
// delayed locktime are not told apart.
func antiFeeSniping(height int32) uint32 {
	if mrand.IntN(10) == 0 {
		height -= mrand.Int32N(100)
	}
	return uint32(max(height, 0))
}

// draft is a transaction being built.
type draft struct {
	kind     string
	lockTime uint32
	ins      []spendCoin
	seqs     []uint32 // per input
	outs     []*wire.TxOut
	change   map[*wire.TxOut]bool
	shuffle  bool // randomise the order of inputs and outputs
	// For the proposal.
	algorithm, replaces, parent string
	packageRate                 chain.FeeRate
}

// finish turns a draft into a PSBT and a stored proposal.
func (w *Wallet) finish(d *draft) (*Proposal, error) {
	order := make([]int, len(d.ins))
	for i := range order {
		order[i] = i
	}
	outs := append([]*wire.TxOut(nil), d.outs...)
	if d.shuffle {
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		mrand.Shuffle(len(outs), func(i, j int) { outs[i], outs[j] = outs[j], outs[i] })
	}
	tx := wire.NewMsgTx(txVersion)
	tx.LockTime = d.lockTime
	ins := make([]spendCoin, len(order))
	for k, i := range order {
		ins[k] = d.ins[i]
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: d.ins[i].op, Sequence: d.seqs[i]})
	}
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	if err := blockchain.CheckTransactionSanity(btcutil.NewTx(tx)); err != nil {
		return nil, fmt.Errorf("built transaction is not sane: %w", err)
	}
	packet, err := w.packet(tx, ins)
	if err != nil {
		return nil, err
	}
	p := &Proposal{
		Kind: d.kind, PSBT: nil, LockTime: tx.LockTime, Replaces: d.replaces, Parent: d.parent,
		PackageFeeRate: d.packageRate, Algorithm: d.algorithm,
	}
	var in, out int64
	for _, c := range ins {
		in += c.Value
		p.Inputs = append(p.Inputs, ProposalInput{OutPoint: c.OutPoint, Amount: c.Value, Address: c.d.addr.Address})
	}
	for _, o := range outs {
		out += o.Value
		ch := d.change[o]
		p.Outputs = append(p.Outputs, ProposalOutput{Address: w.scriptAddress(o.PkScript), Amount: o.Value, Change: ch})
		if ch {
			p.Change += o.Value
		} else {
			p.Sent += o.Value
		}
	}
	p.Fee = in - out
	p.VSize = vsizeOfWeight(estimateWeight(ins, outs))
	p.FeeRate = feeRateOf(p.Fee, p.VSize)
	var buf bytes.Buffer
	if err := packet.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("serialize psbt: %w", err)
	}
	p.PSBT = buf.Bytes()
	w.keep(p, packet)
	return p, nil
}

// packet builds the PSBT of tx, whose inputs spend ins in order: the UTXO of every input
// (the full previous transaction for legacy ones), redeem and witness scripts, and the
// fingerprint and path of every key, for inputs and for outputs paying the wallet (so that
// a signer recognises change).
func (w *Wallet) packet(tx *wire.MsgTx, ins []spendCoin) (*psbt.Packet, error) {
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return nil, fmt.Errorf("psbt: %w", err)
	}
	for i, c := range ins {
		pin := &p.Inputs[i]
		if c.d.acct.desc.Type == keys.ScriptPKH {
			prev, ok, err := w.store.Tx(c.op.Hash.String())
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("psbt: previous transaction of %v not stored", c.op)
			}
			pin.NonWitnessUtxo = prev
		} else {
			pin.WitnessUtxo = wire.NewTxOut(c.Value, c.pk)
		}
		pin.Bip32Derivation, pin.TaprootBip32Derivation, pin.TaprootInternalKey = c.d.derivations()
		pin.RedeemScript, pin.WitnessScript = c.d.addr.RedeemScript, c.d.addr.WitnessScript
		if c.d.acct.desc.Type != keys.ScriptTR {
			pin.SighashType = txscript.SigHashAll
		}
	}
	for i, o := range tx.TxOut {
		d, ok := w.keys.lookup(o.PkScript)
		if !ok {
			continue
		}
		pout := &p.Outputs[i]
		pout.Bip32Derivation, pout.TaprootBip32Derivation, pout.TaprootInternalKey = d.derivations()
		pout.RedeemScript, pout.WitnessScript = d.addr.RedeemScript, d.addr.WitnessScript
	}
	if err := p.SanityCheck(); err != nil {
		return nil, fmt.Errorf("psbt: %w", err)
	}
	return p, nil
}

// proposal is a Proposal kept for Send.
type proposal struct {
	*Proposal
	packet *psbt.Packet // unsigned
	signed []byte       // the box's signatures (multisig waiting for cosigners)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// keep stores a proposal for ProposalTTL, dropping expired ones.
func (w *Wallet) keep(p *Proposal, packet *psbt.Packet) {
	now := w.now()
	p.ID = newID()
	p.Expires = now.Add(w.cfg.ProposalTTL).UTC()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, q := range w.proposals {
		if now.After(q.Expires) {
			delete(w.proposals, id)
		}
	}
	w.proposals[p.ID] = &proposal{Proposal: p, packet: packet}
}

// proposal returns a live proposal.
func (w *Wallet) proposal(id string) (*proposal, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.proposals[id]
	if !ok {
		return nil, ErrProposalExpired
	}
	if w.now().After(p.Expires) {
		delete(w.proposals, id)
		return nil, ErrProposalExpired
	}
	return p, nil
}

func (w *Wallet) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.proposals, id)
}

// sortCoinsDesc orders coins by value, largest first.
func sortCoinsDesc(cs []spendCoin) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Value > cs[j].Value })
}

var errNoCoins = errors.New("no spendable coins")
