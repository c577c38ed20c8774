package route

import (
	"container/heap"
	"errors"
	"fmt"
	"math"

	"github.com/anya-edge/anya/node/lightning/graph"
)

// Defaults of Request.
const (
	DefaultFinalCLTVDelta = 40
	DefaultMaxCLTV        = 2016
	// DefaultAttemptCostMsat and DefaultAttemptCostPPM price a failed attempt (lnd's
	// defaults: 100 sat plus 0.1% of the amount): the cost of a hop is its fee plus this
	// price times -ln(success probability), so that probabilities multiply along a route
	// while costs add, as Dijkstra needs.
	DefaultAttemptCostMsat = 100_000
	DefaultAttemptCostPPM  = 1000
	// riskFactor prices the time funds are locked, per msat and block, as lnd's 15 ppb.
	riskFactor = 15e-9
)

// ErrNoRoute is returned when no route satisfies the request.
var ErrNoRoute = errors.New("route: no route")

// Request asks for a route.
type Request struct {
	Source, Target graph.NodeID
	// Amount is what the target receives, msat.
	Amount uint64
	// FinalCLTVDelta is the target's CLTV delta (DefaultFinalCLTVDelta).
	FinalCLTVDelta uint16
	// CurrentHeight is the chain height the time locks are relative to.
	CurrentHeight uint32
	// MaxCLTV bounds the total time lock above CurrentHeight (DefaultMaxCLTV).
	MaxCLTV uint32
	// MaxFee bounds the fees, msat (0: no bound).
	MaxFee uint64
	// AttemptCostMsat and AttemptCostPPM price a failed attempt (defaults above); a higher
	// price prefers likelier routes over cheaper ones.
	AttemptCostMsat, AttemptCostPPM uint64
}

func (r *Request) defaults() {
	if r.FinalCLTVDelta == 0 {
		r.FinalCLTVDelta = DefaultFinalCLTVDelta
	}
	if r.MaxCLTV == 0 {
		r.MaxCLTV = DefaultMaxCLTV
	}
	if r.AttemptCostMsat == 0 && r.AttemptCostPPM == 0 {
		r.AttemptCostMsat, r.AttemptCostPPM = DefaultAttemptCostMsat, DefaultAttemptCostPPM
	}
}

// Hop is one channel of a route, named by the node it reaches.
type Hop struct {
	ChannelID uint64       `json:"chan_id"`
	PubKey    graph.NodeID `json:"pub_key"`
	// AmtToForward is what the node forwards to the next hop (the final amount at the
	// target), msat.
	AmtToForward uint64 `json:"amt_to_forward_msat"`
	// Fee is what the node charges to forward (0 at the target), msat.
	Fee uint64 `json:"fee_msat"`
	// Expiry is the time lock of the HTLC the node sends on (the final one at the target).
	Expiry uint32 `json:"expiry"`
	// Probability is the model's chance that the channel carries the amount.
	Probability float64 `json:"probability"`

	direction int
}

// Route is a path from the source to the target with its amounts and time locks, in the
// form lnd's Route has them.
type Route struct {
	Hops []Hop `json:"hops"`
	// TotalAmount is what the source sends, fees included; TotalFees is the fees, msat.
	TotalAmount   uint64 `json:"total_amt_msat"`
	TotalFees     uint64 `json:"total_fees_msat"`
	TotalTimeLock uint32 `json:"total_time_lock"`
	// Probability is the product of the hops' probabilities.
	Probability float64 `json:"probability"`
}

// sentOver is the amount carried by the channel of hop i.
func (r Route) sentOver(i int) uint64 { return r.Hops[i].AmtToForward + r.Hops[i].Fee }

// HopKeys are the hex node ids of the hops, as lncli buildroute --hops takes them.
func (r Route) HopKeys() []string {
	out := make([]string, len(r.Hops))
	for i, h := range r.Hops {
		out[i] = h.PubKey.String()
	}
	return out
}

// Finder computes routes on a graph.
type Finder struct {
	Graph *graph.Graph
	// Model gives success probabilities (the uniform prior alone when nil).
	Model *Model
}

// Find returns the cheapest route for req, weighing fees, time locks and the probability of
// success (see Request).
func (f *Finder) Find(req Request) (Route, error) {
	return f.find(req, nil)
}

// used is liquidity already planned by other parts of a payment, per channel direction.
type used map[key]uint64

type item struct {
	node int32
	cost float64
}

type pq []item

func (q pq) Len() int                 { return len(q) }
func (q pq) Less(i, j int) bool       { return q[i].cost < q[j].cost }
func (q pq) Swap(i, j int)            { q[i], q[j] = q[j], q[i] }
func (q *pq) Push(x any)              { *q = append(*q, x.(item)) }
func (q *pq) Pop() any                { old := *q; it := old[len(old)-1]; *q = old[:len(old)-1]; return it }
func (q *pq) push(n int32, c float64) { heap.Push(q, item{n, c}) }

