package p2p

import (
	"sync"
	"testing"

	"github.com/anya-edge/anya/node/regtest"
)

// TestReorgFollowsHeavierBranch: two btcd nodes mine competing branches; once connected,
// the one we follow switches to the heavier branch and so do we.
func TestReorgFollowsHeavierBranch(t *testing.T) {
	a, b := regtest.Start(t), regtest.Start(t)
	a.Generate(10)
	b.Generate(15)
	var mu sync.Mutex
	var changes []Change
	m, _ := run(t, Config{Peers: []string{a.P2PAddr}, Logger: quiet, OnChange: func(c Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}})
	aBest, _ := a.Best()
	waitFor(t, "branch A", func() bool { return m.FilterTip().Hash == *aBest })
	a.Connect(b)
	a.WaitSynced(b)
	bBest, _ := b.Best()
	waitFor(t, "branch B", func() bool { return m.Chain().Tip().Hash == *bBest && m.FilterTip().Hash == *bBest })
	mu.Lock()
	defer mu.Unlock()
	var disc, conn int
	for _, c := range changes[1:] {
		disc += len(c.Disconnected)
		conn += len(c.Connected)
	}
	if disc != 10 || conn != 15 {
		t.Fatalf("reorg disconnected %d, connected %d; want 10, 15 (%d changes)", disc, conn, len(changes))
	}
}
