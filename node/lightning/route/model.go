package route

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
)

// DefaultHalfLife is how fast what was learnt from payments fades back to the prior.
const DefaultHalfLife = time.Hour

// key is one direction of a channel.
type key struct {
	ch  uint64
	dir uint8
}

// bound is what payments taught about a direction's liquidity: at least Lo was available
// (a success carried Lo), less than Hi was available (a failure at Hi).
type bound struct {
	lo, hi uint64 // msat; hi == 0 means no upper bound learnt
	at     time.Time
}

// Model is the success-probability model: the liquidity of each channel direction is
// uniformly distributed between 0 and the capacity (the prior, as in "Optimally Reliable &
// Cheap Payment Flows on the Lightning Network", Pickhardt & Richter), narrowed by observed
// successes and failures, which fade with a half-life. It is safe for concurrent use.
type Model struct {
	HalfLife time.Duration
	Now      func() time.Time

	mu     sync.RWMutex
	bounds map[key]bound
	n      atomic.Int64 // len(bounds): the prior alone needs no lock
}

// NewModel returns a model with only the prior.
func NewModel() *Model {
	return &Model{HalfLife: DefaultHalfLife, Now: time.Now, bounds: make(map[key]bound)}
}

// capacityMsat is the upper bound of a direction's liquidity.
func capacityMsat(c *graph.Channel, p *graph.Policy) uint64 {
	if c.Capacity > 0 {
		return uint64(c.Capacity) * 1000
	}
	if p != nil && p.MaxHTLC > 0 {
		return p.MaxHTLC // no chain backend: the largest HTLC is the best known bound
	}
	return 0
}

// Probability is the chance that amt msat (plus used msat already planned through the same
// direction by other parts of a payment) fits in the direction's liquidity.
func (m *Model) Probability(c *graph.Channel, dir int, amt, used uint64) float64 {
	capacity := capacityMsat(c, c.Policies[dir&1])
	if capacity == 0 {
		return 0.5 // nothing known: an even chance
	}
	lo, hi := uint64(0), capacity
	if m != nil && m.n.Load() > 0 {
		m.mu.RLock()
		b, ok := m.bounds[key{c.ID, uint8(dir & 1)}]
		m.mu.RUnlock()
		if ok {
			w := 1.0
			if m.HalfLife > 0 {
				w = math.Exp2(-float64(m.Now().Sub(b.at)) / float64(m.HalfLife))
			}
			// Fade: the learnt bounds move back towards 0 and capacity.
			lo = uint64(float64(b.lo) * w)
			if b.hi > 0 && b.hi < capacity {
				hi = b.hi + uint64(float64(capacity-b.hi)*(1-w))
			}
		}
	}
	need := amt + used
	switch {
	case need <= lo:
		return 1
	case need >= hi || hi <= lo:
		return 0
	}
	// P(liquidity >= need | lo <= liquidity < hi), liquidity uniform.
	return float64(hi-need) / float64(hi-lo)
}

// Succeeded records that a payment carried amt msat through a direction.
func (m *Model) Succeeded(ch uint64, dir int, amt uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{ch, uint8(dir & 1)}
	b := m.bounds[k]
	b.lo = max(b.lo, amt)
	if b.hi != 0 && b.hi <= b.lo {
		b.hi = 0
	}
	b.at = m.Now()
	m.bounds[k] = b
	m.n.Store(int64(len(m.bounds)))
}

// Failed records that a direction could not carry amt msat.
func (m *Model) Failed(ch uint64, dir int, amt uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{ch, uint8(dir & 1)}
	b := m.bounds[k]
	if b.hi == 0 || amt < b.hi {
		b.hi = amt
	}
	if b.lo >= b.hi {
		b.lo = 0
	}
	b.at = m.Now()
	m.bounds[k] = b
	m.n.Store(int64(len(m.bounds)))
}

// Report records the outcome of a payment attempt along r: the hops before failedHop
// carried the amount; the channel of failedHop could not (failedHop < 0: success).
func (m *Model) Report(r Route, failedHop int) {
	for i, h := range r.Hops {
		amt := r.sentOver(i)
		switch {
		case failedHop < 0 || i < failedHop:
			m.Succeeded(h.ChannelID, h.direction, amt)
		case i == failedHop:
			m.Failed(h.ChannelID, h.direction, amt)
		}
	}
}
