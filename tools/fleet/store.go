package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/storage"
)

// Store keeps the fleet's state. The server's logic runs inside transactions of a Store, so a
// larger store (a SQL database) implements the same two methods and Tx, with serializable
// transactions, and nothing else changes.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it durably if fn returns nil.
	// Transactions must be serializable. fn may run more than once (a store may batch
	// concurrent updates and retry one that failed), so it must only set variables it also
	// resets at its start.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is a transaction of a Store. Getters return false for a missing record; lists are
// complete snapshots (the server keeps fleets of thousands, not millions, in view).
type Tx interface {
	Token(hash string) (Token, bool, error)
	PutToken(Token) error
	DeleteToken(hash string) error
	Tokens() ([]Token, error)

	Device(id string) (Device, bool, error)
	PutDevice(Device) error
	DeleteDevice(id string) error
	Devices() ([]Device, error) // by id

	Release(id string) (Release, bool, error)
	PutRelease(Release) error
	// Releases returns the channel's releases with a counter of at least from, newest
	// (highest counter) first; every channel's when channel is "".
	Releases(channel string, from uint64) ([]Release, error)

	Outcome(release, device string) (Outcome, bool, error)
	PutOutcome(Outcome) error
	Outcomes(release string) ([]Outcome, error) // by device id
}

// Subsystem is the bucket of the fleet's state in the storage database.
const Subsystem = "fleet"

var migrations = []storage.Migration{
	{Version: 1, Name: "tokens, devices, releases, outcomes", Up: func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		for _, name := range []string{"tokens", "devices", "releases", "outcomes"} {
			if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}},
}

// BoltStore is the Store in a bbolt database through package storage: tokens by hash, devices
// by id, releases in a bucket per channel keyed by the zero-padded counter, outcomes in a
// bucket per release keyed by device id, all JSON.
//
// Updates are group-committed: one goroutine runs them, and takes every update queued while
// the previous commit was being fsynced into the next transaction. An idle server commits at
// once (bbolt's own Batch waits up to 10 ms for company); a busy one shares each fsync among
// many check-ins, which is what makes it fast on one disk. When one update of a group fails,
// the transaction is rolled back, the failing update is run on its own (its error goes to
// its caller) and the others are run again together — why Store.Update's fn may run more
// than once.
type BoltStore struct {
	db    *storage.DB
	calls chan *call
	done  chan struct{}
	loop  sync.WaitGroup
	// mu orders sends to calls before Close: Update sends under a read lock, Close marks the
	// store closed under the write lock, so nothing is queued after the committer's last look.
	mu     sync.RWMutex
	closed bool
}

// call is one queued update.
type call struct {
	fn  func(Tx) error
	err chan error
}

// maxGroup bounds the updates in one transaction.
const maxGroup = 256

// errClosed is returned by Update after Close.
var errClosed = errors.New("fleet store: closed")

// OpenBoltStore opens (creating) the database at path and migrates it.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("fleet store: %w", err)
	}
	if err := db.Migrate(Subsystem, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("fleet store: %w", err)
	}
	s := &BoltStore{db: db, calls: make(chan *call, maxGroup), done: make(chan struct{})}
	s.loop.Go(s.committer)
	return s, nil
}

// Close waits for queued updates, then closes the database.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.loop.Wait()
	return s.db.Close()
}

// View implements Store.
func (s *BoltStore) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error { return fn(&boltTx{db: s.db, tx: tx}) })
}

