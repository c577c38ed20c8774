package wallet

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet/txsize"
)

// ProposeCPFP proposes a child that spends an unconfirmed output of the wallet in txid
// (the largest one), adding confirmed coins when it is too small, into a fresh change
// address, with a fee such that parent and child together pay packageRate (0: the
// estimate): (parent fee + child fee) / (parent vsize + child vsize). The child pays at
// least the minimum relay fee on its own size. When the wallet cannot know the parent's
// fee (some of its inputs are not the wallet's, as for an incoming payment) the child pays
// as if the parent paid nothing, so the package pays at least packageRate; Proposal.
// PackageFeeRate is computed the same way. Unconfirmed ancestors of the parent are not
// counted.
func (w *Wallet) ProposeCPFP(ctx context.Context, txid chainhash.Hash, packageRate chain.FeeRate) (*Proposal, error) {
	p, err := w.proposeCPFP(ctx, txid, packageRate)
	if err != nil {
		return nil, fmt.Errorf("propose cpfp for %v: %w", txid, err)
	}
	return p, nil
}

func (w *Wallet) proposeCPFP(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*Proposal, error) {
	id := txid.String()
	parent, err := w.unconfirmed(id)
	if err != nil {
		return nil, err
	}
	parentVSize := txVSize(parent)
	parentFee, known, err := w.txFee(parent)
	if err != nil {
		return nil, err
	}
	if !known {
		parentFee = 0
	}
	rate, err = w.feeRate(ctx, rate, DefaultTarget)
	if err != nil {
		return nil, err
	}
	if known && feeRateOf(parentFee, parentVSize) >= rate {
		return nil, fmt.Errorf("%w: the parent already pays %v", ErrFeeRateTooLow, feeRateOf(parentFee, parentVSize))
	}
	outs, err := w.store.Outputs(true)
	if err != nil {
		return nil, err
	}
	var ins []spendCoin
	for _, o := range outs {
		if o.OutPoint[:64] != id {
			continue
		}
		if c, ok := w.coinOf(o); ok && (len(ins) == 0 || c.Value > ins[0].Value) {
			ins = []spendCoin{c}
		}
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("%w: %s has no unspent output of the wallet", ErrCoinNotSpendable, id)
	}
	extra, err := w.spendable(true)
	if err != nil {
		return nil, err
	}
	sortCoinsDesc(extra)
	change := w.keys.nextChange()
	out := wire.NewTxOut(0, change.addr.ScriptPubKey)
	dust := txsize.DustThreshold(out.PkScript)
	var childFee, childVSize int64
	for {
		childVSize = vsizeOfWeight(estimateWeight(ins, []*wire.TxOut{out}))
		childFee = int64(rate.Fee(parentVSize+childVSize)) - parentFee
		childFee = max(childFee, int64(chain.MinRelayFeeRate.Fee(childVSize)))
		var in int64
		for _, c := range ins {
			in += c.Value
		}
		if in-childFee >= dust {
			out.Value = in - childFee
			break
		}
		if len(extra) == 0 {
			return nil, fmt.Errorf("%w: the child needs a fee of %d sat", ErrInsufficientFunds, childFee)
		}
		ins = append(ins, extra[0])
		extra = extra[1:]
	}
	tip, _, err := w.store.Tip()
	if err != nil {
		return nil, err
	}
	seqs := make([]uint32, len(ins))
	for i := range seqs {
		seqs[i] = SequenceRBF
	}
	d := &draft{kind: "cpfp", lockTime: antiFeeSniping(tip.Height), ins: ins, seqs: seqs, outs: []*wire.TxOut{out},
		change: map[*wire.TxOut]bool{out: true}, parent: id, algorithm: "cpfp", shuffle: true,
		packageRate: feeRateOf(parentFee+childFee, parentVSize+childVSize)}
	p, err := w.finish(d)
	if err != nil {
		return nil, err
	}
	w.log.Info("proposed a cpfp child", "id", p.ID, "parent", id, "fee", p.Fee, "package_rate", p.PackageFeeRate)
	return p, nil
}
