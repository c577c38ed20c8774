package gossipgen

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

// TestTopology checks the mainnet-sized topology: every channel distinct, the network
// connected, and the degrees heavy-tailed (most nodes with a few channels, hubs with a
// thousand and more).
func TestTopology(t *testing.T) {
	p := Mainnet(*chaincfg.RegressionNetParams.GenesisHash, 0)
	pairs, err := topology(p, rand.New(rand.NewPCG(p.Seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != p.Channels {
		t.Fatalf("%d channels, want %d", len(pairs), p.Channels)
	}
	degree := make([]int, p.Nodes)
	parent := make([]int32, p.Nodes)
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	seen := map[[2]int32]bool{}
	for _, e := range pairs {
		if e[0] >= e[1] || seen[e] {
			t.Fatalf("channel %v repeated or not ordered", e)
		}
		seen[e] = true
		degree[e[0]]++
		degree[e[1]]++
		parent[find(e[0])] = find(e[1])
	}
	for i := range p.Nodes {
		if find(int32(i)) != find(0) {
			t.Fatalf("node %d is not connected to node 0", i)
		}
	}
	slices.Sort(degree)
	median, max := degree[len(degree)/2], degree[len(degree)-1]
	t.Logf("degree: median %d, p99 %d, max %d", median, degree[len(degree)*99/100], max)
	if median > 6 || max < 1000 {
		t.Fatalf("degrees not heavy-tailed: median %d, max %d", median, max)
	}
}

// TestSetRoundTrip: a small set's messages survive Write and Read.
func TestSetRoundTrip(t *testing.T) {
	s, err := Generate(Params{Nodes: 5, Channels: 6, Updates: 12, Seed: 2, Chain: *chaincfg.RegressionNetParams.GenesisHash, Now: 1_800_000_000})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, s.Messages()); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&b)
	if err != nil || len(got) != 6+12+5 {
		t.Fatalf("read %d messages, %v", len(got), err)
	}
}
