package route

import (
	"errors"
	"fmt"

	"github.com/anya-edge/anya/node/lightning/graph"
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
	if out, in := f.edgeCapacity(req); out < req.Amount || in < req.Amount {
		return Payment{}, fmt.Errorf("%w: the source can send %d msat and the target receive %d msat, less than %d", ErrNoRoute, out, in, req.Amount)
	}
	planned := make(used)
	pay := Payment{Probability: 1}
	searches := 0
	start := req.Amount // the first size tried for a part: twice the last part, at most
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
		for part := min(remaining, start); part > 0; part = part / 2 / opts.Granularity * opts.Granularity {
			if searches++; searches > maxSearches*opts.MaxParts {
				return Payment{}, fmt.Errorf("%w: no split found within %d searches", ErrNoRoute, searches-1)
			}
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
		start = 2 * best.Hops[len(best.Hops)-1].AmtToForward
		pay.Amount += best.Hops[len(best.Hops)-1].AmtToForward
		pay.TotalFees += best.TotalFees
		pay.Probability *= best.Probability
		remaining -= best.Hops[len(best.Hops)-1].AmtToForward
	}
	return f.merge(req, pay)
}

// merge joins parts that took the same channels into one part (one HTLC instead of
// several), recomputing its amounts and time locks along that path.
func (f *Finder) merge(req Request, pay Payment) (Payment, error) {
	type group struct {
		hops []Hop
		amt  uint64
	}
	var order []string
	groups := make(map[string]*group)
	for _, r := range pay.Parts {
		k := fmt.Sprint(r.HopKeys(), channelIDs(r))
		g, ok := groups[k]
		if !ok {
			g = &group{hops: r.Hops}
			groups[k] = g
			order = append(order, k)
		}
		g.amt += r.Hops[len(r.Hops)-1].AmtToForward
	}
	if len(order) == len(pay.Parts) {
		return pay, nil
	}
	out := Payment{Probability: 1}
	planned := make(used)
	var err error
	f.Graph.View(func(v graph.View) {
		for _, k := range order {
			g := groups[k]
			var r Route
			if r, err = f.along(v, withAmount(req, g.amt), req.Source, g.hops, planned); err != nil {
				return
			}
			for i, h := range r.Hops {
				planned[key{h.ChannelID, uint8(h.direction)}] += r.sentOver(i)
			}
			out.Parts = append(out.Parts, r)
			out.Amount += g.amt
			out.TotalFees += r.TotalFees
			out.Probability *= r.Probability
		}
	})
	if err != nil {
		return Payment{}, fmt.Errorf("route: merge parts: %w", err)
	}
	return out, nil
}

func channelIDs(r Route) []uint64 {
	ids := make([]uint64, len(r.Hops))
	for i, h := range r.Hops {
		ids[i] = h.ChannelID
	}
	return ids
}

// along computes the route for req over the channels of path (hops from source), as search
// would: the amounts and time locks grow from the target back.
func (f *Finder) along(v graph.View, req Request, source graph.NodeID, path []Hop, planned used) (Route, error) {
	n := len(path)
	chans := make([]*graph.Channel, n)
	dirs := make([]int, n)
	carried := make([]uint64, n) // what channel i carries = what node i+1 receives
	cltvAt := make([]uint32, n)  // time-lock delta of the HTLC arriving at node i+1
	probs := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		from := source
		if i > 0 {
			from = path[i-1].PubKey
		}
		fi, ok := v.Index(from)
		if !ok {
			return Route{}, fmt.Errorf("%w: node %s gone", ErrNoRoute, from)
		}
		for _, e := range v.Edges(fi) {
			if e.ID == path[i].ChannelID {
				chans[i] = e
			}
		}
		c := chans[i]
		if c == nil {
			return Route{}, fmt.Errorf("%w: channel %s gone", ErrNoRoute, graph.SCIDString(path[i].ChannelID))
		}
		dirs[i] = c.Direction(from)
		if i == n-1 {
			carried[i], cltvAt[i] = req.Amount, uint32(req.FinalCLTVDelta)
		}
		p := c.Policies[dirs[i]]
		amt, already := carried[i], planned[key{c.ID, uint8(dirs[i])}]
		if p == nil || p.Disabled || amt < p.MinHTLC || (p.MaxHTLC > 0 && amt > p.MaxHTLC) || (c.Capacity > 0 && amt+already > uint64(c.Capacity)*1000) {
			return Route{}, fmt.Errorf("%w: channel %s cannot carry %d msat", ErrNoRoute, graph.SCIDString(c.ID), amt)
		}
		probs[i] = f.Model.Probability(c, dirs[i], amt, already)
		if i > 0 { // node i (the sender of channel i) forwards and charges; the source does not
			carried[i-1], cltvAt[i-1] = amt+p.Fee(amt), cltvAt[i]+uint32(p.CLTVDelta)
		}
	}
	r := Route{TotalAmount: carried[0], TotalFees: carried[0] - req.Amount, TotalTimeLock: req.CurrentHeight + cltvAt[0], Probability: 1}
	for i := range n {
		h := Hop{ChannelID: chans[i].ID, PubKey: path[i].PubKey, AmtToForward: req.Amount,
			Expiry: req.CurrentHeight + uint32(req.FinalCLTVDelta), Probability: probs[i], direction: dirs[i]}
		if i < n-1 {
			h.AmtToForward, h.Expiry = carried[i+1], req.CurrentHeight+cltvAt[i+1]
		}
		h.Fee = carried[i] - h.AmtToForward
		r.Probability *= probs[i]
		r.Hops = append(r.Hops, h)
	}
	return r, nil
}

// maxSearches bounds the route searches per part of a split.
const maxSearches = 8

// edgeCapacity sums the capacity of the source's usable outgoing channel directions and of
// the target's usable incoming ones, msat: no split can carry more.
func (f *Finder) edgeCapacity(req Request) (out, in uint64) {
	sum := func(v graph.View, id graph.NodeID, from bool) uint64 {
		i, ok := v.Index(id)
		if !ok {
			return 0
		}
		var total uint64
		for _, c := range v.Edges(i) {
			dir := c.Direction(id) // the direction leaving id
			if !from {
				dir = 1 - dir
			}
			if p := c.Policies[dir]; p != nil && !p.Disabled {
				total += capacityMsat(c, p)
			}
		}
		return total
	}
	f.Graph.View(func(v graph.View) {
		out, in = sum(v, req.Source, true), sum(v, req.Target, false)
	})
	return out, in
}

func withAmount(r Request, amt uint64) Request {
	r.Amount = amt
	return r
}
