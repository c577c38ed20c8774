package storage

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkTablePut measures one committed, fsynced Put per iteration, so
// it mostly measures the storage device's sync latency.
func BenchmarkTablePut(b *testing.B) {
	db, _ := openTemp(b)
	tbl := NewTable[session](db, "bench", "sessions")
	v := session{ID: "id", User: "alice", Expires: time.Unix(1_900_000_000, 0).UTC(), Scopes: []string{"read", "write"}}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := tbl.Put(fmt.Sprintf("key-%08d", i%10_000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTableGet measures a Get, including its read transaction and the
// JSON decoding, from a table of 10,000 entries.
func BenchmarkTableGet(b *testing.B) {
	db, _ := openTemp(b)
	tbl := NewTable[session](db, "bench", "sessions")
	v := session{ID: "id", User: "alice", Expires: time.Unix(1_900_000_000, 0).UTC(), Scopes: []string{"read", "write"}}
	const n = 10_000
	err := db.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			if err := tbl.PutTx(tx, fmt.Sprintf("key-%08d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := tbl.Get(fmt.Sprintf("key-%08d", i%n)); !ok || err != nil {
			b.Fatalf("Get: %v %v", ok, err)
		}
		i++
	}
}
