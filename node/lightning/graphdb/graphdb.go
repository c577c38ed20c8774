// Package graphdb keeps the validated Lightning graph (package graph) in the box's database
// through package storage, so that a restart loads the map in a second instead of syncing
// it again from peers, and gossip only catches up on what changed meanwhile.
//
// Layout, in subsystem "lngraph": bucket "channels" holds one graph.Channel per short
// channel id (16 hex digits, so that keys sort by block height) with both policies; bucket
// "nodes" one graph.Node per node id (hex); bucket "meta" the sync record; bucket "peers"
// the peers the owner added (by node id), reconnected after a restart. Values are JSON
// through storage.Table (a field added later is a compatible change). The graph is derived
// data: losing it costs a resync, never funds.
//
// Writes come in batches (Apply): one bbolt transaction, and so one fsync, for many gossip
// messages, which is what makes the initial sync of a mainnet-sized graph affordable on
// flash storage.
package graphdb

import (
	"errors"
	"fmt"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// Subsystem is the storage subsystem of the graph.
const Subsystem = "lngraph"

var migrations = []storage.Migration{{
	Version: 1,
	Name:    "channels, nodes and sync record",
	Up: func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		for _, name := range []string{"channels", "nodes", "meta"} {
			if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	},
}, {
	Version: 2,
	Name:    "peers",
	Up: func(tx *bbolt.Tx) error {
		_, err := tx.Bucket([]byte(Subsystem)).CreateBucketIfNotExists([]byte("peers"))
		return err
	},
}}

// Meta is the sync record.
type Meta struct {
	// LastSync is when a gossip sync with a peer last completed.
	LastSync time.Time `json:"last_sync"`
}

// Store is the graph's table set.
type Store struct {
	db    *storage.DB
	chans *storage.Table[graph.Channel]
	nodes *storage.Table[graph.Node]
	meta  *storage.Table[Meta]
	peers *storage.Table[Peer]
}

// Peer is a peer the owner asked the box to keep connected.
type Peer struct {
	URI   string    `json:"uri"` // pubkey@host:port
	Added time.Time `json:"added"`
}

// Open migrates the subsystem and returns the store.
func Open(db *storage.DB) (*Store, error) {
	if err := db.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("graphdb: %w", err)
	}
	return &Store{
		db:    db,
		chans: storage.NewTable[graph.Channel](db, Subsystem, "channels"),
		nodes: storage.NewTable[graph.Node](db, Subsystem, "nodes"),
		meta:  storage.NewTable[Meta](db, Subsystem, "meta"),
		peers: storage.NewTable[Peer](db, Subsystem, "peers"),
	}, nil
}

func chanKey(id uint64) string { return fmt.Sprintf("%016x", id) }

// Batch is a set of changes written together.
type Batch struct {
	// Channels are stored whole (announcement and both policies), replacing older copies.
	Channels []graph.Channel
	Nodes    []graph.Node
	// Removed are short channel ids to delete (pruned or closed).
	Removed []uint64
}

// Empty reports whether the batch changes nothing.
func (b *Batch) Empty() bool { return len(b.Channels)+len(b.Nodes)+len(b.Removed) == 0 }

// Apply writes the batch in one transaction.
func (s *Store) Apply(b Batch) error {
	if b.Empty() {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, c := range b.Channels {
			if err := s.chans.PutTx(tx, chanKey(c.ID), c); err != nil {
				return err
			}
		}
		for _, n := range b.Nodes {
			if err := s.nodes.PutTx(tx, n.ID.String(), n); err != nil {
				return err
			}
		}
		for _, id := range b.Removed {
			if err := s.chans.DeleteTx(tx, chanKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("graphdb: apply %d channels, %d nodes, %d removals: %w", len(b.Channels), len(b.Nodes), len(b.Removed), err)
	}
	return nil
}

// Load fills g with the stored graph and returns how many channels and nodes it loaded.
// Node announcements of nodes left without channels are skipped (and deleted).
func (s *Store) Load(g *graph.Graph) (channels, nodes int, err error) {
	err = s.chans.ForEach(func(_ string, c graph.Channel) error {
		if g.AddChannel(&c) {
			channels++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("graphdb: load channels: %w", err)
	}
	var orphans []string
	err = s.nodes.ForEach(func(key string, n graph.Node) error {
		switch err := g.SetNode(n); {
		case err == nil:
			nodes++
		case errors.Is(err, graph.ErrNoChannels):
			orphans = append(orphans, key)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("graphdb: load nodes: %w", err)
	}
	for _, k := range orphans {
		if err := s.nodes.Delete(k); err != nil {
			return 0, 0, fmt.Errorf("graphdb: delete orphan node: %w", err)
		}
	}
	return channels, nodes, nil
}

// Meta returns the sync record.
func (s *Store) Meta() (Meta, error) {
	m, _, err := s.meta.Get("sync")
	if err != nil {
		return Meta{}, fmt.Errorf("graphdb: %w", err)
	}
	return m, nil
}

// SetMeta stores the sync record.
func (s *Store) SetMeta(m Meta) error {
	if err := s.meta.Put("sync", m); err != nil {
		return fmt.Errorf("graphdb: %w", err)
	}
	return nil
}

// SavePeer records a peer under its node id (hex), replacing its address.
func (s *Store) SavePeer(id string, p Peer) error {
	if err := s.peers.Put(id, p); err != nil {
		return fmt.Errorf("graphdb: save peer: %w", err)
	}
	return nil
}

// ForgetPeer deletes a peer.
func (s *Store) ForgetPeer(id string) error {
	if err := s.peers.Delete(id); err != nil {
		return fmt.Errorf("graphdb: forget peer: %w", err)
	}
	return nil
}

// Peers lists the recorded peers.
func (s *Store) Peers() ([]Peer, error) {
	var out []Peer
	err := s.peers.ForEach(func(_ string, p Peer) error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("graphdb: peers: %w", err)
	}
	return out, nil
}
