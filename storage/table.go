package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Table is a typed accessor for one bucket whose values are encoded as JSON.
//
// The bucket is addressed by a path: the subsystem's top-level bucket
// followed by optional nested buckets. Buckets are created on first write;
// reads of a missing bucket behave as an empty table. Keys that hold nested
// buckets are not part of the table and are skipped by ForEach and Len.
//
// The methods without a Tx suffix run in their own transaction. The Tx
// variants run in a transaction supplied by the caller, so that several
// tables can be changed atomically; PutTx and DeleteTx need a writable one.
//
// A Table holds no state besides its path and is safe for concurrent use.
type Table[V any] struct {
	db   *DB
	path [][]byte
	name string // path joined with "/", for error messages
	err  error  // set by NewTable when the path is unusable
}

// NewTable returns a table for the bucket at path, for example
// NewTable[Session](db, "web", "sessions"). The path must be non-empty, its
// elements must be non-empty, and its first element must not start with an
// underscore (reserved for this package); otherwise every method of the
// table returns an error.
func NewTable[V any](db *DB, path ...string) *Table[V] {
	t := &Table[V]{db: db, name: strings.Join(path, "/")}
	switch {
	case len(path) == 0:
		t.err = errors.New("table: empty bucket path")
	case strings.HasPrefix(path[0], "_"):
		t.err = fmt.Errorf("table %s: top-level buckets starting with '_' are reserved", t.name)
	}
	for _, p := range path {
		if p == "" && t.err == nil {
			t.err = fmt.Errorf("table %s: empty bucket name in path", t.name)
		}
		t.path = append(t.path, []byte(p))
	}
	return t
}

// lookup returns the table's bucket, or nil if it does not exist.
func (t *Table[V]) lookup(tx *bbolt.Tx) *bbolt.Bucket {
	b := tx.Bucket(t.path[0])
	for _, name := range t.path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

// create returns the table's bucket, creating it and its parents as needed.
func (t *Table[V]) create(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	if !tx.Writable() {
		return nil, berrors.ErrTxNotWritable
	}
	b, err := tx.CreateBucketIfNotExists(t.path[0])
	for _, name := range t.path[1:] {
		if err != nil {
			break
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	if err != nil {
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	return b, nil
}

// Get returns the value stored under key, and whether it was found.
func (t *Table[V]) Get(key string) (v V, ok bool, err error) {
	err = t.db.View(func(tx *bbolt.Tx) error {
		v, ok, err = t.GetTx(tx, key)
		return err
	})
	return v, ok, err
}

// GetTx is Get within the transaction tx.
func (t *Table[V]) GetTx(tx *bbolt.Tx, key string) (V, bool, error) {
	var v V
	if t.err != nil {
		return v, false, t.err
	}
	b := t.lookup(tx)
	if b == nil {
		return v, false, nil
	}
	data := b.Get([]byte(key))
	if data == nil {
		return v, false, nil
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero V
		return zero, false, fmt.Errorf("table %s: decode %q: %w", t.name, key, err)
	}
	return v, true, nil
}

// Put stores v under key, replacing any previous value.
func (t *Table[V]) Put(key string, v V) error {
	if t.err != nil {
		return t.err
	}
	// Encode before taking the writer lock.
	data, err := t.encode(key, v)
	if err != nil {
		return err
	}
	return t.db.Update(func(tx *bbolt.Tx) error {
		return t.put(tx, key, data)
	})
}

// PutTx is Put within the writable transaction tx.
func (t *Table[V]) PutTx(tx *bbolt.Tx, key string, v V) error {
	if t.err != nil {
		return t.err
	}
	data, err := t.encode(key, v)
	if err != nil {
		return err
	}
	return t.put(tx, key, data)
}

func (t *Table[V]) encode(key string, v V) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("table %s: encode %q: %w", t.name, key, err)
	}
	return data, nil
}

func (t *Table[V]) put(tx *bbolt.Tx, key string, data []byte) error {
	b, err := t.create(tx)
	if err != nil {
		return fmt.Errorf("table %s: put %q: %w", t.name, key, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("table %s: put %q: %w", t.name, key, err)
	}
	t.db.MarkChanged(tx, string(t.path[0]))
	return nil
}

// Delete removes key. Deleting a missing key is not an error.
func (t *Table[V]) Delete(key string) error {
	if t.err != nil {
		return t.err
	}
	return t.db.Update(func(tx *bbolt.Tx) error {
		return t.DeleteTx(tx, key)
	})
}

// DeleteTx is Delete within the writable transaction tx.
func (t *Table[V]) DeleteTx(tx *bbolt.Tx, key string) error {
	if t.err != nil {
		return t.err
	}
	if !tx.Writable() {
		return fmt.Errorf("table %s: delete %q: %w", t.name, key, berrors.ErrTxNotWritable)
	}
	b := t.lookup(tx)
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("table %s: delete %q: %w", t.name, key, err)
	}
	t.db.MarkChanged(tx, string(t.path[0]))
	return nil
}

// ForEach calls fn for every entry in byte-wise key order, stopping at the
// first error, which it returns. fn runs inside a read transaction and must
// not start another transaction on the same DB.
func (t *Table[V]) ForEach(fn func(key string, v V) error) error {
	return t.db.View(func(tx *bbolt.Tx) error {
		return t.ForEachTx(tx, fn)
	})
}

// ForEachTx is ForEach within the transaction tx. fn must not modify the
// table's bucket.
func (t *Table[V]) ForEachTx(tx *bbolt.Tx, fn func(key string, v V) error) error {
	if t.err != nil {
		return t.err
	}
	b := t.lookup(tx)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, data := c.First(); k != nil; k, data = c.Next() {
		if data == nil {
			continue // nested bucket
		}
		var v V
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("table %s: decode %q: %w", t.name, k, err)
		}
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of entries.
func (t *Table[V]) Len() (int, error) {
	var n int
	err := t.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = t.LenTx(tx)
		return err
	})
	return n, err
}

// LenTx is Len within the transaction tx.
func (t *Table[V]) LenTx(tx *bbolt.Tx) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	b := t.lookup(tx)
	if b == nil {
		return 0, nil
	}
	n := 0
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			n++
		}
	}
	return n, nil
}
