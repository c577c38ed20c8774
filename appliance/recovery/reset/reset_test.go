package reset_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/reset"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/storage"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"go.etcd.io/bbolt"
)

const mib = 1 << 20

func TestToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := reset.NewToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 39 { // 32 characters in 8 groups
		t.Fatalf("token %q", tok)
	}
	b, _ := os.ReadFile(filepath.Join(dir, reset.TokenFile))
	if strings.Contains(string(b), strings.ReplaceAll(tok, "-", "")) || len(strings.TrimSpace(string(b))) != 64 {
		t.Fatalf("token file holds %q", b)
	}
	if err := reset.CheckToken(dir, strings.ToLower(strings.ReplaceAll(tok, "-", " "))); err != nil {
		t.Fatalf("typed token: %v", err)
	}
	if err := reset.CheckToken(dir, "AAAA-"+tok[5:]); !errors.Is(err, reset.ErrWrongToken) {
		t.Fatalf("wrong token: %v", err)
	}
	if err := reset.CheckToken(t.TempDir(), tok); !errors.Is(err, reset.ErrNoToken) {
		t.Fatalf("no token: %v", err)
	}
	stick := t.TempDir()
	if err := reset.CheckRequest(stick, dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no request: %v", err)
	}
	os.WriteFile(filepath.Join(stick, reset.RequestFile), []byte(tok+"\n"), 0o644)
	if err := reset.CheckRequest(stick, dir); !errors.Is(err, reset.ErrConfirmation) {
		t.Fatalf("unconfirmed request: %v", err)
	}
	os.WriteFile(filepath.Join(stick, reset.RequestFile), []byte("# Anya reset\n"+tok+"\r\nErase this box\r\n"), 0o644)
	if err := reset.CheckRequest(stick, dir); err != nil {
		t.Fatalf("request: %v", err)
	}
	// A new token replaces the old one.
	if _, err := reset.NewToken(dir); err != nil {
		t.Fatal(err)
	}
	if err := reset.CheckRequest(stick, dir); !errors.Is(err, reset.ErrWrongToken) {
		t.Fatalf("old token: %v", err)
	}
}

// secrets are what an erased box must not hold anywhere.
var secrets = [][]byte{[]byte("SEALED-SEED-BLOB-7f3a9c"), []byte("ARGON2ID-HASH-c0ffee"), []byte("TPM-BLOB-SECRET-9911")}

// secretDB makes a real database holding the secrets.
func secretDB(t *testing.T, path string) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("custody"))
		if err != nil {
			return err
		}
		for i, s := range secrets {
			if err := b.Put([]byte{byte(i)}, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func scan(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if i := bytes.Index(b, s); i >= 0 {
			t.Errorf("%s still holds %q at %d", name, s, i)
		}
	}
}

// TestEraseDiskImage erases the data partition of a box's disk image whose ext4 holds the
// database, a stale copy of it in freed blocks, and then scans the whole image.
func TestEraseDiskImage(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	d := image.Disk{BootEFI: []byte("systemd-boot"), Kernel: []byte("kernel"), Initrd: []byte("initrd"), Release: []byte("{}"),
		System: map[string][]byte{"release.json": []byte("{}")}}
	if _, err := image.WriteDisk(image.Config{Output: img, ESPSize: 40 * mib, SlotSize: 4 * mib, DataSize: 16 * mib}, d); err != nil {
		t.Fatal(err)
	}
	off, err := image.PartitionOffset(img, image.LabelData)
	if err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "anya.db")
	secretDB(t, dbFile)
	dbBytes, _ := os.ReadFile(dbFile)
	b, err := file.OpenFromPath(img, false)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Create(b, 16*mib, off, 512, &ext4.Params{VolumeName: image.LabelData})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"anya.db", dbBytes}, {"old.db", dbBytes}} {
		w, err := fsys.OpenFile(f.name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if err := fsys.Remove("old.db"); err != nil { // its blocks are free but still hold it
		t.Fatal(err)
	}
	b.Close()
	before, _ := os.ReadFile(img)
	if !bytes.Contains(before, secrets[0]) {
		t.Fatal("test setup: the image does not hold the secrets")
	}
	slotBefore, _ := image.ReadSlot(img, "a")

	res, err := reset.Erase(reset.EraseOptions{Device: img, Offset: off, Size: 16 * mib, Label: image.LabelData})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("erased %d bytes in %s", res.BytesZeroed, res.Took)
	scan(t, img)
	after, _ := os.ReadFile(img)
	if !bytes.Equal(before[:off], after[:off]) {
		t.Error("the firmware (everything before the data partition) changed")
	}
	if after[off+1080] != 0x53 || after[off+1081] != 0xEF {
		t.Error("the data partition holds no new ext4 filesystem")
	}
	if slotAfter, _ := image.ReadSlot(img, "a"); !bytes.Equal(slotAfter.Kernel, slotBefore.Kernel) {
		t.Error("slot a changed")
	}
}

// TestEraseMounted erases a mounted data directory's files in place, then the partition
// (a file here) and formats it.
func TestEraseMounted(t *testing.T) {
	dataDir := t.TempDir()
	dbFile := filepath.Join(dataDir, "anya.db")
	secretDB(t, dbFile)
	os.WriteFile(filepath.Join(dataDir, "network.json"), secrets[1], 0o600)
	part := filepath.Join(t.TempDir(), "data.part")
	f, _ := os.Create(part)
	f.Truncate(64 * mib)
	f.WriteAt(secrets[2], 3*mib)
	f.Close()
	unmounted := false
	res, err := reset.Erase(reset.EraseOptions{DataDir: dataDir, Device: part, Label: "anya-data",
		Unmount: func() error { unmounted = true; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !unmounted || res.FilesOverwritten != 2 {
		t.Fatalf("unmounted %v, result %+v", unmounted, res)
	}
	scan(t, dbFile)
	scan(t, filepath.Join(dataDir, "network.json"))
	scan(t, part)
	if !reset.Pending(dataDir) {
		if err := reset.Request(dataDir, "test"); err != nil || !reset.Pending(dataDir) {
			t.Fatal("request not recorded", err)
		}
	}
}
