package coinselect

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/anya-edge/anya/node/wallet/txsize"
)

const cent = 1_000_000

// bnbCore runs branch-and-bound on coins whose effective value is their value (fee rate 0),
// with an explicit cost of change, as Core's bnb_search_test calls SelectCoinsBnB.
func bnbCore(values []int64, target, costOfChange int64) ([]int64, error) {
	p := &prepared{target: target, costOfChange: costOfChange, maxWeight: MaxStandardTxWeight}
	for _, v := range values {
		p.pool = append(p.pool, group{coin: Coin{Value: v, InputVSize: 68}, eff: v, weight: 272})
		p.totalEffective += v
	}
	if p.totalEffective < target {
		return nil, &InsufficientFundsError{Need: target, Have: p.totalEffective}
	}
	r, err := p.bnb()
	if err != nil {
		return nil, err
	}
	var got []int64
	for _, c := range r.Inputs {
		got = append(got, c.Value)
	}
	slices.Sort(got)
	return got, nil
}

func cents(cs ...float64) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = int64(c * cent)
	}
	return out
}

// makeHardCase is Core's make_hard_case: a pool whose only solution lies deep in the tree.
func makeHardCase(n int) ([]int64, int64) {
	var pool []int64
	var target int64
	for i := 0; i < n; i++ {
		target += int64(1) << (n + i)
		pool = append(pool, int64(1)<<(n+i), (int64(1)<<(n+i))+(int64(1)<<(n-1-i)))
	}
	return pool, target
}

