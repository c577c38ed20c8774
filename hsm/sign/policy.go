package sign

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

// Window is the length of the rolling window of the daily spend limit.
const Window = 24 * time.Hour

// DefaultChangeIndexLimit is the highest change address index (exclusive) accepted as change when
// Policy.ChangeIndexLimit is zero. Change sent to a far higher index is as good as lost to a
// wallet that scans with a gap limit, so it counts as sent.
const DefaultChangeIndexLimit = 100_000

// Policy is the owner's spending policy. A zero limit means "no limit" for that rule.
type Policy struct {
	// DailyLimit caps, in satoshis, what leaves the wallet (value of our inputs minus our change,
	// so amount sent plus fee) over any rolling 24 h window, this transaction included.
	DailyLimit int64
	// MaxFeePercent caps the fee as a percentage of the amount sent (outputs that are not
	// provably ours). A transaction that sends nothing (all outputs are change) is held only
	// to MaxFeeRate.
	MaxFeePercent float64
	// MaxFeeRate caps the fee rate in sat/vB, computed on the estimated size of the signed
	// transaction.
	MaxFeeRate float64

	// ChangeAccounts lists the accounts (e.g. m/84'/0'/0') whose internal chain (account/1/i)
	// may receive change. Empty: any hardened account of the BIP44/49/84/86 purposes on this
	// network's coin type.
	ChangeAccounts []Path
	// ChangeIndexLimit: change at account/1/i counts only for i below it. Zero means
	// DefaultChangeIndexLimit.
	ChangeIndexLimit uint32

	// AllowSighash lists sighash types, besides ALL (and DEFAULT for taproot), that the signer
	// may use when an input asks for them. Types that do not commit to all outputs (NONE,
	// SINGLE, ANYONECANPAY) let whoever holds the PSBT change what the policy checked: allow
	// them only for protocols that need them.
	AllowSighash []txscript.SigHashType
	// RequireNonWitnessUTXO refuses segwit v0 inputs of ours that do not carry the full
	// previous transaction (defends against the CVE-2020-14199 two-signature fee attack).
	RequireNonWitnessUTXO bool
}

func (p *Policy) validate() error {
	switch {
	case p.DailyLimit < 0:
		return errors.New("policy: negative daily limit")
	case p.MaxFeePercent < 0 || math.IsNaN(p.MaxFeePercent) || math.IsInf(p.MaxFeePercent, 0):
		return errors.New("policy: bad fee percentage")
	case p.MaxFeeRate < 0 || math.IsNaN(p.MaxFeeRate) || math.IsInf(p.MaxFeeRate, 0):
		return errors.New("policy: bad fee rate")
	}
	for _, a := range p.ChangeAccounts {
		if len(a) != 3 || a[0] < Hardened || a[1] < Hardened || a[2] < Hardened {
			return fmt.Errorf("policy: change account %v is not purpose'/coin'/account'", a)
		}
	}
	return nil
}

func (p *Policy) changeIndexLimit() uint32 {
	if p.ChangeIndexLimit == 0 {
		return DefaultChangeIndexLimit
	}
	return p.ChangeIndexLimit
}

func (p *Policy) sighashAllowed(t txscript.SigHashType) bool {
	for _, a := range p.AllowSighash {
		if a == t {
			return true
		}
	}
	return false
}

// Spend is one signed transaction as the daily limit sees it.
type Spend struct {
	Time   time.Time
	Amount int64          // satoshis that left the wallet: our inputs minus our change
	TxID   chainhash.Hash // of the unsigned transaction; signing the same one again is no new spend
}

// History is where the signer reads and records its spends. Storage can back it; [MemHistory]
// keeps them in memory.
type History interface {
	// Spends returns the spends recorded at or after since.
	Spends(since time.Time) ([]Spend, error)
	// Record stores a spend. It is called after the signatures are made and before they are
	// returned: if it fails, Sign fails and returns no signature.
	Record(Spend) error
}

// MemHistory is an in-memory History. A spend recorded again with the same TxID replaces the
// earlier one. The zero value is ready to use.
type MemHistory struct {
	mu     sync.Mutex
	spends []Spend
}

// Spends implements History.
func (h *MemHistory) Spends(since time.Time) ([]Spend, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Spend
	for _, s := range h.spends {
		if !s.Time.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Record implements History. Spends older than two windows before s are dropped.
func (h *MemHistory) Record(s Spend) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	horizon := s.Time.Add(-2 * Window)
	kept := h.spends[:0]
	for _, old := range h.spends {
		if old.TxID != s.TxID && !old.Time.Before(horizon) {
			kept = append(kept, old)
		}
	}
	h.spends = append(kept, s)
	return nil
}

// spentInWindow sums the spends of the last Window before now, leaving out txid (a re-sign of the
// same transaction is not a second spend).
func spentInWindow(h History, now time.Time, txid chainhash.Hash) (int64, error) {
	if h == nil {
		return 0, nil
	}
	spends, err := h.Spends(now.Add(-Window))
	if err != nil {
		return 0, fmt.Errorf("reading the spend history: %w", err)
	}
	var sum int64
	for _, s := range spends {
		if s.TxID == txid || s.Amount <= 0 {
			continue
		}
		sum = satAdd(sum, s.Amount)
	}
	return sum, nil
}

// evaluate checks sum against the policy; spent is what the last 24 h already spent.
func (p *Policy) evaluate(sum *Summary) []Violation {
	var vs []Violation
	if p.DailyLimit > 0 {
		total := satAdd(sum.SpentLast24h, sum.Spend)
		if total > p.DailyLimit {
			vs = append(vs, Violation{RuleDailyLimit, fmt.Sprintf(
				"spending %s sats would bring the last 24 h to %s sats, over the daily limit of %s sats",
				groupDigits(sum.Spend), groupDigits(total), groupDigits(p.DailyLimit))})
		}
	}
	if p.MaxFeePercent > 0 && sum.Sent > 0 && sum.FeePercent > p.MaxFeePercent {
		vs = append(vs, Violation{RuleFeePercent, fmt.Sprintf(
			"fee %s%% of the amount exceeds the %s%% limit",
			formatAbove(sum.FeePercent, p.MaxFeePercent), strconv.FormatFloat(p.MaxFeePercent, 'f', -1, 64))})
	}
	if p.MaxFeeRate > 0 && sum.FeeRate > p.MaxFeeRate {
		vs = append(vs, Violation{RuleFeeRate, fmt.Sprintf(
			"fee rate %s sat/vB exceeds the %s sat/vB limit",
			formatAbove(sum.FeeRate, p.MaxFeeRate), strconv.FormatFloat(p.MaxFeeRate, 'f', -1, 64))})
	}
	return vs
}

// formatAbove formats v (> limit) with one decimal, or more if one decimal would not show that
// it is above the limit.
func formatAbove(v, limit float64) string {
	for prec := 1; prec < 8; prec++ {
		s := strconv.FormatFloat(v, 'f', prec, 64)
		if f, _ := strconv.ParseFloat(s, 64); f > limit {
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// groupDigits formats n as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := false
	if n < 0 {
		neg, s = true, s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// satAdd adds saturating at MaxInt64 (amounts are validated elsewhere; this only keeps a
// hostile history from wrapping around).
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
