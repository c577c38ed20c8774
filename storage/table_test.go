package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

type session struct {
	ID      string
	User    string
	Expires time.Time
	Scopes  []string
	Admin   bool `json:"admin,omitempty"`
}

func TestTableRoundTrip(t *testing.T) {
	db, path := openTemp(t)
	sessions := NewTable[session](db, "web", "sessions")
	cases := []struct {
		key string
		v   session
	}{
		{"a", session{ID: "a", User: "alice", Expires: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), Scopes: []string{"read"}}},
		{"b", session{ID: "b", User: "bob", Admin: true, Scopes: []string{}}},
		{"zero", session{}},
		{"unicode ключ", session{User: "ünïcödé"}},
		{strings.Repeat("k", 500), session{User: strings.Repeat("long", 5000)}},
	}
	for _, tc := range cases {
		if err := sessions.Put(tc.key, tc.v); err != nil {
			t.Fatalf("Put(%q): %v", tc.key, err)
		}
	}
	// Read back both from the open handle and after a reopen.
	for _, d := range []*DB{db, nil} {
		if d == nil {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			d = reopen(t, path, Options{ReadOnly: true})
		}
		tbl := NewTable[session](d, "web", "sessions")
		for _, tc := range cases {
			got, ok, err := tbl.Get(tc.key)
			if err != nil || !ok {
				t.Fatalf("Get(%q) = ok %v, err %v", tc.key[:min(len(tc.key), 20)], ok, err)
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Errorf("Get(%q) = %+v, want %+v", tc.key[:min(len(tc.key), 20)], got, tc.v)
			}
		}
		if n, err := tbl.Len(); err != nil || n != len(cases) {
			t.Errorf("Len = %d, %v, want %d", n, err, len(cases))
		}
	}
}

func TestTablePutReplaceDelete(t *testing.T) {
	db, _ := openTemp(t)
	tbl := NewTable[int](db, "sub", "counters")
	steps := []struct {
		op      string // "put" or "del"
		key     string
		v       int
		wantLen int
	}{
		{"put", "x", 1, 1},
		{"put", "y", 2, 2},
		{"put", "x", 3, 2},
		{"del", "x", 0, 1},
		{"del", "x", 0, 1},
		{"del", "never", 0, 1},
		{"put", "x", 4, 2},
	}
	want := map[string]int{}
	for i, s := range steps {
		var err error
		if s.op == "put" {
			err = tbl.Put(s.key, s.v)
			want[s.key] = s.v
		} else {
			err = tbl.Delete(s.key)
			delete(want, s.key)
		}
		if err != nil {
			t.Fatalf("step %d %s %q: %v", i, s.op, s.key, err)
		}
		if n, err := tbl.Len(); err != nil || n != s.wantLen {
			t.Fatalf("step %d: Len = %d, %v, want %d", i, n, err, s.wantLen)
		}
		for _, k := range []string{"x", "y", "never"} {
			got, ok, err := tbl.Get(k)
			wv, wok := want[k]
			if err != nil || ok != wok || got != wv {
				t.Fatalf("step %d: Get(%q) = %d, %v, %v, want %d, %v", i, k, got, ok, err, wv, wok)
			}
		}
	}
}

