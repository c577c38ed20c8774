package storage

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var errBoom = errors.New("boom")

// migSpec describes a list of n migrations for a test. Each Up writes the key
// "m<version>" into the subsystem bucket and appends its version to *ran;
// the migration numbered failAt writes its key and then fails.
type migSpec struct {
	n        int
	breaking []int
	failAt   int
}

func (s migSpec) build(subsystem string, ran *[]int) []Migration {
	var ms []Migration
	for v := 1; v <= s.n; v++ {
		ms = append(ms, Migration{
			Version:  v,
			Name:     fmt.Sprintf("step %d", v),
			Breaking: slices.Contains(s.breaking, v),
			Up: func(tx *bbolt.Tx) error {
				*ran = append(*ran, v)
				b := tx.Bucket([]byte(subsystem))
				if b == nil {
					return errors.New("subsystem bucket missing during migration")
				}
				if err := b.Put(fmt.Appendf(nil, "m%d", v), []byte("x")); err != nil {
					return err
				}
				if v == s.failAt {
					return errBoom
				}
				return nil
			},
		})
	}
	return ms
}

func TestMigrate(t *testing.T) {
	type step struct {
		subsystem   string // "sub" when empty
		reopen      bool   // close and reopen the database first
		spec        migSpec
		wantRan     []int
		wantVersion int
		wantErr     error
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"fresh database runs all", []step{
			{spec: migSpec{n: 3}, wantRan: []int{1, 2, 3}, wantVersion: 3},
		}},
		{"reopen runs only pending", []step{
			{spec: migSpec{n: 2}, wantRan: []int{1, 2}, wantVersion: 2},
			{reopen: true, spec: migSpec{n: 4}, wantRan: []int{3, 4}, wantVersion: 4},
			{reopen: true, spec: migSpec{n: 4}, wantVersion: 4},
		}},
		{"failing migration rolls back its step", []step{
			{spec: migSpec{n: 3, failAt: 2}, wantRan: []int{1, 2}, wantVersion: 1, wantErr: errBoom},
			{reopen: true, spec: migSpec{n: 3}, wantRan: []int{2, 3}, wantVersion: 3},
		}},
		{"failing first migration leaves version 0", []step{
			{spec: migSpec{n: 2, failAt: 1}, wantRan: []int{1}, wantVersion: 0, wantErr: errBoom},
		}},
		{"empty list creates the bucket only", []step{
			{spec: migSpec{n: 0}, wantVersion: 0},
			{spec: migSpec{n: 1}, wantRan: []int{1}, wantVersion: 1},
		}},
		{"older code opens non-breaking newer data", []step{
			{spec: migSpec{n: 3}, wantRan: []int{1, 2, 3}, wantVersion: 3},
			{reopen: true, spec: migSpec{n: 2}, wantVersion: 3},
			{reopen: true, spec: migSpec{n: 1}, wantVersion: 3},
			{reopen: true, spec: migSpec{n: 3}, wantVersion: 3},
		}},
		{"older code refuses breaking newer data", []step{
			{spec: migSpec{n: 3, breaking: []int{3}}, wantRan: []int{1, 2, 3}, wantVersion: 3},
			{reopen: true, spec: migSpec{n: 2}, wantVersion: 3, wantErr: ErrSchemaTooNew},
			{reopen: true, spec: migSpec{n: 3}, wantVersion: 3},
		}},
		{"older code that knows the breaking version", []step{
			{spec: migSpec{n: 4, breaking: []int{2}}, wantRan: []int{1, 2, 3, 4}, wantVersion: 4},
			{reopen: true, spec: migSpec{n: 2}, wantVersion: 4},
			{reopen: true, spec: migSpec{n: 1}, wantVersion: 4, wantErr: ErrSchemaTooNew},
		}},
		{"breaking migration applied in a later run", []step{
			{spec: migSpec{n: 2}, wantRan: []int{1, 2}, wantVersion: 2},
			{spec: migSpec{n: 4, breaking: []int{3}}, wantRan: []int{3, 4}, wantVersion: 4},
			{spec: migSpec{n: 3}, wantVersion: 4},
			{spec: migSpec{n: 2}, wantVersion: 4, wantErr: ErrSchemaTooNew},
		}},
		{"subsystems have independent versions", []step{
			{subsystem: "wallet", spec: migSpec{n: 3, breaking: []int{3}}, wantRan: []int{1, 2, 3}, wantVersion: 3},
			{subsystem: "web", spec: migSpec{n: 1}, wantRan: []int{1}, wantVersion: 1},
			{subsystem: "web", reopen: true, spec: migSpec{n: 2}, wantRan: []int{2}, wantVersion: 2},
			{subsystem: "wallet", spec: migSpec{n: 3}, wantVersion: 3},
			{subsystem: "wallet", spec: migSpec{n: 2}, wantVersion: 3, wantErr: ErrSchemaTooNew},
			{subsystem: "web", spec: migSpec{n: 2}, wantVersion: 2},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/state.db"
			db := reopen(t, path, Options{})
			for i, st := range tc.steps {
				sub := st.subsystem
				if sub == "" {
					sub = "sub"
				}
				if st.reopen {
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
					db = reopen(t, path, Options{})
				}
				before, err := db.Schema(sub)
				if err != nil {
					t.Fatal(err)
				}
				beforeTx := txID(t, db)

				var ran []int
				err = db.Migrate(sub, st.spec.build(sub, &ran))
				switch {
				case st.wantErr == nil && err != nil:
					t.Fatalf("step %d: Migrate: %v", i, err)
				case st.wantErr != nil && !errors.Is(err, st.wantErr):
					t.Fatalf("step %d: Migrate error = %v, want %v", i, err, st.wantErr)
				}
				if !slices.Equal(ran, st.wantRan) {
					t.Errorf("step %d: ran migrations %v, want %v", i, ran, st.wantRan)
				}
				if errors.Is(st.wantErr, ErrSchemaTooNew) {
					after, err := db.Schema(sub)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(before, after) || txID(t, db) != beforeTx {
						t.Errorf("step %d: refused Migrate changed the database", i)
					}
				}
				checkSchema(t, db, sub, st.wantVersion)
			}
		})
	}
}

