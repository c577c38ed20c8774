package graph

import (
	"errors"
	"testing"
	"time"
)

func id(b byte) NodeID {
	var n NodeID
	n[0], n[32] = 2, b
	return n
}

func TestGraphRules(t *testing.T) {
	g := New()
	c := &Channel{ID: 1 << 40, Node1: id(1), Node2: id(2), Added: 100}
	if !g.AddChannel(c) || g.AddChannel(&Channel{ID: 1 << 40, Node1: id(3), Node2: id(4)}) {
		t.Fatal("AddChannel must add once")
	}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"policy for unknown channel", func() error { return g.UpdatePolicy(7, 0, Policy{Timestamp: 1}) }, ErrUnknownChannel},
		{"first policy", func() error { return g.UpdatePolicy(1<<40, 0, Policy{Timestamp: 10, FeeBase: 1}) }, nil},
		{"same timestamp", func() error { return g.UpdatePolicy(1<<40, 0, Policy{Timestamp: 10, FeeBase: 2}) }, ErrStale},
		{"older", func() error { return g.UpdatePolicy(1<<40, 0, Policy{Timestamp: 9}) }, ErrStale},
		{"newer", func() error { return g.UpdatePolicy(1<<40, 0, Policy{Timestamp: 11, FeeBase: 3}) }, nil},
		{"other direction", func() error { return g.UpdatePolicy(1<<40, 1, Policy{Timestamp: 5}) }, nil},
		{"node without channel", func() error { return g.SetNode(Node{ID: id(9), Timestamp: 1}) }, ErrNoChannels},
		{"node", func() error { return g.SetNode(Node{ID: id(1), Timestamp: 5, Alias: "a"}) }, nil},
		{"node stale", func() error { return g.SetNode(Node{ID: id(1), Timestamp: 5, Alias: "b"}) }, ErrStale},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	got, _ := g.Channel(1 << 40)
	if got.Policies[0].FeeBase != 3 || got.Policies[1].Timestamp != 5 || got.LastUpdate() != 11 {
		t.Fatalf("channel %+v", got)
	}
	if n, _ := g.Node(id(1)); n.Alias != "a" {
		t.Fatalf("node %+v", n)
	}
	st := g.Stats()
	if st.Channels != 1 || st.Nodes != 2 || st.Announced != 1 || st.Policies != 2 {
		t.Fatalf("stats %+v", st)
	}

	// Pruning: the newest update is 11 (Unix), far more than two weeks ago.
	if ids := g.Stale(time.Unix(11, 0).Add(13*24*time.Hour), 14*24*time.Hour); len(ids) != 0 {
		t.Fatalf("pruned too early: %v", ids)
	}
	if ids := g.Stale(time.Unix(11, 0).Add(15*24*time.Hour), 14*24*time.Hour); len(ids) != 1 {
		t.Fatalf("stale %v", ids)
	}
	if !g.RemoveChannel(1<<40) || g.HasChannel(1<<40) {
		t.Fatal("remove")
	}
	if _, ok := g.Node(id(1)); ok {
		t.Fatal("a node without channels keeps its announcement")
	}
	g.View(func(v View) {
		i, _ := v.Index(id(1))
		if len(v.Edges(i)) != 0 {
			t.Fatal("edges left after removal")
		}
	})
}

func TestFee(t *testing.T) {
	tests := []struct {
		p    Policy
		amt  uint64
		want uint64
	}{
		{Policy{FeeBase: 1000, FeeRate: 1}, 1_000_000, 1001},
		{Policy{FeeBase: 0, FeeRate: 2500}, 400_000, 1000},
		{Policy{FeeBase: 1, FeeRate: 1}, 999_999, 1}, // rounds down like lnd
	}
	for _, tt := range tests {
		if got := tt.p.Fee(tt.amt); got != tt.want {
			t.Errorf("%+v fee(%d) = %d, want %d", tt.p, tt.amt, got, tt.want)
		}
	}
}
