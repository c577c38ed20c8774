package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// fill gives db two subsystems: "wallet" (whole) and "vault", whose "sealed" child is
// device-bound and must stay out of exports.
func fill(t testing.TB, db *DB) {
	t.Helper()
	for _, sub := range []string{"wallet", "vault", "other"} {
		if err := db.Migrate(sub, []Migration{{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }}}); err != nil {
			t.Fatal(err)
		}
	}
	hist := NewTable[string](db, "wallet", "history")
	err := db.Update(func(tx *bbolt.Tx) error {
		for i := range 50 {
			if err := hist.PutTx(tx, fmt.Sprintf("%04d", i), fmt.Sprintf("tx %d", i)); err != nil {
				return err
			}
		}
		b, err := tx.Bucket([]byte("wallet")).CreateBucketIfNotExists([]byte("deep"))
		if err != nil {
			return err
		}
		for range 3 {
			if _, err := b.NextSequence(); err != nil {
				return err
			}
		}
		nb, err := b.CreateBucketIfNotExists([]byte("er"))
		if err != nil {
			return err
		}
		if err := nb.Put([]byte("empty"), []byte{}); err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists([]byte("nothing")); err != nil {
			return err
		}
		return tx.Bucket([]byte("wallet")).Put([]byte("top-key"), []byte("top value"))
	})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, NewTable[string](db, "vault", "sealed"), "blob", "SECRET-BLOB")
	mustPut(t, NewTable[string](db, "vault", "spends"), "s1", "spend one")
	mustPut(t, NewTable[string](db, "other"), "k", "not exported")
}

