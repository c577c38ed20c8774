package storage

import (
	"path/filepath"
	"testing"
)

// openTemp opens a fresh database in a temporary directory and closes it
// when the test ends.
func openTemp(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	return reopen(t, path, Options{}), path
}

// reopen opens the database at path and closes it when the test ends.
func reopen(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// txID returns the ID of the last committed write transaction.
func txID(t testing.TB, db *DB) uint64 {
	t.Helper()
	tx, err := db.Bolt().Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	return uint64(tx.ID())
}
