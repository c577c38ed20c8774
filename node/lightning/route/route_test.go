package route

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
)

func nid(b byte) graph.NodeID {
	var n graph.NodeID
	n[0], n[32] = 2, b
	return n
}

// ch adds a channel a-b with the policy pab for a->b and pba for b->a.
func ch(g *graph.Graph, id uint64, a, b byte, capSat int64, pab, pba *graph.Policy) {
	n1, n2 := nid(a), nid(b)
	if a > b {
		n1, n2 = n2, n1
		pab, pba = pba, pab
	}
	g.AddChannel(&graph.Channel{ID: id, Node1: n1, Node2: n2, Capacity: capSat, Policies: [2]*graph.Policy{pab, pba}})
}

func pol(base, ppm uint32, cltv uint16) *graph.Policy {
	return &graph.Policy{Timestamp: 1, FeeBase: base, FeeRate: ppm, CLTVDelta: cltv, MinHTLC: 1000}
}

// diamond: 1 -> 2 -> 4 (cheap) and 1 -> 3 -> 4 (dear), 1M sat channels.
func diamond() *graph.Graph {
	g := graph.New()
	ch(g, 1, 1, 2, 1_000_000, pol(1000, 1, 40), pol(1000, 1, 40))
	ch(g, 2, 2, 4, 1_000_000, pol(1000, 100, 40), pol(1000, 1, 40))
	ch(g, 3, 1, 3, 1_000_000, pol(1000, 1, 40), pol(1000, 1, 40))
	ch(g, 4, 3, 4, 1_000_000, pol(5000, 2000, 144), pol(1000, 1, 40))
	return g
}