func mustPut[V any](t testing.TB, tbl *Table[V], k string, v V) {
	t.Helper()
	if err := tbl.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

var testSpecs = []ExportSpec{{Subsystem: "wallet"}, {Subsystem: "vault", Except: []string{"sealed"}}, {Subsystem: "absent"}}

var testKnown = map[string]int{"wallet": 1, "vault": 1}

func export(t testing.TB, db *DB) ([]byte, ExportInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := db.ExportSubsystems(&buf, testSpecs)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(buf.Len()) {
		t.Fatalf("info.Size %d, wrote %d", info.Size, buf.Len())
	}
	return buf.Bytes(), info
}

// dump renders every bucket of db (MetaBucket's applied_at times aside) for comparison.
func dump(t testing.TB, db *DB, subsystems ...string) string {
	t.Helper()
	var out bytes.Buffer
	var walk func(prefix string, b *bbolt.Bucket)
	walk = func(prefix string, b *bbolt.Bucket) {
		fmt.Fprintf(&out, "%s seq=%d\n", prefix, b.Sequence())
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil && b.Bucket(k) != nil {
				walk(prefix+"/"+string(k), b.Bucket(k))
				return nil
			}
			fmt.Fprintf(&out, "%s/%s=%q\n", prefix, k, v)
			return nil
		})
	}
	err := db.View(func(tx *bbolt.Tx) error {
		for _, s := range subsystems {
			if b := tx.Bucket([]byte(s)); b != nil {
				walk(s, b)
			}
			if b := schemaBucket(tx, s); b != nil {
				walk("_meta/"+s, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestExportImportRoundTrip(t *testing.T) {
	src, _ := openTemp(t)
	fill(t, src)
	data, info := export(t, src)
	if bytes.Contains(data, []byte("SECRET-BLOB")) || bytes.Contains(data, []byte("not exported")) {
		t.Fatal("export holds data its specs leave out")
	}
	if got := []string{info.Subsystems[0].Name, info.Subsystems[1].Name}; len(info.Subsystems) != 2 || !slices.Equal(got, []string{"wallet", "vault"}) {
		t.Fatalf("subsystems %+v", info.Subsystems)
	}
	if w := info.Subsystems[0]; w.Version != 1 || w.MinReader != 1 || w.Keys != 52 || w.Buckets != 4 {
		t.Fatalf("wallet %+v", w)
	}

	// The same data exports to the same bytes.
	again, info2 := export(t, src)
	if !bytes.Equal(data, again) || info.Digest != info2.Digest {
		t.Fatal("export is not deterministic")
	}

	read, err := ReadExport(bytes.NewReader(data), ImportOptions{Known: testKnown})
	if err != nil {
		t.Fatal(err)
	}
	if read.Digest != info.Digest || read.Size != info.Size || !slices.EqualFunc(read.Subsystems, info.Subsystems, func(a, b SubsystemExport) bool {
		return a.Name == b.Name && a.Keys == b.Keys && a.Buckets == b.Buckets && a.Bytes == b.Bytes && a.Version == b.Version
	}) {
		t.Fatalf("ReadExport %+v, export %+v", read, info)
	}

	// Into a database that holds its own, different data: wallet replaced, vault's sealed
	// child kept, its spends replaced, other subsystems untouched.
	dst, _ := openTemp(t)
	for _, sub := range []string{"wallet", "vault"} {
		if err := dst.Migrate(sub, []Migration{{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }}}); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, NewTable[string](dst, "wallet", "history"), "9999", "stale")
	mustPut(t, NewTable[string](dst, "vault", "sealed"), "blob", "NEW-BOX-BLOB")
	mustPut(t, NewTable[string](dst, "vault", "spends"), "old", "stale spend")
	mustPut(t, NewTable[string](dst, "third"), "k", "v")
	before := dst.Generation("wallet")
	if _, err := dst.ImportSubsystems(bytes.NewReader(data), ImportOptions{Known: testKnown}); err != nil {
		t.Fatal(err)
	}
	if dst.Generation("wallet") == before {
		t.Fatal("import did not count as a change")
	}
	if got, want := dump(t, dst, "wallet"), dump(t, src, "wallet"); got != want {
		t.Fatalf("wallet after import:\n%s\nwant:\n%s", got, want)
	}
	if v, _, _ := NewTable[string](dst, "vault", "sealed").Get("blob"); v != "NEW-BOX-BLOB" {
		t.Fatalf("kept child: %q", v)
	}
	if n, _ := NewTable[string](dst, "vault", "spends").Len(); n != 1 {
		t.Fatalf("vault/spends has %d entries, want the exported one", n)
	}
	if v, _, _ := NewTable[string](dst, "third").Get("k"); v != "v" {
		t.Fatal("a subsystem outside the export changed")
	}
	if err := dst.Check(); err != nil {
		t.Fatal(err)
	}

	// Skip: read and checked, not written.
	dst2, _ := openTemp(t)
	if _, err := dst2.ImportSubsystems(bytes.NewReader(data), ImportOptions{Known: testKnown, Skip: []string{"wallet"}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := dst2.SchemaVersion("wallet"); v != 0 {
		t.Fatal("skipped subsystem was written")
	}
	if v, _ := dst2.SchemaVersion("vault"); v != 1 {
		t.Fatalf("vault schema version %d after import", v)
	}
}

// fileBytes reads the database file with the database closed in between, so the test sees
// exactly what is on disk.
func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportRefusals: every refusal leaves the target file byte for byte as it was.
func TestImportRefusals(t *testing.T) {
	src, _ := openTemp(t)
	fill(t, src)
	data, _ := export(t, src)

	// A source whose wallet schema had a breaking migration 2 that the importer does not know.
	newer, _ := openTemp(t)
	fill(t, newer)
	err := newer.Migrate("wallet", []Migration{
		{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }},
		{Version: 2, Name: "new format", Breaking: true, Up: func(*bbolt.Tx) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	newerData, _ := export(t, newer)

	// A non-breaking migration 2 is fine for code that knows 1.
	compat, _ := openTemp(t)
	fill(t, compat)
	err = compat.Migrate("wallet", []Migration{
		{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }},
		{Version: 2, Name: "new field", Up: func(*bbolt.Tx) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	compatData, _ := export(t, compat)

	dir := t.TempDir()
	path := filepath.Join(dir, "target.db")
	setup, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Migrate("vault", []Migration{
		{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }},
		{Version: 2, Name: "newer vault", Up: func(*bbolt.Tx) error { return nil }},
	}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, NewTable[string](setup, "vault", "sealed"), "blob", "kept")
	mustPut(t, NewTable[string](setup, "wallet"), "mine", "target data")
	setup.Close()

	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x40; return c }
	cases := []struct {
		name string
		data []byte
		opts ImportOptions
		want error
	}{
		{"empty", nil, ImportOptions{Known: testKnown}, ErrBadExport},
		{"not an export", []byte("hello, world"), ImportOptions{Known: testKnown}, ErrBadExport},
		{"truncated", data[:len(data)/2], ImportOptions{Known: testKnown}, ErrBadExport},
		{"digest cut", data[:len(data)-1], ImportOptions{Known: testKnown}, ErrBadExport},
		{"trailing data", append(bytes.Clone(data), 0), ImportOptions{Known: testKnown}, ErrBadExport},
		{"flipped byte", flip(data, len(data)/2), ImportOptions{Known: testKnown}, ErrBadExport},
		{"flipped digest", flip(data, len(data)-3), ImportOptions{Known: testKnown}, ErrBadExport},
		{"newer format", flip(data, 7), ImportOptions{Known: testKnown}, ErrBadExport},
		{"unknown subsystem", data, ImportOptions{Known: map[string]int{"wallet": 1}}, ErrUnknownSubsystem},
		{"no Known", data, ImportOptions{}, ErrUnknownSubsystem},
		{"schema too new", newerData, ImportOptions{Known: testKnown}, ErrSchemaTooNew},
		{"too big", data, ImportOptions{Known: testKnown, MaxBytes: 100}, ErrBadExport},
		// vault is kept in part and the target is at version 2, the export at 1.
		{"kept part at another version", compatData, ImportOptions{Known: testKnown}, ErrSchemaMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fileBytes(t, path)
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.ImportSubsystems(bytes.NewReader(tc.data), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, fileBytes(t, path)) {
				t.Error("the database file changed")
			}
		})
	}

	// Every single-byte flip and every cut is refused by ReadExport (sampled every 7 bytes
	// to keep the test quick, plus the first and last 40).
	for i := range data {
		if i%7 != 0 && i > 40 && i < len(data)-40 {
			continue
		}
		if _, err := ReadExport(bytes.NewReader(flip(data, i)), ImportOptions{Known: testKnown}); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
		if _, err := ReadExport(bytes.NewReader(data[:i]), ImportOptions{Known: testKnown}); !errors.Is(err, ErrBadExport) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
}

func TestImportOlderSchemaThenMigrate(t *testing.T) {
	src, _ := openTemp(t)
	fill(t, src)
	data, _ := export(t, src)
	dst, _ := openTemp(t)
	two := []Migration{
		{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }},
		{Version: 2, Name: "add index", Up: func(tx *bbolt.Tx) error {
			_, err := tx.Bucket([]byte("wallet")).CreateBucket([]byte("index"))
			return err
		}},
	}
	if err := dst.Migrate("wallet", two); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.ImportSubsystems(bytes.NewReader(data), ImportOptions{Known: map[string]int{"wallet": 2, "vault": 1}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := dst.SchemaVersion("wallet"); v != 1 {
		t.Fatalf("after import the wallet is at version %d, want the export's 1", v)
	}
	if err := dst.Migrate("wallet", two); err != nil {
		t.Fatalf("migrating the imported data: %v", err)
	}
	s, _ := dst.Schema("wallet")
	if s.Version != 2 || len(s.History) != 2 {
		t.Fatalf("schema after migrate: %+v", s)
	}
}

func TestGenerations(t *testing.T) {
	db, _ := openTemp(t)
	ch, stop := db.Watch()
	defer stop()
	tbl := NewTable[int](db, "a", "x")
	if db.Generation("a") != 0 {
		t.Fatal("fresh generation not 0")
	}
	mustPut(t, tbl, "k", 1)
	g1 := db.Generation("a")
	if g1 == 0 {
		t.Fatal("Put did not count")
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no wake-up")
	}
	// A rolled-back transaction does not count.
	_ = db.Update(func(tx *bbolt.Tx) error {
		_ = tbl.PutTx(tx, "k", 2)
		return errors.New("roll back")
	})
	if db.Generation("a") != g1 {
		t.Fatal("rolled-back write counted")
	}
	select {
	case <-ch:
		t.Fatal("wake-up for a rolled-back write")
	default:
	}
	if err := tbl.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if db.Generation("a") <= g1 {
		t.Fatal("Delete did not count")
	}
	// Raw writers mark their changes themselves.
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("raw"))
		if err != nil {
			return err
		}
		db.MarkChanged(tx, "raw")
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if g := db.Generations(); g["raw"] != 1 || g["a"] < 2 {
		t.Fatalf("generations %v", g)
	}
	if err := db.Migrate("m", []Migration{{Version: 1, Name: "init", Up: func(*bbolt.Tx) error { return nil }}}); err != nil {
		t.Fatal(err)
	}
	if db.Generation("m") == 0 {
		t.Fatal("Migrate did not count")
	}
	// Many commits, one pending wake-up.
	for i := range 10 {
		mustPut(t, tbl, "k", i)
	}
	<-ch
	select {
	case <-ch:
		t.Fatal("wake-ups not coalesced")
	default:
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	write := func(content string, fail bool) error {
		return WriteFileAtomic(path, func(w io.Writer) (int64, error) {
			n, err := w.Write([]byte(content))
			if fail {
				return int64(n), errors.New("boom")
			}
			return int64(n), err
		})
	}
	if err := write("one", false); err != nil {
		t.Fatal(err)
	}
	if err := write("two", true); err == nil {
		t.Fatal("failed write reported success")
	}
	got, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if string(got) != "one" || len(entries) != 1 {
		t.Fatalf("after a failed write: %q, %d entries", got, len(entries))
	}
}

func TestExportSpecsAndThen(t *testing.T) {
	db, _ := openTemp(t)
	fill(t, db)
	for _, specs := range [][]ExportSpec{
		{{Subsystem: "wallet", Only: []string{"a"}, Except: []string{"b"}}},
		{{Subsystem: "wallet"}, {Subsystem: "wallet"}},
		{{Subsystem: "_meta"}},
		{{Subsystem: "wallet", Only: []string{""}}},
	} {
		if _, err := db.ExportSubsystems(io.Discard, specs); err == nil {
			t.Fatalf("specs %+v accepted", specs)
		}
	}
	data, _ := export(t, db)

	// Then runs in the import's transaction: its error undoes the import.
	dst, _ := openTemp(t)
	_, err := dst.ImportSubsystems(bytes.NewReader(data), ImportOptions{Known: testKnown, Then: func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("wallet")) == nil {
			t.Error("Then runs before the import")
		}
		return errors.New("no")
	}})
	if err == nil {
		t.Fatal("Then's error was lost")
	}
	if v, _ := dst.SchemaVersion("wallet"); v != 0 {
		t.Fatal("the import committed despite Then's error")
	}
	_, err = dst.ImportSubsystems(bytes.NewReader(data), ImportOptions{Known: testKnown, Then: func(tx *bbolt.Tx) error {
		return NewTable[string](dst, "wallet", "notes").PutTx(tx, "k", "imported")
	}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := NewTable[string](dst, "wallet", "notes").Get("k"); v != "imported" {
		t.Fatal("Then's write is missing")
	}
}
