package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// MetaBucket is the top-level bucket in which the package keeps its own
// bookkeeping, such as the schema version of each subsystem.
const MetaBucket = "_meta"

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is not set.
const DefaultTimeout = 5 * time.Second

// ErrNotDatabase is returned (wrapped) by Open when the file exists but is not
// a bbolt database, or its header is damaged beyond what bbolt can recover.
// The file is left untouched.
var ErrNotDatabase = errors.New("not a bbolt database")

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long to wait for the file lock held by another
	// process. Zero or negative means DefaultTimeout.
	Timeout time.Duration

	// ReadOnly opens the database with a shared lock and without write
	// access. The file must already exist.
	ReadOnly bool
}

// DB is an open database. It is safe for concurrent use by multiple
// goroutines.
type DB struct {
	bolt     *bbolt.DB
	path     string
	readOnly bool
	changes  changes // per-subsystem change counters, see MarkChanged
}

// Open opens the database at path. Unless opts.ReadOnly is set, the file is
// created with mode 0600 if it does not exist, together with any missing
// parent directories (mode 0700), and the meta bucket is created.
//
// An existing empty file is initialized as a new database. Any other file
// that is not a bbolt database is rejected with an error wrapping
// ErrNotDatabase, and is neither truncated nor written to.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open database %s: create directory: %w", path, err)
		}
	}

	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		// See the package documentation for why the freelist is not synced.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, openError(path, timeout, err)
	}
	db := &DB{bolt: b, path: path, readOnly: opts.ReadOnly}

	if !opts.ReadOnly {
		if err := db.ensureMeta(); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open database %s: create meta bucket: %w", path, err)
		}
	}
	return db, nil
}

// ensureMeta creates the meta bucket, avoiding a write transaction when it
// already exists.
func (db *DB) ensureMeta() error {
	var exists bool
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		exists = tx.Bucket([]byte(MetaBucket)) != nil
		return nil
	}); err != nil || exists {
		return err
	}
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(MetaBucket))
		return err
	})
}

// openError gives a bbolt.Open failure its context.
func openError(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("open database %s: file is locked by another process (waited %v): %w", path, timeout, err)
	case errors.Is(err, berrors.ErrInvalid),
		errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch),
		lacksBoltMagic(path):
		return fmt.Errorf("open database %s: %w: %w", path, ErrNotDatabase, err)
	}
	return fmt.Errorf("open database %s: %w", path, err)
}

// boltMagic is the number at the start of every bbolt meta page, stored in
// the byte order of the machine that wrote the file.
const boltMagic = 0xED0CDAED

// lacksBoltMagic reports whether path is a readable, non-empty file in which
// no candidate meta page carries the bbolt magic number. It is used only to
// classify errors, never to refuse a file that bbolt accepts.
func lacksBoltMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() == 0 {
		return false
	}
	// A meta page starts with a 16-byte page header followed by the magic.
	// The first meta page is at offset 0, the second one page further on;
	// bbolt accepts page sizes from 1 KiB to 16 MiB.
	const magicOffset = 16
	offsets := []int64{0}
	for i := 0; i <= 14; i++ {
		offsets = append(offsets, 1024<<i)
	}
	var buf [4]byte
	for _, off := range offsets {
		if off+magicOffset+int64(len(buf)) > info.Size() {
			break
		}
		if _, err := f.ReadAt(buf[:], off+magicOffset); err != nil && err != io.EOF {
			return false
		}
		if binary.NativeEndian.Uint32(buf[:]) == boltMagic {
			return false
		}
	}
	return true
}

// Close closes the database, waiting for open transactions to finish.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// ReadOnly reports whether the database was opened read-only.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Bolt returns the underlying bbolt database for subsystems that need
// facilities this package does not wrap. Callers must not close it and must
// not write to MetaBucket.
func (db *DB) Bolt() *bbolt.DB { return db.bolt }

// View runs fn in a read-only transaction. The error returned by fn is
// returned unchanged.
//
// fn must not start another transaction on db: a write transaction started
// from within a read transaction can deadlock when the file has to grow.
func (db *DB) View(fn func(tx *bbolt.Tx) error) error {
	return db.bolt.View(fn)
}

// Update runs fn in a read-write transaction and commits it if fn returns
// nil; the commit is fsynced before Update returns. If fn returns an error
// (or panics) the transaction is rolled back and the error is returned
// unchanged. Write transactions are serialized.
func (db *DB) Update(fn func(tx *bbolt.Tx) error) error {
	return db.bolt.Update(fn)
}

// Check verifies the structural consistency of the whole database file
// (page reachability, free list, key order). It returns nil when no problem
// was found. On a writable database it holds the writer lock while it runs,
// because bbolt's check reads the free list that writers modify.
func (db *DB) Check() error {
	tx, err := db.bolt.Begin(!db.readOnly)
	if err != nil {
		return fmt.Errorf("check database %s: %w", db.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check database %s: %d problems: %w", db.path, len(errs), errors.Join(errs...))
	}
	return nil
}
