package coinselect

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/anya-edge/anya/node/wallet/txsize"
)

// TotalTries is the number of steps after which branch-and-bound gives up, as in Core.
const TotalTries = 100_000

// ChangeLower is Core's CHANGE_LOWER: the smallest change SRD aims for.
const ChangeLower int64 = 50_000

// MaxStandardTxWeight is the largest weight of a standard transaction.
const MaxStandardTxWeight = 400_000

// ErrInsufficientFunds is matched (errors.Is) by an *InsufficientFundsError.
var ErrInsufficientFunds = errors.New("insufficient funds")

// ErrNoSolution is returned by SelectBnB when no set of coins avoids change.
var ErrNoSolution = errors.New("coinselect: no changeless solution")

// ErrMaxWeight is returned when the coins needed exceed the maximum transaction weight.
var ErrMaxWeight = errors.New("coinselect: selection exceeds the maximum transaction weight")

// InsufficientFundsError says how much was needed and how much the coins could give, both
// in effective value (after the fees of their inputs).
type InsufficientFundsError struct {
	Need, Have int64
}

// Shortfall is how many satoshis are missing.
func (e *InsufficientFundsError) Shortfall() int64 { return e.Need - e.Have }

func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("insufficient funds: need %d sat, have %d sat spendable at this fee rate (short %d sat)",
		e.Need, e.Have, e.Shortfall())
}

func (e *InsufficientFundsError) Is(target error) bool { return target == ErrInsufficientFunds }

// Coin is a spendable output offered to selection.
type Coin struct {
	// ID is the caller's handle for the coin, for example its outpoint; not interpreted.
	ID string
	// Value in satoshis.
	Value int64
	// InputVSize is the virtual size of the input spending the coin (txsize.InputVSize).
	InputVSize int
}

// Request describes the payment to fund.
type Request struct {
	// Target is the sum of the payment outputs.
	Target int64
	// FeeRate is the fee rate of the transaction; LongTermFeeRate the rate at which the
	// wallet expects to spend coins in the future (Core's -consolidatefeerate, 10 sat/vB by
	// default), used for waste. DiscardFeeRate prices spending the change later (Core's
	// -discardfee); zero means LongTermFeeRate.
	FeeRate, LongTermFeeRate, DiscardFeeRate txsize.FeeRate
	// BaseVSize is the size of the transaction without inputs and without change: header,
	// counts and payment outputs. Its fee is added to the target.
	BaseVSize int
	// ChangeOutputVSize is the size of a change output (31 for P2WPKH, 43 for P2TR) and
	// ChangeSpendVSize the input that will spend it (68 for P2WPKH, 58 for P2TR).
	ChangeOutputVSize, ChangeSpendVSize int
	// ChangeDust is the dust threshold of the change script (294 for P2WPKH, 330 for P2TR):
	// smaller change is given to the fee instead.
	ChangeDust int64
	// MaxWeight bounds the weight of the inputs; zero means MaxStandardTxWeight less the
	// base transaction.
	MaxWeight int
	// Rand drives SRD; nil means a randomly seeded source.
	Rand *rand.Rand
}

// Algorithm names the algorithm that produced a Result.
type Algorithm string

const (
	BnB Algorithm = "bnb"
	SRD Algorithm = "srd"
)

// Result is a selection.
type Result struct {
	Algorithm Algorithm
	Inputs    []Coin
	// InputValue is the sum of the inputs' values; Fee the transaction's fee; Change the
	// change output's value, zero when there is none. InputValue = Target + Fee + Change.
	InputValue, Fee, Change int64
	// Waste is Core's waste metric of the selection.
	Waste int64
}

// group is a coin with the amounts selection weighs it by.
type group struct {
	coin       Coin
	eff        int64 // effective value
	fee, ltFee int64 // input fee at the fee rate and at the long-term fee rate
	weight     int
}

// prepared is a Request with its derived amounts, shared by the algorithms.
type prepared struct {
	req            Request
	pool           []group
	target         int64 // selection target: Target + fee of the base transaction
	changeFee      int64 // fee of the change output now
	costOfChange   int64 // changeFee + cost of spending the change later
	maxWeight      int
	totalEffective int64
}

