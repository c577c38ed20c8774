package gossip

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"

	"github.com/lightningnetwork/lnd/lnwire"
)

// FuzzIngest feeds decoded messages of any content to the ingester: it must not panic, must
// not grow without bound, and what it keeps must satisfy the graph's invariants.
func FuzzIngest(f *testing.F) {
	set := smallSet(f)
	for i := range 3 {
		var b bytes.Buffer
		for _, m := range []lnwire.Message{set.Channels[i], set.Updates[2*i], set.Nodes[i]} {
			if _, err := lnwire.WriteMessage(&b, m, 0); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := graph.New() // memory only: a database per input would make fuzzing crawl
		in := NewIngester(IngesterConfig{Chain: testChain, Graph: g, Now: func() time.Time { return testNow }})
		r := bytes.NewReader(data)
		var msgs []lnwire.Message
		for r.Len() > 0 && len(msgs) < 64 {
			m, err := lnwire.ReadMessage(r, 0)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		// Twice: the second pass exercises duplicates and pending updates.
		for range 2 {
			if _, err := in.Process(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
		}
		if len(in.pending) > maxPending {
			t.Fatalf("%d pending updates", len(in.pending))
		}
		for _, c := range g.Channels() {
			if bytes.Compare(c.Node1[:], c.Node2[:]) >= 0 {
				t.Fatalf("channel %x with unordered nodes", c.ID)
			}
			for _, p := range c.Policies {
				if p != nil && p.MaxHTLC != 0 && p.MaxHTLC < p.MinHTLC {
					t.Fatalf("policy %+v kept", p)
				}
			}
		}
	})
}