func (f *Finder) find(req Request, planned used) (Route, error) {
	req.defaults()
	if req.Amount == 0 {
		return Route{}, errors.New("route: zero amount")
	}
	if req.Source == req.Target {
		return Route{}, errors.New("route: source is the target")
	}
	var out Route
	var err error
	f.Graph.View(func(v graph.View) {
		out, err = f.search(v, req, planned)
	})
	return out, err
}

// search is a Dijkstra from the target back to the source, as lnd does: the amount each
// node must receive grows with the fees of the hops after it.
func (f *Finder) search(v graph.View, req Request, planned used) (Route, error) {
	src, ok := v.Index(req.Source)
	if !ok {
		return Route{}, fmt.Errorf("%w: source %s has no channels", ErrNoRoute, req.Source)
	}
	dst, ok := v.Index(req.Target)
	if !ok {
		return Route{}, fmt.Errorf("%w: target %s has no channels", ErrNoRoute, req.Target)
	}
	n := v.NumNodes()
	cost := make([]float64, n)
	amt := make([]uint64, n)
	cltv := make([]uint32, n)
	prob := make([]float64, n)
	next := make([]int32, n)
	via := make([]*graph.Channel, n)
	done := make([]bool, n)
	for i := range cost {
		cost[i] = math.Inf(1)
	}
	cost[dst], amt[dst], cltv[dst], prob[dst], next[dst] = 0, req.Amount, uint32(req.FinalCLTVDelta), 1, -1
	q := &pq{}
	q.push(dst, 0)
	for q.Len() > 0 {
		it := heap.Pop(q).(item)
		x := it.node
		if done[x] {
			continue
		}
		done[x] = true
		if x == src {
			break
		}
		for _, c := range v.Edges(x) {
			e1, e2 := v.Ends(c)
			u, dir := e1, 0 // the channel is used from u to x: u's policy applies
			if e1 == x {
				u, dir = e2, 1
			}
			if done[u] {
				continue
			}
			p := c.Policies[dir]
			a := amt[x] // carried by c from u to x
			if p == nil || p.Disabled || a < p.MinHTLC || (p.MaxHTLC > 0 && a > p.MaxHTLC) {
				continue
			}
			var already uint64
			if planned != nil {
				already = planned[key{c.ID, uint8(dir)}]
			}
			if c.Capacity > 0 && a+already > uint64(c.Capacity)*1000 {
				continue
			}
			pr := f.Model.Probability(c, dir, a, already)
			if pr <= 0 {
				continue
			}
			var fee uint64
			var delta uint32
			if u != src { // the source does not pay itself
				fee, delta = p.Fee(a), uint32(p.CLTVDelta)
			}
			total := a + fee
			if cltv[x]+delta > req.MaxCLTV || (req.MaxFee > 0 && total-req.Amount > req.MaxFee) {
				continue
			}
			attempt := float64(req.AttemptCostMsat) + float64(a)*float64(req.AttemptCostPPM)/1e6
			c2 := cost[x] + float64(fee) + riskFactor*float64(a)*float64(delta) + attempt*-math.Log(pr)
			if c2 < cost[u] {
				cost[u], amt[u], cltv[u], prob[u], next[u], via[u] = c2, total, cltv[x]+delta, prob[x]*pr, x, c
				q.push(u, c2)
			}
		}
	}
	if !done[src] || src == dst {
		return Route{}, fmt.Errorf("%w from %s to %s for %d msat", ErrNoRoute, req.Source, req.Target, req.Amount)
	}
	r := Route{TotalAmount: amt[src], TotalFees: amt[src] - req.Amount, TotalTimeLock: req.CurrentHeight + cltv[src], Probability: prob[src]}
	// cltv[src] counts no delta of the source: it is the time lock of the first hop's HTLC.
	for cur := src; cur != dst; cur = next[cur] {
		c, nx := via[cur], next[cur]
		h := Hop{ChannelID: c.ID, PubKey: v.ID(nx), direction: c.Direction(v.ID(cur))}
		h.AmtToForward, h.Expiry = req.Amount, req.CurrentHeight+uint32(req.FinalCLTVDelta)
		if nx != dst {
			h.AmtToForward, h.Expiry = amt[next[nx]], req.CurrentHeight+cltv[next[nx]]
		}
		h.Fee = amt[nx] - h.AmtToForward
		h.Probability = prob[cur] / prob[nx] // prob[cur] = prob[nx] * the channel's factor
		r.Hops = append(r.Hops, h)
	}
	return r, nil
}