func prepare(req Request, coins []Coin) (*prepared, error) {
	if req.Target <= 0 {
		return nil, fmt.Errorf("coinselect: target %d must be positive", req.Target)
	}
	if req.FeeRate < 0 || req.LongTermFeeRate < 0 || req.DiscardFeeRate < 0 {
		return nil, errors.New("coinselect: negative fee rate")
	}
	discard := req.DiscardFeeRate
	if discard == 0 {
		discard = req.LongTermFeeRate
	}
	p := &prepared{
		req:       req,
		target:    req.Target + req.FeeRate.Fee(req.BaseVSize),
		changeFee: req.FeeRate.Fee(req.ChangeOutputVSize),
		maxWeight: req.MaxWeight,
	}
	p.costOfChange = p.changeFee + discard.Fee(req.ChangeSpendVSize)
	if p.maxWeight <= 0 {
		p.maxWeight = MaxStandardTxWeight - req.BaseVSize*txsize.WitnessScaleFactor
	}
	p.pool = make([]group, 0, len(coins))
	for _, c := range coins {
		if c.Value <= 0 || c.InputVSize <= 0 {
			continue
		}
		g := group{
			coin:   c,
			fee:    req.FeeRate.Fee(c.InputVSize),
			ltFee:  req.LongTermFeeRate.Fee(c.InputVSize),
			weight: c.InputVSize * txsize.WitnessScaleFactor,
		}
		g.eff = c.Value - g.fee
		if g.eff <= 0 {
			continue // costs more to spend than it is worth
		}
		p.pool = append(p.pool, g)
		p.totalEffective += g.eff
	}
	return p, nil
}

// Select funds req from coins: branch-and-bound for a changeless transaction first, then
// single random draw with change. It fails with an *InsufficientFundsError when the coins'
// effective value cannot cover the target and the fees.
func Select(req Request, coins []Coin) (*Result, error) {
	p, err := prepare(req, coins)
	if err != nil {
		return nil, err
	}
	if p.totalEffective < p.target {
		return nil, &InsufficientFundsError{Need: p.target, Have: p.totalEffective}
	}
	if r, err := p.bnb(); err == nil {
		return r, nil
	}
	r, err := p.srd(p.target + p.changeFee + ChangeLower)
	if err == nil {
		return r, nil
	}
	r, err = p.srd(p.target)
	if err != nil {
		return nil, fmt.Errorf("coinselect: single random draw: %w", err)
	}
	return r, nil
}

// SelectBnB runs branch-and-bound alone; it fails with ErrNoSolution (or ErrMaxWeight, or
// an *InsufficientFundsError) when no changeless selection exists within TotalTries.
func SelectBnB(req Request, coins []Coin) (*Result, error) {
	p, err := prepare(req, coins)
	if err != nil {
		return nil, err
	}
	if p.totalEffective < p.target {
		return nil, &InsufficientFundsError{Need: p.target, Have: p.totalEffective}
	}
	return p.bnb()
}

// SelectSRD runs single random draw alone, aiming at the target plus change fee plus
// ChangeLower.
func SelectSRD(req Request, coins []Coin) (*Result, error) {
	p, err := prepare(req, coins)
	if err != nil {
		return nil, err
	}
	need := p.target + p.changeFee + ChangeLower
	if p.totalEffective < need {
		return nil, &InsufficientFundsError{Need: need, Have: p.totalEffective}
	}
	return p.srd(need)
}

