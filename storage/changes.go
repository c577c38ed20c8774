package storage

import (
	"maps"
	"sync"

	"go.etcd.io/bbolt"
)

// changes counts committed changes per subsystem and wakes watchers. It belongs to one DB;
// nothing about it is global.
type changes struct {
	mu       sync.Mutex
	gens     map[string]uint64
	watchers map[chan struct{}]struct{}
}

// MarkChanged records that the writable transaction tx changes subsystem: when (and only
// when) tx commits, the subsystem's generation grows and watchers are woken. Writes through
// Table, Migrate and ImportSubsystems are recorded by this package; code that writes raw
// bbolt buckets calls MarkChanged itself. Calling it several times in one transaction is
// harmless (the generation then grows by more than one). On a read-only transaction it does
// nothing, since such a transaction never commits.
func (db *DB) MarkChanged(tx *bbolt.Tx, subsystem string) {
	if tx == nil || !tx.Writable() {
		return
	}
	tx.OnCommit(func() { db.changes.bump(subsystem) })
}

// Generation returns a counter of the committed changes to subsystem recorded since Open
// (see MarkChanged). It starts at zero, only grows, and is cheap: no transaction is taken.
// Comparing two readings tells whether the subsystem may have changed in between.
func (db *DB) Generation(subsystem string) uint64 {
	db.changes.mu.Lock()
	defer db.changes.mu.Unlock()
	return db.changes.gens[subsystem]
}

// Generations returns a copy of every subsystem's generation.
func (db *DB) Generations() map[string]uint64 {
	db.changes.mu.Lock()
	defer db.changes.mu.Unlock()
	return maps.Clone(db.changes.gens)
}

// Watch returns a channel that receives a value after commits that changed a subsystem
// (see MarkChanged), and a function that stops the watch. Wake-ups are coalesced: the
// channel holds at most one pending value, so a slow reader sees one wake-up for many
// commits and then compares Generations. The channel is never closed.
func (db *DB) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	db.changes.mu.Lock()
	if db.changes.watchers == nil {
		db.changes.watchers = make(map[chan struct{}]struct{})
	}
	db.changes.watchers[ch] = struct{}{}
	db.changes.mu.Unlock()
	return ch, func() {
		db.changes.mu.Lock()
		delete(db.changes.watchers, ch)
		db.changes.mu.Unlock()
	}
}

func (c *changes) bump(subsystem string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens == nil {
		c.gens = make(map[string]uint64)
	}
	c.gens[subsystem]++
	for ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