func TestFind(t *testing.T) {
	tests := []struct {
		name     string
		g        func() *graph.Graph
		amt      uint64
		req      func(*Request)
		wantPath []uint64 // channel ids
		wantErr  bool
	}{
		{"cheapest path", diamond, 100_000_000, nil, []uint64{1, 2}, false},
		{"disabled channel avoided", func() *graph.Graph {
			g := diamond()
			p := *pol(1000, 100, 40)
			p.Timestamp, p.Disabled = 2, true
			_ = g.UpdatePolicy(2, 0, p) // 2 -> 4 (node 2 is Node1)
			return g
		}, 100_000_000, nil, []uint64{3, 4}, false},
		{"max htlc", func() *graph.Graph {
			g := diamond()
			p := *pol(1000, 100, 40)
			p.Timestamp, p.MaxHTLC = 2, 50_000_000
			_ = g.UpdatePolicy(2, 0, p)
			return g
		}, 100_000_000, nil, []uint64{3, 4}, false},
		{"min htlc", func() *graph.Graph {
			g := diamond()
			p := *pol(1000, 100, 40)
			p.Timestamp, p.MinHTLC = 2, 200_000_000
			_ = g.UpdatePolicy(2, 0, p)
			return g
		}, 100_000_000, nil, []uint64{3, 4}, false},
		{"capacity", diamond, 1_200_000_000, nil, nil, true},
		{"cltv limit", diamond, 100_000_000, func(r *Request) { r.MaxCLTV = 60 }, nil, true},
		{"cltv limit leaves the short path", diamond, 100_000_000, func(r *Request) { r.MaxCLTV = 80 }, []uint64{1, 2}, false},
		{"fee limit", diamond, 100_000_000, func(r *Request) { r.MaxFee = 1000 }, nil, true},
		{"no policy", func() *graph.Graph {
			g := graph.New()
			ch(g, 1, 1, 4, 1_000_000, nil, pol(0, 0, 40))
			return g
		}, 1_000_000, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Finder{Graph: tt.g()}
			req := Request{Source: nid(1), Target: nid(4), Amount: tt.amt, CurrentHeight: 100}
			if tt.req != nil {
				tt.req(&req)
			}
			r, err := f.Find(req)
			if tt.wantErr {
				if !errors.Is(err, ErrNoRoute) {
					t.Fatalf("route %+v, err %v; want ErrNoRoute", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, h := range r.Hops {
				got = append(got, h.ChannelID)
			}
			if len(got) != len(tt.wantPath) || got[0] != tt.wantPath[0] || got[len(got)-1] != tt.wantPath[len(tt.wantPath)-1] {
				t.Fatalf("path %v, want %v", got, tt.wantPath)
			}
		})
	}
}

// TestAmounts checks fees and time locks against a hand computation, the way BOLT 4 and lnd
// define them: each forwarding node charges its policy's fee on what it forwards, and adds
// its delta; the source pays no fee to itself.
func TestAmounts(t *testing.T) {
	g := graph.New()
	// 1 -> 2 -> 3 -> 4
	ch(g, 1, 1, 2, 1_000_000, pol(7, 7, 7), nil)
	ch(g, 2, 2, 3, 1_000_000, pol(1000, 500, 40), nil)
	ch(g, 3, 3, 4, 1_000_000, pol(2000, 1000, 80), nil)
	f := &Finder{Graph: g}
	const amt = 50_000_000
	r, err := f.Find(Request{Source: nid(1), Target: nid(4), Amount: amt, CurrentHeight: 1000, FinalCLTVDelta: 18})
	if err != nil {
		t.Fatal(err)
	}
	fee3 := uint64(2000 + amt*1000/1_000_000)       // node 3 forwards amt to 4
	fee2 := uint64(1000 + (amt+fee3)*500/1_000_000) // node 2 forwards amt+fee3 to 3
	if r.TotalFees != fee2+fee3 || r.TotalAmount != amt+fee2+fee3 {
		t.Fatalf("fees %d, total %d; want %d, %d", r.TotalFees, r.TotalAmount, fee2+fee3, amt+fee2+fee3)
	}
	if r.TotalTimeLock != 1000+18+80+40 {
		t.Fatalf("total time lock %d", r.TotalTimeLock)
	}
	want := []Hop{
		{ChannelID: 1, PubKey: nid(2), AmtToForward: amt + fee3, Fee: fee2, Expiry: 1000 + 18 + 80},
		{ChannelID: 2, PubKey: nid(3), AmtToForward: amt, Fee: fee3, Expiry: 1000 + 18},
		{ChannelID: 3, PubKey: nid(4), AmtToForward: amt, Fee: 0, Expiry: 1000 + 18},
	}
	for i, h := range r.Hops {
		w := want[i]
		if h.ChannelID != w.ChannelID || h.PubKey != w.PubKey || h.AmtToForward != w.AmtToForward || h.Fee != w.Fee || h.Expiry != w.Expiry {
			t.Fatalf("hop %d: %+v, want %+v", i, h, w)
		}
	}
	if r.Probability <= 0 || r.Probability >= 1 {
		t.Fatalf("probability %v", r.Probability)
	}
	// The same path recomputed as merged MPP parts are gives the same route.
	var again Route
	g.View(func(v graph.View) {
		again, err = f.along(v, Request{Amount: amt, CurrentHeight: 1000, FinalCLTVDelta: 18}, nid(1), r.Hops, nil)
	})
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Fatalf("along: %+v, %v\nfind: %+v", again, err, r)
	}
}

func TestProbabilityModel(t *testing.T) {
	m := NewModel()
	now := time.Now()
	m.Now = func() time.Time { return now }
	c := &graph.Channel{ID: 9, Capacity: 1_000_000, Policies: [2]*graph.Policy{{}, {}}}
	tests := []struct {
		name string
		do   func()
		amt  uint64
		want float64
	}{
		{"prior", func() {}, 250_000_000, 0.75},
		{"after a success of 500k sat", func() { m.Succeeded(9, 0, 500_000_000) }, 250_000_000, 1},
		{"between success and capacity", func() {}, 750_000_000, 0.5},
		{"after a failure at 600k sat", func() { m.Failed(9, 0, 600_000_000) }, 550_000_000, 0.5},
		{"above the failure", func() {}, 600_000_000, 0},
	}
	for _, tt := range tests {
		tt.do()
		if got := m.Probability(c, 0, tt.amt, 0); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Fatalf("%s: probability %v, want %v", tt.name, got, tt.want)
		}
	}
	// The other direction learnt nothing.
	if got := m.Probability(c, 1, 250_000_000, 0); got != 0.75 {
		t.Fatalf("other direction %v", got)
	}
}