// bnb is Core's SelectCoinsBnB.
func (p *prepared) bnb() (*Result, error) {
	pool := slices.Clone(p.pool)
	// Descending effective value; among equals the cheaper input first.
	slices.SortFunc(pool, func(a, b group) int {
		switch {
		case a.eff != b.eff:
			if a.eff > b.eff {
				return -1
			}
			return 1
		case a.fee != b.fee:
			if a.fee < b.fee {
				return -1
			}
			return 1
		}
		return 0
	})
	if len(pool) == 0 {
		return nil, ErrNoSolution
	}
	target, costOfChange := p.target, p.costOfChange
	var (
		currValue, currWaste int64
		currWeight           int
		currAvailable        = p.totalEffective
		curr                 []int
		best                 []int
		bestWaste            int64 = 21_000_000 * 100_000_000 // MAX_MONEY
		feeRateHigh                = pool[0].fee > pool[0].ltFee
		weightExceeded       bool
	)
	for try, i := 0, 0; try < TotalTries; try, i = try+1, i+1 {
		backtrack := false
		switch {
		case currValue+currAvailable < target, // cannot reach the target any more
			currValue > target+costOfChange,      // overshot: change would be cheaper
			currWaste > bestWaste && feeRateHigh: // only getting more wasteful
			backtrack = true
		case currWeight > p.maxWeight:
			weightExceeded = true
			backtrack = true
		case currValue >= target: // in range: a solution
			currWaste += currValue - target
			if currWaste <= bestWaste {
				best = slices.Clone(curr)
				bestWaste = currWaste
			}
			currWaste -= currValue - target
			backtrack = true
		}
		if backtrack {
			if len(curr) == 0 {
				break // every branch explored
			}
			last := curr[len(curr)-1]
			// Give back the lookahead of the coins skipped after the last included one.
			for i--; i > last; i-- {
				currAvailable += pool[i].eff
			}
			g := pool[i]
			currValue -= g.eff
			currWaste -= g.fee - g.ltFee
			currWeight -= g.weight
			curr = curr[:len(curr)-1]
			continue
		}
		g := pool[i]
		currAvailable -= g.eff
		// Skip a coin equal to the previous one that was just excluded: same subtree.
		if len(curr) == 0 || i-1 == curr[len(curr)-1] ||
			g.eff != pool[i-1].eff || g.fee != pool[i-1].fee {
			curr = append(curr, i)
			currValue += g.eff
			currWaste += g.fee - g.ltFee
			currWeight += g.weight
		}
	}
	if len(best) == 0 {
		if weightExceeded {
			return nil, ErrMaxWeight
		}
		return nil, ErrNoSolution
	}
	sel := make([]group, len(best))
	for k, idx := range best {
		sel[k] = pool[idx]
	}
	return p.result(BnB, sel, false), nil
}

// srd is Core's SelectCoinsSRD, aiming at need (in effective value).
func (p *prepared) srd(need int64) (*Result, error) {
	rng := p.req.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	order := rng.Perm(len(p.pool))
	var (
		sel            []group
		value          int64
		weight         int
		weightExceeded bool
	)
	for _, idx := range order {
		g := p.pool[idx]
		sel = append(sel, g)
		value += g.eff
		weight += g.weight
		if weight > p.maxWeight {
			// Drop the least valuable coins until the weight fits again.
			weightExceeded = true
			slices.SortFunc(sel, func(a, b group) int { return cmpInt(b.eff, a.eff) })
			for len(sel) > 0 && weight > p.maxWeight {
				last := sel[len(sel)-1]
				value -= last.eff
				weight -= last.weight
				sel = sel[:len(sel)-1]
			}
		}
		if value >= need {
			return p.result(SRD, sel, true), nil
		}
	}
	if weightExceeded {
		return nil, ErrMaxWeight
	}
	return nil, &InsufficientFundsError{Need: need, Have: value}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// result builds a Result from the selected groups, adding change when wanted and not dust.
func (p *prepared) result(alg Algorithm, sel []group, withChange bool) *Result {
	r := &Result{Algorithm: alg}
	var eff int64
	for _, g := range sel {
		r.Inputs = append(r.Inputs, g.coin)
		r.InputValue += g.coin.Value
		eff += g.eff
	}
	if withChange {
		change := eff - p.target - p.changeFee
		if change >= p.req.ChangeDust && change > 0 {
			r.Change = change
		}
	}
	r.Fee = r.InputValue - p.req.Target - r.Change
	changeCost := int64(0)
	if r.Change > 0 {
		changeCost = p.costOfChange
	}
	r.Waste = Waste(wasteInputs(sel), changeCost, p.target)
	return r
}

// WasteInput is an input as the waste metric sees it.
type WasteInput struct {
	// EffectiveValue is the value less Fee; Fee and LongTermFee the input's fee now and at
	// the long-term fee rate.
	EffectiveValue, Fee, LongTermFee int64
}

func wasteInputs(sel []group) []WasteInput {
	in := make([]WasteInput, len(sel))
	for i, g := range sel {
		in[i] = WasteInput{EffectiveValue: g.eff, Fee: g.fee, LongTermFee: g.ltFee}
	}
	return in
}

// Waste is Core's GetSelectionWaste: the sum over inputs of fee − long-term fee, plus
// changeCost when the selection makes change (changeCost > 0), otherwise plus the excess of
// the inputs' effective value over target.
func Waste(inputs []WasteInput, changeCost, target int64) int64 {
	var waste, eff int64
	for _, in := range inputs {
		waste += in.Fee - in.LongTermFee
		eff += in.EffectiveValue
	}
	if changeCost > 0 {
		return waste + changeCost
	}
	return waste + eff - target
}
