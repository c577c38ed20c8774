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

// scriptConn feeds a session a fixed list of messages and then blocks.
type scriptConn struct {
	msgs    []lnwire.Message
	dropped bool
}

func (c *scriptConn) Send(lnwire.Message) error { return nil }
func (c *scriptConn) Drop(error)                { c.dropped = true }
func (c *scriptConn) Recv(ctx context.Context) (lnwire.Message, error) {
	if len(c.msgs) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	m := c.msgs[0]
	c.msgs = c.msgs[1:]
	return m, nil
}

// FuzzSession feeds decoded messages of any kind (replies out of order, queries, gossip) to
// a session: no panic, no hang past its context.
func FuzzSession(f *testing.F) {
	set := smallSet(f)
	for _, ms := range [][]lnwire.Message{
		{&lnwire.ReplyChannelRange{ChainHash: testChain, NumBlocks: 10, Complete: 1, ShortChanIDs: []lnwire.ShortChannelID{set.Channels[0].ShortChannelID}}},
		{&lnwire.QueryChannelRange{ChainHash: testChain, NumBlocks: 5}, &lnwire.ReplyShortChanIDsEnd{Complete: 1}},
		{set.Channels[0], set.Updates[0]},
	} {
		var b bytes.Buffer
		for _, m := range ms {
			if _, err := lnwire.WriteMessage(&b, m, 0); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		conn := &scriptConn{}
		for r.Len() > 0 && len(conn.msgs) < 32 {
			m, err := lnwire.ReadMessage(r, 0)
			if err != nil {
				break
			}
			conn.msgs = append(conn.msgs, m)
		}
		g := graph.New()
		in := NewIngester(IngesterConfig{Chain: testChain, Graph: g, Now: func() time.Time { return testNow }})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- RunSession(ctx, conn, SessionConfig{Chain: testChain, Ingester: in, Graph: g, BatchDelay: time.Millisecond, StepTimeout: 20 * time.Millisecond})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("session did not end after its context")
		}
	})
}
