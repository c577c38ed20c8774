package agent

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/storage"
)

// The update records must stay readable by older firmware after a rollback.
func TestUpdateMigrationsNeverBreak(t *testing.T) {
	if err := MustNotBreak(Subsystem, migrations); err != nil {
		t.Fatal(err)
	}
}

func TestReadBackCatchesLostWrites(t *testing.T) {
	part := filepath.Join(t.TempDir(), "part")
	data := []byte("the system image as written")
	os.WriteFile(part, append(make([]byte, 512), data...), 0o600)
	p := release.Payload{Path: "amd64/system.squashfs", Length: int64(len(data)), SHA256: sha256.Sum256(data)}
	if err := readBack(slot.Partition{Path: part, Offset: 512}, p); err != nil {
		t.Fatal(err)
	}
	p.SHA256 = sha256.Sum256([]byte("what the flash kept instead"))
	if err := readBack(slot.Partition{Path: part, Offset: 512}, p); err == nil {
		t.Fatal("a differing partition read back as written")
	}
	if err := writePartition(slot.Partition{Path: part, Offset: 0, Size: 8}, nil, 9); err == nil {
		t.Fatal("a payload larger than the partition was written")
	}
}

func TestAttemptHistoryIsBounded(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := openRecords(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxAttempts + 5 {
		if err := rec.add(&Attempt{Version: fmt.Sprint(i), Result: Refused}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := rec.list(0)
	if err != nil || len(all) != maxAttempts || all[0].Version != fmt.Sprint(maxAttempts+4) || all[len(all)-1].Version != "5" {
		t.Fatalf("%d attempts (%v), newest %+v", len(all), err, all[0])
	}
	if last, _ := rec.list(1); len(last) != 1 || last[0].ID != uint64(maxAttempts+5) {
		t.Fatalf("last %+v", last)
	}
}
