package wallet

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet/txsize"
)

// IncrementalRelayFeeRate is the BIP125 incremental relay fee of Core and btcd (1 sat/vB):
// a replacement pays at least the fees it replaces plus this rate on its own size.
const IncrementalRelayFeeRate = chain.MinRelayFeeRate

// ProposeBump proposes a replacement (BIP125) of an unconfirmed wallet transaction that
// signals RBF and spends only the wallet's coins, at rate (0: the estimate, at least 1
// sat/vB above the original). The replacement spends the same inputs (and more confirmed
// coins when needed), pays the same payments, and takes the fee from the change, whose
// output is dropped when it would be dust. Its fee covers the original's (and its unconfirmed
// descendants') plus the incremental relay fee on its own size, and its rate is above the
// original's.
func (w *Wallet) ProposeBump(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*Proposal, error) {
	p, err := w.proposeBump(ctx, txid, rate)
	if err != nil {
		return nil, fmt.Errorf("propose bump of %v: %w", txid, err)
	}
	return p, nil
}

func (w *Wallet) proposeBump(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*Proposal, error) {
	id := txid.String()
	orig, err := w.unconfirmed(id)
	if err != nil {
		return nil, err
	}
	if !signalsRBF(orig) {
		return nil, fmt.Errorf("%w: it does not signal replaceability (BIP125)", ErrNotReplaceable)
	}
	var ins []spendCoin
	var seqs []uint32
	for _, in := range orig.TxIn {
		o, ok, err := w.store.Output(in.PreviousOutPoint.String())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: input %v is not the wallet's", ErrNotReplaceable, in.PreviousOutPoint)
		}
		c, ok := w.coinOf(o)
		if !ok {
			return nil, fmt.Errorf("%w: input %v has a script the wallet cannot sign", ErrNotReplaceable, in.PreviousOutPoint)
		}
		ins = append(ins, c)
		seqs = append(seqs, in.Sequence)
	}
	oldFee, _, err := w.txFee(orig)
	if err != nil {
		return nil, err
	}
	oldVSize := txVSize(orig)
	oldRate := feeRateOf(oldFee, oldVSize)
	// BIP125 rule 3: the replacement pays for every transaction it evicts, descendants too.
	descFee, err := w.descendantFees(id)
	if err != nil {
		return nil, err
	}
	replacedFees := oldFee + descFee

	if rate == 0 {
		est, err := w.EstimateFee(ctx, DefaultTarget)
		if err != nil {
			return nil, err
		}
		rate = max(est.Rate, oldRate+IncrementalRelayFeeRate)
	}
	if rate <= oldRate {
		return nil, fmt.Errorf("%w: %v is not above the original's %v", ErrFeeRateTooLow, rate, oldRate)
	}
	if rate > chain.MaxSaneFeeRate {
		return nil, fmt.Errorf("fee rate %v is above the sanity limit of %v", rate, chain.MaxSaneFeeRate)
	}

	// Payments stay; outputs to the wallet's change chain are the change.
	var pays []*wire.TxOut
	var payTotal int64
	var changePk []byte
	for _, o := range orig.TxOut {
		if d, ok := w.keys.lookup(o.PkScript); ok && d.chain == keys.Change {
			if changePk == nil {
				changePk = o.PkScript
			}
			continue
		}
		pays = append(pays, wire.NewTxOut(o.Value, o.PkScript))
		payTotal += o.Value
	}
	if changePk == nil {
		changePk = w.keys.nextChange().addr.ScriptPubKey
	}
	dust := txsize.DustThreshold(changePk)
	// More confirmed coins, largest first, if the original's inputs cannot pay (BIP125
	// rule 2 forbids new unconfirmed inputs).
	extra, err := w.spendable(true)
	if err != nil {
		return nil, err
	}
	sortCoinsDesc(extra)
	feeFor := func(ins []spendCoin, outs []*wire.TxOut) int64 {
		vs := vsizeOfWeight(estimateWeight(ins, outs))
		return max(int64(rate.Fee(vs)), replacedFees+int64(IncrementalRelayFeeRate.Fee(vs)))
	}
	var outs []*wire.TxOut
	var changeOut *wire.TxOut
	for {
		var in int64
		for _, c := range ins {
			in += c.Value
		}
		co := wire.NewTxOut(0, changePk)
		withChange := append(append([]*wire.TxOut(nil), pays...), co)
		if v := in - payTotal - feeFor(ins, withChange); v >= dust {
			co.Value, outs, changeOut = v, withChange, co
			break
		}
		if len(pays) > 0 && in-payTotal-feeFor(ins, pays) >= 0 {
			outs = pays
			break
		}
		if len(extra) == 0 {
			return nil, fmt.Errorf("%w: the replacement needs a fee of %d sat", ErrInsufficientFunds, feeFor(ins, pays))
		}
		ins = append(ins, extra[0])
		seqs = append(seqs, SequenceRBF)
		extra = extra[1:]
	}
	d := &draft{kind: "bump", lockTime: orig.LockTime, ins: ins, seqs: seqs, outs: outs,
		change: map[*wire.TxOut]bool{}, replaces: id, algorithm: "rbf"}
	if changeOut != nil {
		d.change[changeOut] = true
	}
	p, err := w.finish(d)
	if err != nil {
		return nil, err
	}
	w.log.Info("proposed a fee bump", "id", p.ID, "replaces", id, "fee", p.Fee, "was", oldFee, "rate", p.FeeRate)
	return p, nil
}

// unconfirmed returns a wallet transaction that is still unconfirmed and not replaced.
func (w *Wallet) unconfirmed(txid string) (*wire.MsgTx, error) {
	e, ok, err := w.store.Entry(txid)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrTxNotFound
	}
	if e.Height > 0 {
		return nil, fmt.Errorf("%w at height %d", ErrAlreadyConfirmed, e.Height)
	}
	if e.ReplacedBy != "" {
		return nil, fmt.Errorf("%w: it was replaced by %s", ErrNotReplaceable, e.ReplacedBy)
	}
	tx, ok, err := w.store.Tx(txid)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrTxNotFound
	}
	return tx, nil
}

// descendantFees sums the fees of the unconfirmed wallet transactions that spend outputs
// of txid, recursively. A descendant whose fee the wallet cannot know makes the
// transaction not replaceable by the wallet.
func (w *Wallet) descendantFees(txid string) (int64, error) {
	outs, err := w.store.Outputs(false)
	if err != nil {
		return 0, err
	}
	var total int64
	seen := map[string]bool{}
	queue := []string{txid}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, o := range outs {
			if o.OutPoint[:64] != id || o.SpentBy == "" || o.SpentHeight != 0 || seen[o.SpentBy] {
				continue
			}
			child := o.SpentBy
			seen[child] = true
			tx, ok, err := w.store.Tx(child)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, fmt.Errorf("%w: descendant %s is not stored", ErrNotReplaceable, child)
			}
			fee, all, err := w.txFee(tx)
			if err != nil {
				return 0, err
			}
			if !all {
				return 0, fmt.Errorf("%w: descendant %s spends coins that are not the wallet's", ErrNotReplaceable, child)
			}
			total += fee
			queue = append(queue, child)
		}
	}
	return total, nil
}
