package image_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// TestBootEntryFormat pins the entry text: moving the format into package slot must not
// change the image.
func TestBootEntryFormat(t *testing.T) {
	got := image.BootEntry("b", "1.2.3", 7, "anya.network=regtest")
	want := "title Anya Edge 1.2.3 (slot B)\nversion 7\nsort-key anya\nlinux /anya/b/vmlinuz\ninitrd /anya/b/initrd.img\n" +
		"options console=tty0 console=ttyS0,115200 loglevel=4 panic=10 anya.slot=b anya.network=regtest\n"
	if got != want {
		t.Fatalf("entry:\n%s\nwant:\n%s", got, want)
	}
}

// TestTrustedRootShipped checks LoadTrustedRoot and that a root put into the system files
// (as Build does) is readable from the slot's squashfs at slot.TrustedRootFile.
func TestTrustedRootShipped(t *testing.T) {
	dir := t.TempDir()
	repo, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "keys", "roots", "1.root.json")
	root, version, err := image.LoadTrustedRoot(rootFile)
	if err != nil || version != 1 || !bytes.Equal(root, repo.Root()) {
		t.Fatalf("LoadTrustedRoot: version %d, %v", version, err)
	}
	for name, content := range map[string][]byte{
		"missing":  nil,
		"garbage":  []byte("not json"),
		"tampered": bytes.Replace(root, []byte(`"version": 1`), []byte(`"version": 2`), 1),
	} {
		p := filepath.Join(dir, name+".json")
		if content != nil {
			os.WriteFile(p, content, 0o600)
		}
		if _, _, err := image.LoadTrustedRoot(p); err == nil {
			t.Errorf("%s root accepted", name)
		}
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	img := filepath.Join(dir, "img")
	rel, _ := json.Marshal(image.Release{Version: "1.0.0", Counter: 1, Arch: "amd64"})
	cfg := image.Config{Output: img, Version: "1.0.0", Counter: 1, ESPSize: 40 << 20, SlotSize: 4 << 20, DataSize: 1 << 20}
	_, err = image.WriteDisk(cfg, image.Disk{BootEFI: []byte("efi"), Kernel: []byte("k"), Initrd: []byte("i"), Release: rel,
		System: map[string][]byte{"release.json": rel, slot.TrustedRootFile: root}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := image.Layout(img)
	if err != nil || l.ESP.Offset == 0 || l.Slots["a"].Size != 4<<20 || l.Slots["b"].Offset <= l.Slots["a"].Offset {
		t.Fatalf("layout %+v, %v", l, err)
	}
	b, err := file.OpenFromPath(img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, s := range slot.Slots() {
		p := l.Slots[s]
		fsys, err := squashfs.Read(b, p.Size, p.Offset, 0)
		if err != nil {
			t.Fatalf("slot %s: %v", s, err)
		}
		got, err := fsys.ReadFile(slot.TrustedRootFile)
		if err != nil || !bytes.Equal(got, root) {
			t.Fatalf("slot %s: shipped root differs (%v)", s, err)
		}
	}
}
