package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func TestOpenCreates(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "state.db")
	db := reopen(t, path, Options{})
	if db.Path() != path {
		t.Errorf("Path = %q, want %q", db.Path(), path)
	}
	for _, c := range []struct {
		path string
		perm fs.FileMode
	}{
		{filepath.Join(root, "a"), 0o700},
		{filepath.Join(root, "a", "b"), 0o700},
		{path, 0o600},
	} {
		info, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != c.perm {
			t.Errorf("%s: mode %v, want %v", c.path, got, c.perm)
		}
	}
	err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(MetaBucket)) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}

	// Reopening an existing database does not commit anything.
	before := txID(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, path, Options{})
	if txID(t, db) != before {
		t.Error("reopening committed a write transaction")
	}
}

func TestOpenEmptyFileBecomesDatabase(t *testing.T) {
	// A crash right after the file was created leaves it empty; that must
	// not brick the device.
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db := reopen(t, path, Options{})
	if err := NewTable[int](db, "sub", "t").Put("k", 1); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	cases := []struct {
		name    string
		content []byte
	}{
		{"short text", []byte("hello, this is not a database\n")},
		{"one page of text", bytes.Repeat([]byte("x"), 4096)},
		{"between one and two pages", random(6000)},
		{"random 64 KiB", random(64 << 10)},
		{"zeros 64 KiB", make([]byte, 64<<10)},
		{"sqlite header", append([]byte("SQLite format 3\x00"), random(16<<10)...)},
	}
	for _, tc := range cases {
		for _, ro := range []bool{false, true} {
			name := tc.name
			if ro {
				name += " read-only"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "state.db")
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
				db, err := Open(path, Options{ReadOnly: ro, Timeout: time.Second})
				if err == nil {
					_ = db.Close()
					t.Fatal("Open succeeded")
				}
				t.Logf("Open: %v", err)
				if !errors.Is(err, ErrNotDatabase) {
					t.Errorf("Open error %q does not wrap ErrNotDatabase", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Open error %q does not name the file", err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.content) {
					t.Errorf("file changed: %d bytes, was %d", len(got), len(tc.content))
				}
			})
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	held := filepath.Join(dir, "held.db")
	reopen(t, held, Options{})

	cases := []struct {
		name    string
		path    string
		opts    Options
		wantErr error
	}{
		{"empty path", "", Options{}, nil},
		{"locked by another handle", held, Options{Timeout: 50 * time.Millisecond}, berrors.ErrTimeout},
		{"read-only missing file", filepath.Join(dir, "missing.db"), Options{ReadOnly: true}, fs.ErrNotExist},
		{"directory", dir, Options{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.path, tc.opts)
			if err == nil {
				_ = db.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Open = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrNotDatabase) {
				t.Errorf("Open = %v, wrongly classified as not a database", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("read-only Open created the file")
	}
}

func TestReadOnlyRejectsWrites(t *testing.T) {
	db, path := openTemp(t)
	if err := NewTable[int](db, "sub", "t").Put("k", 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := reopen(t, path, Options{ReadOnly: true})
	if !ro.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	tbl := NewTable[int](ro, "sub", "t")
	if v, ok, err := tbl.Get("k"); v != 1 || !ok || err != nil {
		t.Errorf("Get = %v, %v, %v", v, ok, err)
	}
	if err := tbl.Put("k", 2); !errors.Is(err, berrors.ErrDatabaseReadOnly) {
		t.Errorf("Put on read-only database = %v", err)
	}
	if err := ro.Check(); err != nil {
		t.Error(err)
	}
}