func TestTableForEachOrder(t *testing.T) {
	db, _ := openTemp(t)
	tbl := NewTable[string](db, "sub", "ordered")
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprintf("%c%d", 'a'+rune(i%26), i))
	}
	keys = append(keys, "A", "Z", "a", "ab", "b", "~", "\x00")
	r := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(keys)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, k := range shuffled {
			if err := tbl.PutTx(tx, k, "v"+k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A nested bucket inside the table's bucket is not an entry.
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.Bucket([]byte("sub")).Bucket([]byte("ordered")).CreateBucket([]byte("m-nested"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	err = tbl.ForEach(func(k, v string) error {
		if v != "v"+k {
			return fmt.Errorf("value of %q = %q", k, v)
		}
		got = append(got, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("ForEach order:\n got %q\nwant %q", got, keys)
	}
	if n, _ := tbl.Len(); n != len(keys) {
		t.Errorf("Len = %d, want %d", n, len(keys))
	}

	// An error from fn stops the iteration and is returned as is.
	stop := errors.New("stop")
	calls := 0
	err = tbl.ForEach(func(string, string) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Errorf("ForEach with failing fn: err %v after %d calls, want stop after 3", err, calls)
	}
}

func TestTableMissingBucketReadsEmpty(t *testing.T) {
	db, _ := openTemp(t)
	paths := [][]string{
		{"nothing"},
		{"nothing", "deeper"},
		{"sub", "missing"}, // parent exists, child does not
	}
	if err := NewTable[int](db, "sub", "other").Put("k", 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		t.Run(strings.Join(p, "/"), func(t *testing.T) {
			tbl := NewTable[int](db, p...)
			before := txID(t, db)
			if v, ok, err := tbl.Get("k"); v != 0 || ok || err != nil {
				t.Errorf("Get = %v, %v, %v", v, ok, err)
			}
			if n, err := tbl.Len(); n != 0 || err != nil {
				t.Errorf("Len = %d, %v", n, err)
			}
			calls := 0
			if err := tbl.ForEach(func(string, int) error { calls++; return nil }); err != nil || calls != 0 {
				t.Errorf("ForEach: %d calls, %v", calls, err)
			}
			if txID(t, db) != before {
				t.Error("reads committed a write transaction")
			}
			if err := tbl.Delete("k"); err != nil {
				t.Errorf("Delete: %v", err)
			}
			err := db.View(func(tx *bbolt.Tx) error {
				if tbl.lookup(tx) != nil {
					return errors.New("reading created the bucket")
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}

func TestTableTx(t *testing.T) {
	db, _ := openTemp(t)
	a := NewTable[int](db, "sub", "a")
	b := NewTable[int](db, "sub", "b")

	// Writes to two tables in one transaction are atomic.
	fail := errors.New("abort")
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := a.PutTx(tx, "k", 1); err != nil {
			return err
		}
		if err := b.PutTx(tx, "k", 2); err != nil {
			return err
		}
		if v, ok, err := a.GetTx(tx, "k"); v != 1 || !ok || err != nil {
			return fmt.Errorf("GetTx inside the transaction = %v, %v, %v", v, ok, err)
		}
		return fail
	})
	if err != fail {
		t.Fatalf("Update = %v, want the abort error unchanged", err)
	}
	for _, tbl := range []*Table[int]{a, b} {
		if _, ok, _ := tbl.Get("k"); ok {
			t.Error("rolled back write is visible")
		}
	}

	// Writes need a writable transaction.
	err = db.View(func(tx *bbolt.Tx) error {
		if err := a.PutTx(tx, "k", 1); !errors.Is(err, berrors.ErrTxNotWritable) {
			return fmt.Errorf("PutTx in read transaction = %v", err)
		}
		if err := a.DeleteTx(tx, "k"); !errors.Is(err, berrors.ErrTxNotWritable) {
			return fmt.Errorf("DeleteTx in read transaction = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestTableErrors(t *testing.T) {
	db, _ := openTemp(t)
	cases := []struct {
		name string
		path []string
	}{
		{"empty path", nil},
		{"meta bucket", []string{MetaBucket}},
		{"reserved prefix", []string{"_private", "x"}},
		{"empty element", []string{"sub", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl := NewTable[int](db, tc.path...)
			if err := tbl.Put("k", 1); err == nil {
				t.Error("Put succeeded")
			}
			if _, _, err := tbl.Get("k"); err == nil {
				t.Error("Get succeeded")
			}
			if _, err := tbl.Len(); err == nil {
				t.Error("Len succeeded")
			}
			if err := tbl.ForEach(func(string, int) error { return nil }); err == nil {
				t.Error("ForEach succeeded")
			}
			if err := tbl.Delete("k"); err == nil {
				t.Error("Delete succeeded")
			}
		})
	}

	// A value that is not valid JSON for V gives a decode error naming the key.
	tbl := NewTable[int](db, "sub", "nums")
	if err := NewTable[string](db, "sub", "nums").Put("word", "not a number"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := tbl.Get("word"); err == nil || ok || !strings.Contains(err.Error(), `"word"`) {
		t.Errorf("Get of mistyped value = %v, %v", ok, err)
	}
	// A path through a key that holds a value cannot become a bucket.
	if err := NewTable[int](db, "sub", "nums", "word").Put("k", 1); !errors.Is(err, berrors.ErrIncompatibleValue) {
		t.Errorf("Put through a value key = %v, want ErrIncompatibleValue", err)
	}
	// An empty key is rejected by bbolt.
	if err := tbl.Put("", 1); !errors.Is(err, berrors.ErrKeyRequired) {
		t.Errorf("Put with empty key = %v, want ErrKeyRequired", err)
	}
	// A value that cannot be encoded is rejected before any transaction.
	fn := NewTable[func()](db, "sub", "funcs")
	if err := fn.Put("f", func() {}); err == nil {
		t.Error("Put of a func value succeeded")
	}
}
