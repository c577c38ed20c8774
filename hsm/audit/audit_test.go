package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

func filledLog(t *testing.T, n int) (*Log, *storage.DB) {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "a.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := l.Append(EventSign, fmt.Sprintf("txid %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return l, db
}

func TestVerifyIntact(t *testing.T) {
	l, _ := filledLog(t, 10)
	if n, err := l.Verify(); err != nil || n != 10 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	recs, err := l.List(7, 100)
	if err != nil || len(recs) != 3 || recs[0].Seq != 8 {
		t.Fatalf("List: %v %+v", err, recs)
	}
	empty, _ := filledLog(t, 0)
	if n, err := empty.Verify(); err != nil || n != 0 {
		t.Fatalf("empty log: %d %v", n, err)
	}
}

// Each kind of tampering, done directly in the database file, is detected.
func TestTamperingDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(l *Log, tx *bbolt.Tx) error
		want   string
	}{
		{"edit detail", func(l *Log, tx *bbolt.Tx) error {
			r, _, _ := l.records.GetTx(tx, seqKey(4))
			r.Detail = "txid 999"
			return l.records.PutTx(tx, seqKey(4), r)
		}, "record 4 was modified"},
		{"edit and rehash", func(l *Log, tx *bbolt.Tx) error {
			r, _, _ := l.records.GetTx(tx, seqKey(4))
			r.Detail = "txid 999"
			r.Hash = r.hash()
			return l.records.PutTx(tx, seqKey(4), r)
		}, "record 5 does not follow record 4"},
		{"delete middle", func(l *Log, tx *bbolt.Tx) error { return l.records.DeleteTx(tx, seqKey(5)) }, "record 5 is missing"},
		{"delete last", func(l *Log, tx *bbolt.Tx) error { return l.records.DeleteTx(tx, seqKey(10)) }, "ends at record 9"},
		{"swap", func(l *Log, tx *bbolt.Tx) error {
			a, _, _ := l.records.GetTx(tx, seqKey(2))
			b, _, _ := l.records.GetTx(tx, seqKey(3))
			l.records.PutTx(tx, seqKey(2), b)
			return l.records.PutTx(tx, seqKey(3), a)
		}, "claims sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := filledLog(t, 10)
			if err := db.Update(func(tx *bbolt.Tx) error { return tt.tamper(l, tx) }); err != nil {
				t.Fatal(err)
			}
			_, err := l.Verify()
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify error %v, want %q", err, tt.want)
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	db, _ := storage.Open(filepath.Join(b.TempDir(), "a.db"), storage.Options{})
	defer db.Close()
	l, _ := Open(db)
	b.ReportAllocs()
	for b.Loop() {
		l.Append(EventSign, "txid")
	}
}
