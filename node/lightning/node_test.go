package lightning_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/node/lightning/peer"
	"github.com/anya-edge/anya/node/lightning/peer/peertest"
	"github.com/anya-edge/anya/storage"
	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
)

const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// newBox returns a node with the box's key from the signer's derivation and a database at
// path, running until the test ends.
func newBox(t *testing.T, path string, params *chaincfg.Params, opts ...func(*lightning.Config)) (*lightning.Node, func()) {
	t.Helper()
	key, err := hsm.NodeKeyFromMnemonic(testMnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := lightning.Config{Key: key, Params: params, DB: db, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := lightning.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done; db.Close(); key.Zero() }) }
	t.Cleanup(stop)
	return n, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve plays an honest (or, with tamper, a lying) gossip peer from a generated set.
func serve(s *peertest.Session, set *gossipgen.Set, tamper func(lnwire.Message) lnwire.Message) error {
	if err := s.Init(peer.LocalFeatures()); err != nil {
		return err
	}
	q, err := peertest.RecvType[*lnwire.QueryChannelRange](s)
	if err != nil {
		return err
	}
	var ids []lnwire.ShortChannelID
	for _, a := range set.Channels {
		ids = append(ids, a.ShortChannelID)
	}
	if err := s.Send(&lnwire.ReplyChannelRange{ChainHash: q.ChainHash, FirstBlockHeight: 0, NumBlocks: q.NumBlocks, Complete: 1,
		EncodingType: lnwire.EncodingSortedPlain, ShortChanIDs: ids}); err != nil {
		return err
	}
	for {
		m, err := s.Recv()
		if err != nil {
			return nil // the box hung up
		}
		switch m := m.(type) {
		case *lnwire.Ping:
			_ = s.Send(lnwire.NewPong(make([]byte, m.NumPongBytes)))
		case *lnwire.QueryShortChanIDs:
			for _, msg := range set.Messages() {
				if tamper != nil {
					msg = tamper(msg)
				}
				if err := s.Send(msg); err != nil {
					return nil
				}
			}
			if err := s.Send(&lnwire.ReplyShortChanIDsEnd{ChainHash: m.ChainHash, Complete: 1}); err != nil {
				return nil
			}
		case *lnwire.Error:
			return errDropped
		}
	}
}

// servePeer starts a scripted peer serving set; served gets how its session ended.
func servePeer(t *testing.T, set *gossipgen.Set, tamper func(lnwire.Message) lnwire.Message) (*peertest.Remote, <-chan error) {
	remote := peertest.Listen(t)
	served := make(chan error, 1)
	go func() {
		s, err := remote.Accept()
		if err != nil {
			served <- err
			return
		}
		defer s.Close()
		served <- serve(s, set, tamper)
	}()
	return remote, served
}

var errDropped = errors.New("the box sent an error")

func genSet(t *testing.T) *gossipgen.Set {
	set, err := gossipgen.Generate(gossipgen.Params{Nodes: 20, Channels: 40, Updates: 80, Seed: 3,
		Chain: *chaincfg.RegressionNetParams.GenesisHash, Now: uint32(time.Now().Unix())})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestSyncFromPeerAndReload(t *testing.T) {
	set := genSet(t)
	path := filepath.Join(t.TempDir(), "anya.db")
	box, stop := newBox(t, path, &chaincfg.RegressionNetParams)
	remote, _ := servePeer(t, set, nil)
	if err := box.SavePeer(context.Background(), fmt.Sprintf("%x@%s", remote.PubKey().SerializeCompressed(), remote.Addr())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the graph", func() bool {
		st := box.Status()
		return st.Graph.Channels == len(set.Channels) && st.Graph.Policies == 80 && st.Graph.Announced == 20 && !st.LastSync.IsZero()
	})
	st := box.Status()
	if len(st.Peers) != 1 || !st.Peers[0].Connected {
		t.Fatalf("peers %+v", st.Peers)
	}
	if want := "03c3fec33a6929cef9428891c871592029b5ad2205396140273ccf71d6a7f7e3b6"; st.PubKey != want {
		t.Fatalf("node id %s is not the signer's %s", st.PubKey, want)
	}
	// A restart loads the graph from the database, and reconnects the saved peer (which
	// serves no more: the graph comes from the database).
	stop()
	again, _ := newBox(t, path, &chaincfg.RegressionNetParams)
	got := again.Status()
	if got.Graph.Channels != st.Graph.Channels || got.Graph.Policies != st.Graph.Policies || got.Graph.Announced != st.Graph.Announced || !got.LastSync.Equal(st.LastSync) {
		t.Fatalf("after restart %+v, before %+v", got, st)
	}
	waitFor(t, "the saved peer", func() bool {
		p := again.Status().Peers
		return len(p) == 1 && p[0].ID == fmt.Sprintf("%x", remote.PubKey().SerializeCompressed()) && p[0].Attempts > 0
	})
	if err := again.RemovePeer(again.Status().Peers[0].ID); err != nil {
		t.Fatal(err)
	}
	if len(again.Status().Peers) != 0 {
		t.Fatal("peer kept after RemovePeer")
	}
}

func TestInvalidPeerDropped(t *testing.T) {
	set := genSet(t)
	box, _ := newBox(t, filepath.Join(t.TempDir(), "anya.db"), &chaincfg.RegressionNetParams)
	victim := set.Channels[5].ShortChannelID
	remote, served := servePeer(t, set, func(m lnwire.Message) lnwire.Message {
		if a, ok := m.(*lnwire.ChannelAnnouncement1); ok && a.ShortChannelID == victim {
			bad := *a
			bad.BitcoinSig1 = a.BitcoinSig2 // a valid signature, by the wrong key
			return &bad
		}
		return m
	})
	if err := box.AddPeer(context.Background(), fmt.Sprintf("%x@%s", remote.PubKey().SerializeCompressed(), remote.Addr())); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, errDropped) {
			t.Fatalf("peer session ended with %v, want an error message from the box", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the box did not drop the lying peer")
	}
	waitFor(t, "the peer to be marked", func() bool {
		p := box.Status().Peers
		return len(p) == 1 && !p[0].Connected && strings.Contains(p[0].LastError, "invalid gossip")
	})
	if box.Graph().HasChannel(victim.ToUint64()) {
		t.Fatal("the channel with the bad signature is in the graph")
	}
	// The misbehaving peer is not retried soon (the longest back-off).
	time.Sleep(300 * time.Millisecond)
	if p := box.Status().Peers[0]; p.Attempts != 1 || time.Until(p.NextTry) < 20*time.Second {
		t.Fatalf("peer retried too soon: %+v", p)
	}
}