// checkSchema verifies the stored version, history, min reader version and
// the keys the test migrations write.
func checkSchema(t *testing.T, db *DB, sub string, want int) {
	t.Helper()
	got, err := db.SchemaVersion(sub)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("SchemaVersion(%s) = %d, want %d", sub, got, want)
	}
	s, err := db.Schema(sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.History) != want {
		t.Fatalf("history of %s has %d records, want %d: %+v", sub, len(s.History), want, s.History)
	}
	wantMin := 0
	for i, h := range s.History {
		if h.Version != i+1 || h.Name != fmt.Sprintf("step %d", i+1) || h.AppliedAt.IsZero() {
			t.Errorf("history record %d = %+v", i, h)
		}
		wantMin = max(wantMin, 1)
		if h.Breaking {
			wantMin = h.Version
		}
	}
	if s.MinReaderVersion != wantMin {
		t.Errorf("MinReaderVersion(%s) = %d, want %d", sub, s.MinReaderVersion, wantMin)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(sub))
		if b == nil {
			return fmt.Errorf("bucket %s missing", sub)
		}
		for v := 1; v <= want+1; v++ {
			present := b.Get(fmt.Appendf(nil, "m%d", v)) != nil
			if present != (v <= want) {
				return fmt.Errorf("key m%d present=%v with version %d", v, present, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestMigrateRejectsInvalid(t *testing.T) {
	up := func(*bbolt.Tx) error { return nil }
	m := func(v int, name string) Migration { return Migration{Version: v, Name: name, Up: up} }
	cases := []struct {
		name       string
		subsystem  string
		migrations []Migration
	}{
		{"starts at 0", "sub", []Migration{m(0, "a"), m(1, "b")}},
		{"starts at 2", "sub", []Migration{m(2, "a")}},
		{"gap", "sub", []Migration{m(1, "a"), m(3, "c")}},
		{"duplicate", "sub", []Migration{m(1, "a"), m(1, "b")}},
		{"descending", "sub", []Migration{m(2, "b"), m(1, "a")}},
		{"empty name", "sub", []Migration{m(1, "")}},
		{"nil Up", "sub", []Migration{{Version: 1, Name: "a"}}},
		{"empty subsystem", "", []Migration{m(1, "a")}},
		{"reserved subsystem", MetaBucket, []Migration{m(1, "a")}},
	}
	db, _ := openTemp(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := txID(t, db)
			err := db.Migrate(tc.subsystem, tc.migrations)
			if !errors.Is(err, ErrInvalidMigrations) {
				t.Fatalf("Migrate = %v, want ErrInvalidMigrations", err)
			}
			if txID(t, db) != before {
				t.Error("rejected Migrate committed a transaction")
			}
		})
	}
}

func TestMigrateConcurrent(t *testing.T) {
	db, _ := openTemp(t)
	const n = 5
	var ms []Migration
	for v := 1; v <= n; v++ {
		ms = append(ms, Migration{Version: v, Name: fmt.Sprint(v), Up: func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("sub"))
			c := b.Get([]byte("count"))
			return b.Put([]byte("count"), append(c, 'x'))
		}})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- db.Migrate("sub", ms) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	err := db.View(func(tx *bbolt.Tx) error {
		if got := len(tx.Bucket([]byte("sub")).Get([]byte("count"))); got != n {
			return fmt.Errorf("migrations ran %d times in total, want %d", got, n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestMigrateReadOnly(t *testing.T) {
	db, path := openTemp(t)
	var ran []int
	if err := db.Migrate("sub", migSpec{n: 2}.build("sub", &ran)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := reopen(t, path, Options{ReadOnly: true})
	if err := ro.Migrate("sub", migSpec{n: 2}.build("sub", &ran)); err != nil {
		t.Errorf("up-to-date Migrate on read-only database: %v", err)
	}
	err := ro.Migrate("sub", migSpec{n: 3}.build("sub", &ran))
	if !errors.Is(err, berrors.ErrDatabaseReadOnly) {
		t.Errorf("pending Migrate on read-only database = %v, want ErrDatabaseReadOnly", err)
	}
}
