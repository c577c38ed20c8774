package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestBackupWhileWriting(t *testing.T) {
	db, _ := openTemp(t)
	pre := NewTable[int](db, "sub", "pre")
	const preN = 200
	err := db.Update(func(tx *bbolt.Tx) error {
		for i := range preN {
			if err := pre.PutTx(tx, fmt.Sprintf("p%05d", i), i); err != nil {
				return err
			}
			if err := NewTable[string](db, "sub", "bulk").PutTx(tx, fmt.Sprint(i), string(bytes.Repeat([]byte{'b'}, 2000))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The writer commits key i to two tables in one transaction, so a
	// consistent snapshot has the same keys in both. acked counts commits
	// that Update has reported.
	a := NewTable[int](db, "sub", "a")
	b := NewTable[string](db, "sub", "b")
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Update(func(tx *bbolt.Tx) error {
				k := fmt.Sprintf("w%06d", i)
				if err := a.PutTx(tx, k, i); err != nil {
					return err
				}
				return b.PutTx(tx, k, string(bytes.Repeat([]byte{'x'}, i%3000)))
			})
			if err != nil {
				writeErr = err
				return
			}
			acked.Add(1)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	before := int(acked.Load())
	var buf bytes.Buffer
	// A slow destination keeps the read transaction open while the
	// writer commits.
	n, err := db.Backup(slowWriter{&buf})
	after := int(acked.Load())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if writeErr != nil {
		t.Fatalf("writer: %v", writeErr)
	}
	if before < 20 {
		t.Fatalf("writer made only %d commits", before)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Backup returned %d bytes, wrote %d", n, buf.Len())
	}
	t.Logf("writer commits: %d before backup, %d during", before, after-before)

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bk := reopen(t, path, Options{ReadOnly: true})
	if err := bk.Check(); err != nil {
		t.Fatalf("backup is inconsistent: %v", err)
	}
	for i := range preN {
		if v, ok, err := NewTable[int](bk, "sub", "pre").Get(fmt.Sprintf("p%05d", i)); !ok || err != nil || v != i {
			t.Fatalf("backup lacks pre-backup key %d: %v %v %v", i, v, ok, err)
		}
	}
	var aKeys, bKeys []string
	if err := NewTable[int](bk, "sub", "a").ForEach(func(k string, _ int) error { aKeys = append(aKeys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := NewTable[string](bk, "sub", "b").ForEach(func(k string, _ string) error { bKeys = append(bKeys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(aKeys, bKeys) {
		t.Fatalf("backup is not one snapshot: %d keys in a, %d in b", len(aKeys), len(bKeys))
	}
	// Every commit acknowledged before Backup began is in the snapshot,
	// and nothing acknowledged after Backup returned is.
	if len(aKeys) < before || len(aKeys) > after+1 {
		t.Fatalf("backup has %d writer commits, want between %d and %d", len(aKeys), before, after+1)
	}
	for i, k := range aKeys {
		if k != fmt.Sprintf("w%06d", i) {
			t.Fatalf("backup writer key %d is %q", i, k)
		}
	}
}

func TestBackupFile(t *testing.T) {
	db, _ := openTemp(t)
	tbl := NewTable[string](db, "sub", "t")
	dir := t.TempDir()
	target := filepath.Join(dir, "backup.db")

	for round, key := range []string{"first", "second"} {
		if err := tbl.Put(key, key); err != nil {
			t.Fatal(err)
		}
		if err := db.BackupFile(target); err != nil {
			t.Fatalf("round %d: BackupFile: %v", round, err)
		}
		assertDirHolds(t, dir, "backup.db")
		info, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("backup file mode %v, want 0600", perm)
		}
		bk, err := Open(target, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("round %d: open backup: %v", round, err)
		}
		n, err := NewTable[string](bk, "sub", "t").Len()
		checkErr := bk.Check()
		if err := bk.Close(); err != nil {
			t.Fatal(err)
		}
		if err != nil || n != round+1 || checkErr != nil {
			t.Errorf("round %d: backup has %d keys (%v), check %v", round, n, err, checkErr)
		}
	}

	t.Run("missing directory", func(t *testing.T) {
		err := db.BackupFile(filepath.Join(dir, "no", "such", "dir", "b.db"))
		if err == nil {
			t.Error("BackupFile into a missing directory succeeded")
		}
		assertDirHolds(t, dir, "backup.db")
	})
	t.Run("database itself", func(t *testing.T) {
		for _, p := range []string{db.Path(), filepath.Join(filepath.Dir(db.Path()), ".", filepath.Base(db.Path()))} {
			if err := db.BackupFile(p); err == nil {
				t.Errorf("BackupFile(%s) onto the live database succeeded", p)
			}
		}
		if err := tbl.Put("still", "works"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriteFileAtomicFailure checks that a failed write leaves neither a
// temporary file nor a change to an existing target.
func TestWriteFileAtomicFailure(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(target, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("disk on fire")
	err := writeFileAtomic(target, func(w io.Writer) (int64, error) {
		n, _ := w.Write([]byte("partial"))
		return int64(n), fail
	})
	if !errors.Is(err, fail) {
		t.Fatalf("writeFileAtomic = %v, want %v", err, fail)
	}
	assertDirHolds(t, dir, "backup.db")
	if got, _ := os.ReadFile(target); string(got) != "previous" {
		t.Errorf("target changed to %q", got)
	}
}

// slowWriter delays every write a little.
type slowWriter struct{ w io.Writer }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.w.Write(p)
}

func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}
