package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent snapshot of the whole database to w and returns
// the number of bytes written. The snapshot is taken from one read
// transaction, so writers keep committing while it runs; the output is a
// complete bbolt file that Open accepts.
//
// Writers are held up only when a commit has to grow the memory map, which
// waits for open read transactions such as this one to finish.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup database %s: %w", db.path, err)
	}
	return n, nil
}

// BackupFile writes a snapshot of the database to path, atomically: the
// snapshot goes to a temporary file in the same directory, which is fsynced
// and renamed over path, and the directory is fsynced. A reader of path sees
// either the previous file or the complete new snapshot, even after a crash.
// The directory must exist. path must not be the database file itself.
func (db *DB) BackupFile(path string) error {
	if err := db.checkNotSelf(path); err != nil {
		return fmt.Errorf("backup database %s to %s: %w", db.path, path, err)
	}
	if err := writeFileAtomic(path, db.Backup); err != nil {
		return fmt.Errorf("backup database %s to %s: %w", db.path, path, err)
	}
	return nil
}

// checkNotSelf refuses a backup target that is the live database file:
// renaming over it would detach the open database from its path.
func (db *DB) checkNotSelf(path string) error {
	a, errA := filepath.Abs(path)
	b, errB := filepath.Abs(db.path)
	if errA == nil && errB == nil && a == b {
		return errors.New("target is the database file itself")
	}
	target, err := os.Stat(path)
	if err != nil {
		return nil // a missing target cannot be the database
	}
	self, err := os.Stat(db.path)
	if err == nil && os.SameFile(target, self) {
		return errors.New("target is the database file itself")
	}
	return nil
}

// WriteFileAtomic creates or replaces path with the content written by write,
// atomically and durably: the content goes to a temporary file in the same
// directory (mode 0600), which is fsynced and renamed over path, and the
// directory is fsynced. A reader of path sees either the previous file or the
// complete new one, even after a crash; on failure the temporary file is
// removed and path is untouched. The directory must exist.
func WriteFileAtomic(path string, write func(io.Writer) (int64, error)) error {
	if err := writeFileAtomic(path, write); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic creates path with the content written by write, via a
// temporary file in the same directory that is removed on failure.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the first error matters
			_ = os.Remove(tmp)
		}
	}()

	if _, err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is done; a failure to sync the directory only weakens
	// durability of the new name, and the temporary file no longer exists.
	if serr := syncDir(dir); serr != nil {
		return fmt.Errorf("sync directory %s: %w", dir, serr)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