// TestBnBCore reproduces the cases of Bitcoin Core's bnb_search_test.
func TestBnBCore(t *testing.T) {
	small := cents(1, 2, 3, 4)
	five := cents(1, 2, 3, 4, 5)
	bailout := cents(7, 7, 7, 7, 2)
	for i := 0; i < 50_000; i++ {
		bailout = append(bailout, 5*cent)
	}
	var big []int64
	for i := 5; i <= 20; i++ {
		big = append(big, int64(i)*cent)
	}
	hard17, target17 := makeHardCase(17)
	hard14, target14 := makeHardCase(14)

	tests := []struct {
		name         string
		pool         []int64
		target, coc  int64
		want         []int64 // nil: no solution
		wantAnyMatch bool    // only check that a solution is found
	}{
		{"empty pool", nil, 1 * cent, cent / 2, nil, false},
		{"select 1 cent", small, 1 * cent, cent / 2, cents(1), false},
		{"select 2 cent", small, 2 * cent, cent / 2, cents(2), false},
		{"select 5 cent (last equal-waste set wins)", small, 5 * cent, cent / 2, cents(2, 3), false},
		{"select 11 cent, not possible", small, 11 * cent, cent / 2, nil, false},
		{"cost of change covers the excess", small, cent * 9 / 10, cent / 2, cents(1), false},
		{"cost of change below the excess", small, cent * 9 / 10, 0, nil, false},
		{"select 10 cent", five, 10 * cent, cent / 2, cents(1, 2, 3, 4), false},
		{"select 0.25 cent, not possible", five, cent / 4, cent / 2, nil, false},
		{"iteration exhaustion (17)", hard17, target17, 1, nil, false},
		{"no exhaustion (14)", hard14, target14, 1, nil, true},
		{"same value early bailout", bailout, 30 * cent, 5000, cents(2, 7, 7, 7, 7), false},
		{"1 cent from coins over 5 cent", big, 1 * cent, 2 * cent, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bnbCore(tc.pool, tc.target, tc.coc)
			switch {
			case tc.wantAnyMatch:
				if err != nil {
					t.Fatalf("want a solution, got %v", err)
				}
			case tc.want == nil:
				if err == nil {
					t.Fatalf("want no solution, got %v", got)
				}
			case err != nil:
				t.Fatalf("want %v, got %v", tc.want, err)
			case !slices.Equal(got, tc.want):
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWasteCore reproduces Core's waste_test.
func TestWasteCore(t *testing.T) {
	const (
		fee, changeCost, feeDiff = 100, 125, 40
		inAmt, target            = 3 * 100_000_000, 2 * 100_000_000
		excess                   = inAmt - fee*2 - target
		exact                    = inAmt - fee*2
	)
	in := func(ltFee int64) []WasteInput {
		return []WasteInput{
			{EffectiveValue: 1*100_000_000 - fee, Fee: fee, LongTermFee: ltFee},
			{EffectiveValue: 2*100_000_000 - fee, Fee: fee, LongTermFee: ltFee},
		}
	}
	tests := []struct {
		name               string
		inputs             []WasteInput
		changeCost, target int64
		want               int64
	}{
		{"change: change cost + fee diff", in(fee - feeDiff), changeCost, target, feeDiff*2 + changeCost},
		{"no change: excess + fee diff", in(fee - feeDiff), 0, target, feeDiff*2 + excess},
		{"change, fee == long-term fee", in(fee), changeCost, target, changeCost},
		{"no change, fee == long-term fee", in(fee), 0, target, excess},
		{"exact, fee == long-term fee", in(fee), 0, exact, 0},
		{"fee diff cancels the change cost", in(fee + feeDiff), feeDiff * 2, target, 0},
		{"fee diff cancels the excess", in(fee + feeDiff), 0, inAmt - fee*2 - feeDiff*2, 0},
		{"negative waste", in(fee + feeDiff), 0, exact, -feeDiff * 2},
	}
	for _, tc := range tests {
		if got := Waste(tc.inputs, tc.changeCost, tc.target); got != tc.want {
			t.Errorf("%s: Waste = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func wpkhCoins(values ...int64) []Coin {
	out := make([]Coin, len(values))
	for i, v := range values {
		out[i] = Coin{ID: string(rune('a' + i)), Value: v, InputVSize: 68}
	}
	return out
}

func baseRequest(target int64) Request {
	return Request{
		Target:            target,
		FeeRate:           txsize.SatPerVByte(10),
		LongTermFeeRate:   txsize.SatPerVByte(10),
		BaseVSize:         10 + 1 + 31, // header, counts (rounded), one P2WPKH payment
		ChangeOutputVSize: 31,
		ChangeSpendVSize:  68,
		ChangeDust:        294,
		Rand:              rand.New(rand.NewPCG(1, 2)),
	}
}

func TestSelect(t *testing.T) {
	// At 10 sat/vB a P2WPKH input costs 680 sat and the base transaction 420 sat.
	tests := []struct {
		name       string
		coins      []Coin
		target     int64
		wantAlg    Algorithm
		wantIDs    []string
		wantChange bool
		wantShort  int64 // > 0: expect ErrInsufficientFunds with this shortfall
	}{
		{"exact match by BnB", wpkhCoins(50_000, 100_000+420+680, 300_000), 100_000, BnB, []string{"b"}, false, 0},
		{"BnB combines two coins", wpkhCoins(60_680, 40_680, 500_000), 100_000 - 420, BnB, []string{"a", "b"}, false, 0},
		{"no exact match: SRD with change", wpkhCoins(1_000_000, 2_000_000), 123_456, SRD, nil, true, 0},
		{"insufficient funds", wpkhCoins(10_000, 20_000), 50_000, "", nil, false, 50_000 + 420 - (10_000 - 680 + 20_000 - 680)},
		{"uneconomic coin ignored", wpkhCoins(600, 20_000), 30_000, "", nil, false, 30_000 + 420 - (20_000 - 680)},
		{"excess within cost of change: BnB, no change", wpkhCoins(100_000), 100_000 - 680 - 420 - 800, BnB, []string{"a"}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest(tc.target)
			r, err := Select(req, tc.coins)
			if tc.wantShort > 0 {
				var ife *InsufficientFundsError
				if !errors.Is(err, ErrInsufficientFunds) || !errors.As(err, &ife) || ife.Shortfall() != tc.wantShort {
					t.Fatalf("err = %v; want insufficient funds short %d", err, tc.wantShort)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Algorithm != tc.wantAlg {
				t.Errorf("algorithm %s, want %s", r.Algorithm, tc.wantAlg)
			}
			if tc.wantIDs != nil {
				var ids []string
				for _, c := range r.Inputs {
					ids = append(ids, c.ID)
				}
				slices.Sort(ids)
				if !slices.Equal(ids, tc.wantIDs) {
					t.Errorf("inputs %v, want %v", ids, tc.wantIDs)
				}
			}
			if (r.Change > 0) != tc.wantChange {
				t.Errorf("change %d, want change: %v", r.Change, tc.wantChange)
			}
			if tc.wantChange && r.Change < ChangeLower {
				t.Errorf("SRD change %d below ChangeLower", r.Change)
			}
			checkResult(t, req, r)
		})
	}
}

// checkResult checks the accounting identity and that the fee pays at least the fee rate
// for the transaction's estimated size.
func checkResult(t *testing.T, req Request, r *Result) {
	t.Helper()
	if r.InputValue != req.Target+r.Fee+r.Change {
		t.Errorf("inputs %d != target %d + fee %d + change %d", r.InputValue, req.Target, r.Fee, r.Change)
	}
	vsize := req.BaseVSize
	for _, c := range r.Inputs {
		vsize += c.InputVSize
	}
	if r.Change > 0 {
		vsize += req.ChangeOutputVSize
		if r.Change < req.ChangeDust {
			t.Errorf("dust change %d", r.Change)
		}
	}
	if min := req.FeeRate.Fee(vsize); r.Fee < min {
		t.Errorf("fee %d below %d for %d vB", r.Fee, min, vsize)
	}
}

func TestSelectRandomInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 300; i++ {
		coins := make([]Coin, 1+rng.IntN(30))
		for j := range coins {
			coins[j] = Coin{Value: 1000 + rng.Int64N(2_000_000), InputVSize: []int{58, 68, 91, 105}[rng.IntN(4)]}
		}
		req := baseRequest(1000 + rng.Int64N(5_000_000))
		req.FeeRate = txsize.FeeRate(1000 + rng.Int64N(100_000))
		req.Rand = rng
		r, err := Select(req, coins)
		if errors.Is(err, ErrInsufficientFunds) {
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		checkResult(t, req, r)
	}
}

func TestSelectBnBLowFeeWaste(t *testing.T) {
	// Fee rate below the long-term rate: BnB may add inputs (negative waste per input), but
	// the result must still be changeless and within the cost of change.
	req := baseRequest(300_000)
	req.FeeRate = txsize.SatPerVByte(1)
	coins := wpkhCoins(100_068, 100_068, 100_068+42, 300_068+42)
	r, err := SelectBnB(req, coins)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Inputs) != 3 || r.Change != 0 {
		t.Fatalf("got %d inputs, change %d; want the three small coins, consolidating", len(r.Inputs), r.Change)
	}
	if r.Waste >= 0 {
		t.Errorf("waste %d, want negative at a fee rate below the long-term one", r.Waste)
	}
}

func TestSelectDustChangeGoesToFee(t *testing.T) {
	// Excess 500 sat: above the cost of change at a 1 sat/vB discard rate (310+68), so BnB
	// finds nothing, but the change (500-310) would be dust and is given to the fee.
	req := baseRequest(100_000 - 680 - 420 - 500)
	req.DiscardFeeRate = txsize.SatPerVByte(1)
	r, err := Select(req, wpkhCoins(100_000))
	if err != nil {
		t.Fatal(err)
	}
	if r.Algorithm != SRD || r.Change != 0 || r.Fee != 680+420+500 {
		t.Fatalf("got %+v; want SRD, no change, fee 1600", r)
	}
	checkResult(t, req, r)
}
