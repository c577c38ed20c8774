package wallet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet/coinselect"
	"github.com/anya-edge/anya/node/wallet/txsize"
)

// Propose builds the unsigned transaction of a send for the owner to review. It checks
// the addresses (ErrInvalidAddress, ErrWrongNetwork), amounts (ErrAmountBelowDust) and
// fee rate (ErrFeeRateTooLow; 0 asks EstimateFee for req.Target), selects coins among the
// spendable ones (branch-and-bound, then single random draw; SendAll takes them all),
// adds change to the next change address unless it would be dust, signals RBF (or sets
// the BIP68 relative lock), sets nLockTime (req.LockTime, or the current height against
// fee sniping) and shuffles the outputs.
func (w *Wallet) Propose(ctx context.Context, req SendRequest) (*Proposal, error) {
	p, err := w.proposeSend(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("propose send: %w", err)
	}
	return p, nil
}

func (w *Wallet) proposeSend(ctx context.Context, req SendRequest) (*Proposal, error) {
	if len(req.Payments) == 0 {
		return nil, errors.New("no payment")
	}
	if req.SendAll && len(req.Payments) != 1 {
		return nil, errors.New("send all takes exactly one payment")
	}
	var outs []*wire.TxOut
	var target int64
	for i, pay := range req.Payments {
		pk, err := w.payScript(pay.Address)
		if err != nil {
			return nil, fmt.Errorf("payment %d: %w", i+1, err)
		}
		if !req.SendAll {
			if dust := txsize.DustThreshold(pk); pay.Amount < max(dust, 1) {
				return nil, fmt.Errorf("payment %d: %w: %d sat, the least is %d sat", i+1, ErrAmountBelowDust, pay.Amount, max(dust, 1))
			}
			target += pay.Amount
		}
		outs = append(outs, wire.NewTxOut(pay.Amount, pk))
	}
	rate, err := w.feeRate(ctx, req.FeeRate, req.Target)
	if err != nil {
		return nil, err
	}
	tip, ok, err := w.store.Tip()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotSynced
	}
	coins, err := w.spendable(false)
	if err != nil {
		return nil, err
	}
	if len(req.Coins) > 0 {
		if coins, err = pickCoins(coins, req.Coins); err != nil {
			return nil, err
		}
	}
	d := &draft{kind: "send", shuffle: true, change: map[*wire.TxOut]bool{}, lockTime: req.LockTime}
	if d.lockTime == 0 {
		d.lockTime = antiFeeSniping(tip.Height)
	}
	seq := SequenceRBF
	if req.RelativeLock > 0 {
		seq = uint32(req.RelativeLock) // BIP68: blocks, enabled (bit 31 clear)
	}

	if req.SendAll {
		if len(coins) == 0 {
			return nil, fmt.Errorf("%w: %w", ErrInsufficientFunds, errNoCoins)
		}
		var total int64
		for _, c := range coins {
			total += c.Value
		}
		fee := int64(rate.Fee(vsizeOfWeight(estimateWeight(coins, outs))))
		amount := total - fee
		if dust := txsize.DustThreshold(outs[0].PkScript); amount < dust {
			return nil, fmt.Errorf("%w: %d sat left after a fee of %d sat is below the dust limit of %d sat",
				ErrInsufficientFunds, amount, fee, dust)
		}
		outs[0].Value = amount
		d.ins, d.outs, d.algorithm = coins, outs, "all"
	} else {
		change := w.keys.nextChange()
		changePk := change.addr.ScriptPubKey
		changeWeight, _ := inputWeight(change.acct)
		ccoins := make([]coinselect.Coin, len(coins))
		byID := make(map[string]spendCoin, len(coins))
		for i, c := range coins {
			ccoins[i] = coinselect.Coin{ID: c.OutPoint, Value: c.Value, InputVSize: txsize.VSize(c.weight)}
			byID[c.OutPoint] = c
		}
		base := estimateWeight(nil, outs) + 2 // with the segwit marker
		res, err := coinselect.Select(coinselect.Request{
			Target: target, FeeRate: txsize.FeeRate(rate), LongTermFeeRate: longTermFeeRate,
			BaseVSize:         txsize.VSize(base),
			ChangeOutputVSize: txsize.OutputSizeScript(len(changePk)),
			ChangeSpendVSize:  txsize.VSize(changeWeight),
			ChangeDust:        txsize.DustThreshold(changePk),
		}, ccoins)
		if err != nil {
			if errors.Is(err, coinselect.ErrInsufficientFunds) {
				return nil, fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
			}
			return nil, err
		}
		var ins []spendCoin
		var in int64
		for _, c := range res.Inputs {
			ins = append(ins, byID[c.ID])
			in += c.Value
		}
		// The exact worst-case size decides the change: with it when it is not dust,
		// otherwise the excess goes to the fee.
		feeNoChange := int64(rate.Fee(vsizeOfWeight(estimateWeight(ins, outs))))
		if in-target < feeNoChange {
			return nil, fmt.Errorf("%w: the coins selected give %d sat for %d sat and a fee of %d sat",
				ErrInsufficientFunds, in, target, feeNoChange)
		}
		changeOut := wire.NewTxOut(0, changePk)
		withChange := append(append([]*wire.TxOut(nil), outs...), changeOut)
		changeValue := in - target - int64(rate.Fee(vsizeOfWeight(estimateWeight(ins, withChange))))
		if res.Change > 0 && changeValue >= txsize.DustThreshold(changePk) {
			changeOut.Value = changeValue
			outs = withChange
			d.change[changeOut] = true
		}
		d.ins, d.outs, d.algorithm = ins, outs, string(res.Algorithm)
	}
	d.seqs = make([]uint32, len(d.ins))
	for i := range d.seqs {
		d.seqs[i] = seq
	}
	p, err := w.finish(d)
	if err != nil {
		return nil, err
	}
	w.log.Info("proposed a send", "id", p.ID, "sent", p.Sent, "fee", p.Fee, "rate", p.FeeRate, "inputs", len(p.Inputs))
	return p, nil
}

// feeRate is the requested rate, checked, or the estimate for target when none is given.
func (w *Wallet) feeRate(ctx context.Context, rate chain.FeeRate, target uint32) (chain.FeeRate, error) {
	if rate == 0 {
		est, err := w.EstimateFee(ctx, target)
		if err != nil {
			return 0, err
		}
		return est.Rate, nil
	}
	if rate < chain.MinRelayFeeRate {
		return 0, fmt.Errorf("%w: %v is below %v", ErrFeeRateTooLow, rate, chain.MinRelayFeeRate)
	}
	if rate > chain.MaxSaneFeeRate {
		return 0, fmt.Errorf("fee rate %v is above the sanity limit of %v", rate, chain.MaxSaneFeeRate)
	}
	return rate, nil
}

// pickCoins keeps the coins named by outpoint, all of which must be spendable.
func pickCoins(coins []spendCoin, want []string) ([]spendCoin, error) {
	by := make(map[string]spendCoin, len(coins))
	for _, c := range coins {
		by[c.OutPoint] = c
	}
	var out []spendCoin
	seen := map[string]bool{}
	for _, s := range want {
		s = strings.TrimSpace(s)
		c, ok := by[s]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrCoinNotSpendable, s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, c)
		}
	}
	return out, nil
}