// TestProbabilityTradeOff: with equal fees, the route through bigger channels is likelier
// and wins; after a failure is reported the finder goes around the failed channel.
func TestProbabilityTradeOff(t *testing.T) {
	g := graph.New()
	ch(g, 1, 1, 2, 200_000, pol(0, 0, 40), nil)
	ch(g, 2, 2, 4, 200_000, pol(0, 0, 40), nil)
	ch(g, 3, 1, 3, 5_000_000, pol(0, 0, 40), nil)
	ch(g, 4, 3, 4, 5_000_000, pol(0, 0, 40), nil)
	f := &Finder{Graph: g, Model: NewModel()}
	req := Request{Source: nid(1), Target: nid(4), Amount: 150_000_000}
	r, err := f.Find(req)
	if err != nil || r.Hops[0].ChannelID != 3 {
		t.Fatalf("route %+v, %v: want the big channels", r, err)
	}
	f.Model.Report(r, 1) // channel 4 could not carry it
	r2, err := f.Find(req)
	if err != nil || r2.Hops[0].ChannelID != 1 {
		t.Fatalf("after the failure: %+v, %v", r2, err)
	}
}

func TestSplit(t *testing.T) {
	// Three disjoint paths of 1M, 600k and 400k sat from 1 to 9.
	g := graph.New()
	for i, c := range []int64{1_000_000, 600_000, 400_000} {
		mid := byte(2 + i)
		ch(g, uint64(10*i+1), 1, mid, c, pol(0, 0, 40), nil)
		ch(g, uint64(10*i+2), mid, 9, c, pol(100, 10, 40), nil)
	}
	f := &Finder{Graph: g, Model: NewModel()}
	tests := []struct {
		amt      uint64
		minParts int
		wantErr  bool
	}{
		{100_000_000, 1, false},
		{1_500_000_000, 2, false},
		{1_700_000_000, 3, false}, // 85% of all capacity: needs every path
		{2_100_000_000, 0, true},  // more than all paths together
	}
	for _, tt := range tests {
		p, err := f.Split(Request{Source: nid(1), Target: nid(9), Amount: tt.amt}, SplitOptions{MinPart: 1_000_000, Granularity: 1000})
		if tt.wantErr {
			if !errors.Is(err, ErrNoRoute) {
				t.Fatalf("%d: %+v, %v; want ErrNoRoute", tt.amt, p, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: %v", tt.amt, err)
		}
		t.Logf("%d msat: %d parts, fees %d msat, probability %.3g", tt.amt, len(p.Parts), p.TotalFees, p.Probability)
		if p.Amount != tt.amt || len(p.Parts) < tt.minParts {
			t.Fatalf("%d: %d parts delivering %d", tt.amt, len(p.Parts), p.Amount)
		}
		load := make(map[uint64]uint64)
		capOf := map[uint64]int64{}
		for _, c := range g.Channels() {
			capOf[c.ID] = c.Capacity
		}
		for _, r := range p.Parts {
			if r.Hops[len(r.Hops)-1].AmtToForward%1000 != 0 {
				t.Fatalf("%d: part of %d msat, not whole sat", tt.amt, r.Hops[len(r.Hops)-1].AmtToForward)
			}
			for i := range r.Hops {
				load[r.Hops[i].ChannelID] += r.sentOver(i)
			}
		}
		for id, l := range load {
			if l > uint64(capOf[id])*1000 {
				t.Fatalf("%d: channel %d carries %d msat over its capacity %d sat", tt.amt, id, l, capOf[id])
			}
		}
	}
}
