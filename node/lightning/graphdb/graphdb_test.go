package graphdb

import (
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/storage"
)

func nid(b byte) graph.NodeID {
	var n graph.NodeID
	n[0], n[32] = 3, b
	return n
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anya.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	chans := []graph.Channel{
		{ID: 101<<40 | 1<<16, Node1: nid(1), Node2: nid(2), Capacity: 1e6, Added: 5,
			Policies: [2]*graph.Policy{{Timestamp: 7, CLTVDelta: 40, MinHTLC: 1000, MaxHTLC: 9e8, FeeBase: 1000, FeeRate: 1}, nil}},
		{ID: 102 << 40, Node1: nid(2), Node2: nid(3), Features: []byte{1},
			Policies: [2]*graph.Policy{{Timestamp: 8, Disabled: true}, {Timestamp: 9, FeeRate: 5000}}},
		{ID: 103 << 40, Node1: nid(3), Node2: nid(4)},
	}
	nodes := []graph.Node{{ID: nid(1), Timestamp: 3, Alias: "alice", Addresses: []string{"127.0.0.1:9735"}}, {ID: nid(4), Timestamp: 1}}
	if err := s.Apply(Batch{Channels: chans, Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(Batch{Removed: []uint64{103 << 40}}); err != nil {
		t.Fatal(err)
	}
	sync := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if err := s.SetMeta(Meta{LastSync: sync}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = Open(db)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.New()
	nc, nn, err := s.Load(g)
	if err != nil {
		t.Fatal(err)
	}
	// Node 4 lost its only channel: its announcement is dropped.
	if nc != 2 || nn != 1 {
		t.Fatalf("loaded %d channels, %d nodes", nc, nn)
	}
	got := g.Channels()
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	if !reflect.DeepEqual(got, chans[:2]) {
		t.Fatalf("channels after reload\n%+v\nwant\n%+v", got, chans[:2])
	}
	if n, ok := g.Node(nid(1)); !ok || !reflect.DeepEqual(n, nodes[0]) {
		t.Fatalf("node %+v", n)
	}
	if m, err := s.Meta(); err != nil || !m.LastSync.Equal(sync) {
		t.Fatalf("meta %+v %v", m, err)
	}
}
