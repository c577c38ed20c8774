package wallet

import (
	"fmt"
)

// History returns the wallet's transactions, unconfirmed first, then newest first, with
// their confirmations (from the wallet's tip), their fee when all inputs are the wallet's,
// and whether a fee bump (Replaceable) or a child paying for them (CPFPable) applies.
// Transactions replaced by another are listed with ReplacedBy set.
func (w *Wallet) History() ([]HistoryEntry, error) {
	entries, err := w.store.History()
	if err != nil {
		return nil, fmt.Errorf("wallet: history: %w", err)
	}
	tip, haveTip, err := w.store.Tip()
	if err != nil {
		return nil, fmt.Errorf("wallet: history: %w", err)
	}
	outs, err := w.store.Outputs(true)
	if err != nil {
		return nil, fmt.Errorf("wallet: history: %w", err)
	}
	unspent := map[string]bool{} // txids with an unspent output of ours
	for _, o := range outs {
		unspent[o.OutPoint[:64]] = true
	}
	out := make([]HistoryEntry, 0, len(entries))
	for _, e := range entries {
		h := HistoryEntry{Entry: e, ReplacedBy: e.ReplacedBy}
		if e.Height > 0 && haveTip {
			h.Confirmations = max(tip.Height-e.Height+1, 0)
		}
		tx, ok, err := w.store.Tx(e.TxID)
		if err != nil {
			return nil, fmt.Errorf("wallet: history: %w", err)
		}
		if ok {
			fee, all, err := w.txFee(tx)
			if err != nil {
				return nil, fmt.Errorf("wallet: history: %w", err)
			}
			if all {
				h.Fee = fee
				h.FeeRate = feeRateOf(fee, txVSize(tx))
			}
			if e.Height == 0 && e.ReplacedBy == "" {
				h.Replaceable = all && signalsRBF(tx)
				h.CPFPable = unspent[e.TxID]
			}
		}
		out = append(out, h)
	}
	return out, nil
}