// Update implements Store. Once queued, the update runs even if ctx ends meanwhile (its
// caller then gets its result all the same).
func (s *BoltStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{fn: fn, err: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	s.calls <- c // the committer runs until Close, which waits for this read lock
	s.mu.RUnlock()
	return <-c.err
}

// committer runs queued updates in groups until Close.
func (s *BoltStore) committer() {
	for {
		var first *call
		select {
		case first = <-s.calls:
		case <-s.done:
			// Run what was queued before Close.
			for {
				select {
				case c := <-s.calls:
					s.commit([]*call{c})
				default:
					return
				}
			}
		}
		group := []*call{first}
	drain:
		for len(group) < maxGroup {
			select {
			case c := <-s.calls:
				group = append(group, c)
			default:
				break drain
			}
		}
		s.commit(group)
	}
}

// commit runs a group of updates in one transaction; see BoltStore.
func (s *BoltStore) commit(group []*call) {
	for len(group) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bbolt.Tx) error {
			t := &boltTx{db: s.db, tx: tx}
			for i, c := range group {
				if err := runSafe(c.fn, t); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 || len(group) == 1 {
			for _, c := range group {
				c.err <- err
			}
			return
		}
		f := group[failed]
		f.err <- s.db.Update(func(tx *bbolt.Tx) error { return runSafe(f.fn, &boltTx{db: s.db, tx: tx}) })
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// runSafe runs fn, turning a panic into an error so that one bad update cannot take the
// committer (and every other caller) down.
func runSafe(fn func(Tx) error, tx Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fleet store: update panicked: %v", r)
		}
	}()
	return fn(tx)
}

type boltTx struct {
	db *storage.DB
	tx *bbolt.Tx
}

func (t *boltTx) tokens() *storage.Table[Token] {
	return storage.NewTable[Token](t.db, Subsystem, "tokens")
}
func (t *boltTx) devices() *storage.Table[Device] {
	return storage.NewTable[Device](t.db, Subsystem, "devices")
}
func (t *boltTx) releases(channel string) *storage.Table[Release] {
	return storage.NewTable[Release](t.db, Subsystem, "releases", channel)
}
func (t *boltTx) outcomes(release string) *storage.Table[Outcome] {
	return storage.NewTable[Outcome](t.db, Subsystem, "outcomes", release)
}

func (t *boltTx) Token(hash string) (Token, bool, error) { return t.tokens().GetTx(t.tx, hash) }
func (t *boltTx) PutToken(k Token) error                 { return t.tokens().PutTx(t.tx, k.Hash, k) }
func (t *boltTx) DeleteToken(hash string) error          { return t.tokens().DeleteTx(t.tx, hash) }
func (t *boltTx) Tokens() ([]Token, error)               { return all(t.tx, t.tokens()) }

func (t *boltTx) Device(id string) (Device, bool, error) { return t.devices().GetTx(t.tx, id) }
func (t *boltTx) PutDevice(d Device) error               { return t.devices().PutTx(t.tx, d.ID, d) }
func (t *boltTx) DeleteDevice(id string) error           { return t.devices().DeleteTx(t.tx, id) }
func (t *boltTx) Devices() ([]Device, error)             { return all(t.tx, t.devices()) }

// counterKey orders releases by counter in a bucket.
func counterKey(n uint64) string { return fmt.Sprintf("%020d", n) }

func (t *boltTx) Release(id string) (Release, bool, error) {
	c, n, err := ParseReleaseID(id)
	if err != nil {
		return Release{}, false, nil
	}
	return t.releases(c).GetTx(t.tx, counterKey(n))
}

func (t *boltTx) PutRelease(r Release) error {
	if r.ID != ReleaseID(r.Channel, r.Counter) {
		return fmt.Errorf("fleet store: release id %q does not match channel %q and counter %d", r.ID, r.Channel, r.Counter)
	}
	return t.releases(r.Channel).PutTx(t.tx, counterKey(r.Counter), r)
}

func (t *boltTx) Releases(channel string, from uint64) ([]Release, error) {
	root := t.tx.Bucket([]byte(Subsystem)).Bucket([]byte("releases"))
	if root == nil {
		return nil, nil
	}
	var channels []string
	if channel != "" {
		channels = []string{channel}
	} else if err := root.ForEachBucket(func(k []byte) error {
		channels = append(channels, string(k))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("fleet store: list channels: %w", err)
	}
	var out []Release
	for _, c := range channels {
		b := root.Bucket([]byte(c))
		if b == nil {
			continue
		}
		// Keys are zero-padded counters: seek to from and read to the end, so a check-in
		// decodes only the releases that can matter to it, however many old ones there are.
		var rs []Release
		cur := b.Cursor()
		for k, v := cur.Seek([]byte(counterKey(from))); k != nil; k, v = cur.Next() {
			if v == nil {
				continue // a nested bucket
			}
			var r Release
			if err := json.Unmarshal(v, &r); err != nil {
				return nil, fmt.Errorf("fleet store: release %s/%s: %w", c, k, err)
			}
			rs = append(rs, r)
		}
		slices.Reverse(rs)
		out = append(out, rs...)
	}
	return out, nil
}

func (t *boltTx) Outcome(release, device string) (Outcome, bool, error) {
	return t.outcomes(release).GetTx(t.tx, device)
}
func (t *boltTx) PutOutcome(o Outcome) error { return t.outcomes(o.Release).PutTx(t.tx, o.Device, o) }
func (t *boltTx) Outcomes(release string) ([]Outcome, error) {
	return all(t.tx, t.outcomes(release))
}

func all[V any](tx *bbolt.Tx, t *storage.Table[V]) ([]V, error) {
	var out []V
	err := t.ForEachTx(tx, func(_ string, v V) error {
		out = append(out, v)
		return nil
	})
	return out, err
}
