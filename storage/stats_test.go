package storage

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
)

func TestStats(t *testing.T) {
	db, path := openTemp(t)
	noop := func(*bbolt.Tx) error { return nil }
	migrations := func(n int) []Migration {
		var ms []Migration
		for v := 1; v <= n; v++ {
			ms = append(ms, Migration{Version: v, Name: fmt.Sprint(v), Up: noop})
		}
		return ms
	}
	if err := db.Migrate("wallet", migrations(2)); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate("web", migrations(1)); err != nil {
		t.Fatal(err)
	}

	// wallet: 50 entries in wallet/utxos; web: 3 in web/sessions/active
	// plus 1 in web/sessions; zeta: created by a table, never migrated.
	want := map[string]*BucketStats{
		"wallet": {Name: "wallet", Buckets: 1},
		"web":    {Name: "web", Buckets: 2},
		"zeta":   {Name: "zeta"},
	}
	put := func(sub string, tbl *Table[session], key string, v session) {
		t.Helper()
		if err := tbl.Put(key, v); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(v)
		want[sub].Keys++
		want[sub].Bytes += int64(len(key) + len(data))
	}
	utxos := NewTable[session](db, "wallet", "utxos")
	for i := range 50 {
		put("wallet", utxos, fmt.Sprintf("utxo-%03d", i), session{ID: fmt.Sprint(i), Scopes: []string{"a", "b"}})
	}
	active := NewTable[session](db, "web", "sessions", "active")
	for i := range 3 {
		put("web", active, fmt.Sprint(i), session{User: "u"})
	}
	put("web", NewTable[session](db, "web", "sessions"), "count", session{})
	put("zeta", NewTable[session](db, "zeta"), "z", session{})

	s, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path != path || s.FileBytes != info.Size() {
		t.Errorf("Path, FileBytes = %q, %d, want %q, %d", s.Path, s.FileBytes, path, info.Size())
	}
	if s.PageSize != os.Getpagesize() || s.FileBytes < int64(4*s.PageSize) {
		t.Errorf("PageSize %d, FileBytes %d", s.PageSize, s.FileBytes)
	}
	if wantSub := map[string]int{"wallet": 2, "web": 1}; !maps.Equal(s.Subsystems, wantSub) {
		t.Errorf("Subsystems = %v, want %v", s.Subsystems, wantSub)
	}
	var wantBuckets []BucketStats
	for _, name := range slices.Sorted(maps.Keys(want)) {
		wantBuckets = append(wantBuckets, *want[name])
	}
	if !slices.Equal(s.Buckets, wantBuckets) {
		t.Errorf("Buckets:\n got %+v\nwant %+v", s.Buckets, wantBuckets)
	}
	if s.TxCount <= 0 || s.TxID <= 0 {
		t.Errorf("TxCount %d, TxID %d", s.TxCount, s.TxID)
	}

	// TxID counts commits; TxCount counts read transactions.
	if err := NewTable[int](db, "zeta").Put("y", 1); err != nil {
		t.Fatal(err)
	}
	s2, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s2.TxID != s.TxID+1 || s2.TxCount <= s.TxCount {
		t.Errorf("after one commit: TxID %d -> %d, TxCount %d -> %d", s.TxID, s2.TxID, s.TxCount, s2.TxCount)
	}

	// Deleting data frees pages for reuse.
	err = db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("wallet")) })
	if err != nil {
		t.Fatal(err)
	}
	if err := NewTable[int](db, "zeta").Put("x", 1); err != nil {
		t.Fatal(err)
	}
	s3, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s3.FreePages <= s.FreePages {
		t.Errorf("FreePages %d after deleting a bucket, was %d", s3.FreePages, s.FreePages)
	}
	if len(s3.Buckets) != 2 || s3.Subsystems["wallet"] != 2 {
		t.Errorf("after deleting wallet: Buckets %+v, Subsystems %v", s3.Buckets, s3.Subsystems)
	}
}
