package gossip

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// fakePeer answers gossip queries from a generated set the way lnd does, over channels.
type fakePeer struct {
	set     *gossipgen.Set
	toBox   chan lnwire.Message
	mu      sync.Mutex
	dropped error
	queried int // short channel ids asked for
	filter  *lnwire.GossipTimestampRange
	// tamper changes the messages sent for one id.
	tamper func(m lnwire.Message) lnwire.Message
}

func newFakePeer(set *gossipgen.Set) *fakePeer {
	return &fakePeer{set: set, toBox: make(chan lnwire.Message, 100_000)}
}

func (p *fakePeer) Recv(ctx context.Context) (lnwire.Message, error) {
	select {
	case m := <-p.toBox:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *fakePeer) Drop(err error) {
	p.mu.Lock()
	p.dropped = err
	p.mu.Unlock()
}

func (p *fakePeer) send(m lnwire.Message) {
	if p.tamper != nil {
		m = p.tamper(m)
	}
	p.toBox <- m
}

func (p *fakePeer) Send(m lnwire.Message) error {
	switch q := m.(type) {
	case *lnwire.QueryChannelRange:
		var ids []lnwire.ShortChannelID
		latest := latest(p.set)
		for _, a := range p.set.Channels {
			ids = append(ids, a.ShortChannelID)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i].ToUint64() < ids[j].ToUint64() })
		// Two replies, like lnd splitting a long range.
		half := len(ids) / 2
		mid := ids[half].BlockHeight
		for k, part := range [][]lnwire.ShortChannelID{ids[:half], ids[half:]} {
			r := &lnwire.ReplyChannelRange{ChainHash: q.ChainHash, EncodingType: lnwire.EncodingSortedPlain, ShortChanIDs: part, Complete: 1}
			if k == 0 {
				r.FirstBlockHeight, r.NumBlocks = 0, mid
			} else {
				r.FirstBlockHeight, r.NumBlocks = mid, q.LastBlockHeight()-mid+1
			}
			for _, id := range part {
				var ts lnwire.ChanUpdateTimestamps
				if u := latest[[2]uint64{id.ToUint64(), 0}]; u != nil {
					ts.Timestamp1 = u.Timestamp
				}
				if u := latest[[2]uint64{id.ToUint64(), 1}]; u != nil {
					ts.Timestamp2 = u.Timestamp
				}
				r.Timestamps = append(r.Timestamps, ts)
			}
			p.send(r)
		}
	case *lnwire.QueryShortChanIDs:
		p.mu.Lock()
		p.queried += len(q.ShortChanIDs)
		p.mu.Unlock()
		want := make(map[lnwire.ShortChannelID]bool)
		for _, id := range q.ShortChanIDs {
			want[id] = true
		}
		nodes := make(map[[33]byte]bool)
		for _, a := range p.set.Channels {
			if want[a.ShortChannelID] {
				p.send(a)
				nodes[a.NodeID1], nodes[a.NodeID2] = true, true
			}
		}
		for _, u := range p.set.Updates {
			if want[u.ShortChannelID] {
				p.send(u)
			}
		}
		for _, n := range p.set.Nodes {
			if nodes[n.NodeID] {
				p.send(n)
			}
		}
		p.send(&lnwire.ReplyShortChanIDsEnd{ChainHash: q.ChainHash, Complete: 1})
	case *lnwire.GossipTimestampRange:
		p.mu.Lock()
		p.filter = q
		p.mu.Unlock()
	}
	return nil
}

func runSession(t *testing.T, p *fakePeer, in *Ingester) (SyncStats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	synced := make(chan SyncStats, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- RunSession(ctx, p, SessionConfig{Chain: testChain, Ingester: in, Graph: in.graph, OnSynced: func(s SyncStats) { synced <- s }})
	}()
	select {
	case s := <-synced:
		// Live gossip after the sync: a newer update reaches the graph.
		cancel()
		<-errc
		return s, nil
	case err := <-errc:
		return SyncStats{}, err
	}
}

func TestSessionSync(t *testing.T) {
	set := smallSet(t)
	in, g, _ := newIngester(t, nil)
	p := newFakePeer(set)
	st, err := runSession(t, p, in)
	if err != nil {
		t.Fatal(err)
	}
	if st.Offered != len(set.Channels) || st.Requested != len(set.Channels) {
		t.Fatalf("sync stats %+v", st)
	}
	if s := g.Stats(); s.Channels != len(set.Channels) || s.Policies != len(latest(set)) || s.Announced != len(set.Nodes) {
		t.Fatalf("graph %+v", s)
	}
	if p.filter == nil || p.filter.TimestampRange == 0 {
		t.Fatal("no gossip_timestamp_filter after the sync")
	}
	// A second sync (a restart) asks for nothing: the box has everything.
	p2 := newFakePeer(set)
	if st, err := runSession(t, p2, in); err != nil || st.Requested != 0 || p2.queried != 0 {
		t.Fatalf("resync asked for %d (%+v, %v)", p2.queried, st, err)
	}
}

func TestSessionDropsInvalid(t *testing.T) {
	set := smallSet(t)
	in, g, _ := newIngester(t, nil)
	p := newFakePeer(set)
	victim := set.Updates[len(set.Updates)/2].ShortChannelID
	p.tamper = func(m lnwire.Message) lnwire.Message {
		if u, ok := m.(*lnwire.ChannelUpdate1); ok && u.ShortChannelID == victim {
			bad := *u
			data, _ := bad.DataToSign()
			bad.Signature, _ = lnwire.NewSigFromSignature(ecdsa.Sign(set.Keys[1], chainhash.DoubleHashB(append(data, 1))))
			return &bad
		}
		return m
	}
	_, err := runSession(t, p, in)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("session error %v, want ErrInvalid", err)
	}
	if p.dropped == nil {
		t.Fatal("the peer was not dropped")
	}
	if c, ok := g.Channel(victim.ToUint64()); ok && (c.Policies[0] != nil || c.Policies[1] != nil) {
		t.Fatalf("the tampered channel has policies %+v", c.Policies)
	}
}

// TestSessionRateLimit: a peer sending faster than its rate is slowed down (its messages
// wait), not served ahead of the limit.
func TestSessionRateLimit(t *testing.T) {
	set := smallSet(t)
	in, g, _ := newIngester(t, nil)
	conn := &scriptConn{}
	for _, a := range set.Channels[:60] {
		conn.msgs = append(conn.msgs, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go func() {
		_ = RunSession(ctx, conn, SessionConfig{Chain: testChain, Ingester: in, Graph: g, Rate: 100, Burst: 10, StepTimeout: time.Hour})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().Channels < 60 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if g.Stats().Channels != 60 {
		t.Fatalf("%d of 60 channels after %v", g.Stats().Channels, took)
	}
	// 10 at once, then 50 at 100 per second: at least half a second.
	if took < 450*time.Millisecond {
		t.Fatalf("60 messages at 100/s with a burst of 10 took only %v", took)
	}
}
