package gossip

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/graphdb"
	"github.com/anya-edge/anya/storage"
	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/lnwire"
)

var (
	testChain = *chaincfg.RegressionNetParams.GenesisHash
	testNow   = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

func smallSet(t testing.TB) *gossipgen.Set {
	t.Helper()
	s, err := gossipgen.Generate(gossipgen.Params{Nodes: 30, Channels: 120, Updates: 300, Seed: 7, Chain: testChain, Now: uint32(testNow.Unix()), Disabled: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newIngester(t testing.TB, f FundingChecker) (*Ingester, *graph.Graph, *graphdb.Store) {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := graphdb.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.New()
	return NewIngester(IngesterConfig{Chain: testChain, Graph: g, Store: st, Funding: f, Now: func() time.Time { return testNow }}), g, st
}

// latest computes, from the set itself, the newest update of every direction.
func latest(s *gossipgen.Set) map[[2]uint64]*lnwire.ChannelUpdate1 {
	m := make(map[[2]uint64]*lnwire.ChannelUpdate1)
	for _, u := range s.Updates {
		k := [2]uint64{u.ShortChannelID.ToUint64(), uint64(u.ChannelFlags & 1)}
		if old, ok := m[k]; !ok || u.Timestamp > old.Timestamp {
			m[k] = u
		}
	}
	return m
}

func TestIngestValidSet(t *testing.T) {
	s := smallSet(t)
	in, g, st := newIngester(t, nil)
	res, err := in.Process(context.Background(), s.Messages())
	if err != nil || res.Invalid != nil {
		t.Fatalf("process: %v %v", err, res.Invalid)
	}
	if res.Channels != len(s.Channels) || res.Nodes != len(s.Nodes) {
		t.Fatalf("result %+v", res)
	}
	want := latest(s)
	for k, u := range want {
		c, ok := g.Channel(k[0])
		if !ok || c.Policies[k[1]] == nil {
			t.Fatalf("channel %v direction %d missing", graph.SCIDString(k[0]), k[1])
		}
		p := c.Policies[k[1]]
		if p.Timestamp != u.Timestamp || p.FeeBase != u.BaseFee || p.FeeRate != u.FeeRate || p.CLTVDelta != u.TimeLockDelta ||
			p.Disabled != (u.ChannelFlags&lnwire.ChanUpdateDisabled != 0) || p.MaxHTLC != uint64(u.HtlcMaximumMsat) {
			t.Fatalf("policy %+v, update %+v", p, u)
		}
	}
	if st := g.Stats(); st.Policies != len(want) {
		t.Fatalf("stats %+v, want %d policies", st, len(want))
	}
	// The store has the same graph.
	g2 := graph.New()
	if nc, nn, err := st.Load(g2); err != nil || nc != len(s.Channels) || nn != len(s.Nodes) {
		t.Fatalf("reload %d %d %v", nc, nn, err)
	}
	if g2.Stats().Policies != len(want) {
		t.Fatal("reloaded policies differ")
	}
	// Everything again: all ignored (duplicates and stale).
	res, _ = in.Process(context.Background(), s.Messages())
	if res.Channels+res.Updates+res.Nodes != 0 || res.Invalid != nil {
		t.Fatalf("replay applied something: %+v", res)
	}
}

func TestIngestBadInput(t *testing.T) {
	s := smallSet(t)
	wrongKey := s.Keys[0]
	badSig := func(data []byte) lnwire.Sig {
		sig, _ := lnwire.NewSigFromSignature(ecdsa.Sign(wrongKey, chainhash.DoubleHashB(data)))
		return sig
	}
	tests := []struct {
		name        string
		msgs        func() []lnwire.Message
		wantInvalid bool
		check       func(t *testing.T, g *graph.Graph, r Result)
	}{
		{"announcement with a bad bitcoin signature", func() []lnwire.Message {
			a := *s.Channels[0]
			data, _ := a.DataToSign()
			a.BitcoinSig2 = badSig(data)
			return []lnwire.Message{&a}
		}, true, func(t *testing.T, g *graph.Graph, r Result) {
			if g.HasChannel(s.Channels[0].ShortChannelID.ToUint64()) {
				t.Fatal("channel with a bad signature added")
			}
		}},
		{"announcement with a changed field", func() []lnwire.Message {
			a := *s.Channels[1]
			a.ShortChannelID.TxIndex++
			return []lnwire.Message{&a}
		}, true, nil},
		{"node ids out of order", func() []lnwire.Message {
			a := *s.Channels[2]
			a.NodeID1, a.NodeID2 = a.NodeID2, a.NodeID1
			return []lnwire.Message{&a}
		}, true, nil},
		{"update signed by the other node", func() []lnwire.Message {
			u := *firstUpdate(s, s.Channels[3])
			data, _ := u.DataToSign()
			u.Signature = badSig(data)
			return []lnwire.Message{s.Channels[3], &u}
		}, true, func(t *testing.T, g *graph.Graph, r Result) {
			if r.Channels != 1 || r.Updates != 0 {
				t.Fatalf("result %+v", r)
			}
		}},
		{"node announcement with bad signature", func() []lnwire.Message {
			n := *s.Nodes[4]
			n.Timestamp++
			return []lnwire.Message{s.Channels[4], &n}
		}, true, nil},
		{"other chain ignored", func() []lnwire.Message {
			a := *s.Channels[5]
			a.ChainHash = *chaincfg.MainNetParams.GenesisHash
			return []lnwire.Message{&a}
		}, false, func(t *testing.T, g *graph.Graph, r Result) {
			if r.Ignored != 1 || g.Stats().Channels != 0 {
				t.Fatalf("result %+v", r)
			}
		}},
		{"update before its announcement is kept", func() []lnwire.Message {
			return []lnwire.Message{firstUpdate(s, s.Channels[6]), s.Channels[6]}
		}, false, func(t *testing.T, g *graph.Graph, r Result) {
			if r.Channels != 1 || r.Updates != 1 {
				t.Fatalf("result %+v", r)
			}
		}},
		{"node without channel ignored", func() []lnwire.Message { return []lnwire.Message{s.Nodes[7]} }, false,
			func(t *testing.T, g *graph.Graph, r Result) {
				if r.Nodes != 0 || r.Ignored != 1 {
					t.Fatalf("result %+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, g, _ := newIngester(t, nil)
			var res Result
			var err error
			// The "update before announcement" case arrives in two batches.
			for _, m := range tt.msgs() {
				var r Result
				r, err = in.Process(context.Background(), []lnwire.Message{m})
				res.Channels += r.Channels
				res.Updates += r.Updates
				res.Nodes += r.Nodes
				res.Ignored += r.Ignored
				if res.Invalid == nil {
					res.Invalid = r.Invalid
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if (res.Invalid != nil) != tt.wantInvalid || (res.Invalid != nil && !errors.Is(res.Invalid, ErrInvalid)) {
				t.Fatalf("invalid = %v, want invalid %v", res.Invalid, tt.wantInvalid)
			}
			if tt.check != nil {
				tt.check(t, g, res)
			}
		})
	}
}

func firstUpdate(s *gossipgen.Set, a *lnwire.ChannelAnnouncement1) *lnwire.ChannelUpdate1 {
	for _, u := range s.Updates {
		if u.ShortChannelID == a.ShortChannelID {
			return u
		}
	}
	panic("no update")
}

type fakeFunding map[uint64]int64

func (f fakeFunding) Funding(_ context.Context, a *lnwire.ChannelAnnouncement1) (Funding, error) {
	if c, ok := f[a.ShortChannelID.ToUint64()]; ok {
		return Funding{Value: c, Outpoint: fakeOutpoint(a.ShortChannelID.ToUint64())}, nil
	}
	return Funding{}, ErrFunding
}

func fakeOutpoint(id uint64) wire.OutPoint {
	return wire.OutPoint{Hash: chainhash.HashH([]byte(graph.SCIDString(id)))}
}

func TestIngestFunding(t *testing.T) {
	s := smallSet(t)
	ok := s.Channels[0].ShortChannelID.ToUint64()
	in, g, _ := newIngester(t, fakeFunding{ok: 12345})
	res, err := in.Process(context.Background(), []lnwire.Message{s.Channels[0], s.Channels[1]})
	if err != nil || res.Invalid != nil {
		t.Fatal(err, res.Invalid)
	}
	if res.Channels != 1 || res.Ignored != 1 {
		t.Fatalf("result %+v", res)
	}
	if c, _ := g.Channel(ok); c.Capacity != 12345 {
		t.Fatalf("capacity %d", c.Capacity)
	}
	// An update whose htlc_maximum exceeds the capacity is ignored (BOLT 7).
	u := firstUpdate(s, s.Channels[0])
	if res, _ := in.Process(context.Background(), []lnwire.Message{u}); res.Updates != 0 || res.Invalid != nil {
		t.Fatalf("update above capacity: %+v", res)
	}
}

func TestChannelClosedOnChain(t *testing.T) {
	s := smallSet(t)
	f := fakeFunding{}
	for _, a := range s.Channels[:3] {
		f[a.ShortChannelID.ToUint64()] = 1_000_000
	}
	in, g, st := newIngester(t, f)
	if res, err := in.Process(context.Background(), []lnwire.Message{s.Channels[0], s.Channels[1], s.Channels[2]}); err != nil || res.Channels != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	closed := s.Channels[1].ShortChannelID.ToUint64()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: fakeOutpoint(closed)})
	other := wire.NewMsgTx(2)
	other.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 7}})
	block := &wire.MsgBlock{Transactions: []*wire.MsgTx{other, tx}}
	n, err := in.BlockConnected(block)
	if err != nil || n != 1 {
		t.Fatalf("closed %d, %v", n, err)
	}
	if g.HasChannel(closed) || !g.HasChannel(s.Channels[0].ShortChannelID.ToUint64()) {
		t.Fatal("the wrong channels are left")
	}
	g2 := graph.New()
	if nc, _, _ := st.Load(g2); nc != 2 || g2.HasChannel(closed) {
		t.Fatalf("store keeps %d channels", nc)
	}
	// A restarted ingester rebuilds its index of funding outputs from the graph.
	in2 := NewIngester(IngesterConfig{Chain: testChain, Graph: g2})
	tx.TxIn[0].PreviousOutPoint = fakeOutpoint(s.Channels[2].ShortChannelID.ToUint64())
	if n, err := in2.BlockConnected(block); err != nil || n != 1 {
		t.Fatalf("after restart: closed %d, %v", n, err)
	}
}

func TestPrune(t *testing.T) {
	s := smallSet(t)
	in, g, st := newIngester(t, nil)
	if _, err := in.Process(context.Background(), s.Messages()); err != nil {
		t.Fatal(err)
	}
	// The set's updates are at most 7 days old at testNow: nothing to prune.
	if n, err := in.Prune(14 * 24 * time.Hour); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	in.now = func() time.Time { return testNow.Add(30 * 24 * time.Hour) }
	if n, err := in.Prune(14 * 24 * time.Hour); err != nil || n != len(s.Channels) {
		t.Fatalf("pruned %d of %d, %v", n, len(s.Channels), err)
	}
	if g.Stats().Channels != 0 {
		t.Fatal("graph not pruned")
	}
	g2 := graph.New()
	if nc, _, _ := st.Load(g2); nc != 0 {
		t.Fatalf("store keeps %d pruned channels", nc)
	}
}
