package route

import (
	"errors"
	"fmt"
)

// Defaults of Split.
const (
	DefaultMaxParts = 16
	// DefaultMinPart is the smallest part, msat (lnd's default minimum shard is 10,000 sat).
	DefaultMinPart = 10_000_000
	// DefaultMinPartProbability: a part less likely than this is split further.
	DefaultMinPartProbability = 0.3
)

// SplitOptions tune Split.
type SplitOptions struct {
	MaxParts int
	MinPart  uint64 // msat
	// MinProbability is the probability below which a part is halved when it can be.
	MinProbability float64
	// Granularity makes every part a multiple of it, msat (1000: whole satoshis, as
	// lncli buildroute --amt takes them). The amount must be a multiple of it. Default 1.
	Granularity uint64
}

func (o *SplitOptions) defaults() {
	if o.MaxParts == 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MinPart == 0 {
		o.MinPart = DefaultMinPart
	}
	if o.MinProbability == 0 {
		o.MinProbability = DefaultMinPartProbability
	}
	if o.Granularity == 0 {
		o.Granularity = 1
	}
}

// Payment is a multi-path payment: parts that together deliver the amount.
type Payment struct {
	Parts []Route `json:"parts"`
	// Amount is the sum delivered, TotalFees the sum of the parts' fees, msat.
	Amount    uint64 `json:"amount_msat"`
	TotalFees uint64 `json:"total_fees_msat"`
	// Probability is the chance that every part succeeds (the model treats them as
	// independent after accounting for the liquidity the others use).
	Probability float64 `json:"probability"`
}

// Split finds a multi-path payment for req.Amount: it tries the whole remaining amount on
// one route and halves it while no route is found or the best one is less likely than
// MinProbability (then it takes the size with the largest expected delivery); each part's
// amounts count against the liquidity of the channels it uses,
// so that later parts go elsewhere and no channel carries more than its capacity. A
// payment that one likely route can carry comes back as one part.
func (f *Finder) Split(req Request, opts SplitOptions) (Payment, error) {
	opts.defaults()
	req.defaults()
	if req.Amount%opts.Granularity != 0 {
		return Payment{}, fmt.Errorf("route: amount %d msat is not a multiple of %d", req.Amount, opts.Granularity)
	}
	planned := make(used)
	pay := Payment{Probability: 1}
	remaining := req.Amount
	for remaining > 0 {
		if len(pay.Parts) == opts.MaxParts {
			return Payment{}, fmt.Errorf("%w: %d msat left after %d parts", ErrNoRoute, remaining, opts.MaxParts)
		}
		// Try the remaining amount, then halves of it down to MinPart; take the first part
		// likely enough, or else the one with the largest expected delivery (amount times
		// probability).
		var best Route
		found := false
		bestValue := -1.0
		for part := remaining; part > 0; part = part / 2 / opts.Granularity * opts.Granularity {
			r, err := f.find(withAmount(req, part), planned)
			if err != nil && !errors.Is(err, ErrNoRoute) {
				return Payment{}, err
			}
			if err == nil {
				if v := float64(part) * r.Probability; v > bestValue {
					best, found, bestValue = r, true, v
				}
				if r.Probability >= opts.MinProbability {
					break
				}
			}
			if part/2 < opts.MinPart {
				break
			}
		}
		if !found {
			return Payment{}, fmt.Errorf("%w: no part of %d msat fits", ErrNoRoute, remaining)
		}
		for i, h := range best.Hops {
			planned[key{h.ChannelID, uint8(h.direction)}] += best.sentOver(i)
		}
		pay.Parts = append(pay.Parts, best)
		pay.Amount += best.Hops[len(best.Hops)-1].AmtToForward
		pay.TotalFees += best.TotalFees
		pay.Probability *= best.Probability
		remaining -= best.Hops[len(best.Hops)-1].AmtToForward
	}
	return pay, nil
}

func withAmount(r Request, amt uint64) Request {
	r.Amount = amt
	return r
}
