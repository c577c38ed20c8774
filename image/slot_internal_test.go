package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadSlot writes a small disk with writeDisk (no Debian packages needed) and reads a
// slot's update payloads back.
func TestReadSlot(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Output: filepath.Join(dir, "img"), Version: "9.9.9", Counter: 9,
		ESPSize: 40 * mib, SlotSize: 8 * mib, DataSize: mib}
	rel, _ := json.Marshal(Release{Version: "9.9.9", Counter: 9, Arch: "amd64"})
	kernel := bytes.Repeat([]byte("kernel"), 1000)
	initrd := bytes.Repeat([]byte("initrd"), 2000)
	system := map[string][]byte{"release.json": rel, "lib/modules/x/a.ko": bytes.Repeat([]byte{1, 2, 3}, 50000)}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	if _, err := writeDisk(cfg, time.Unix(1767225600, 0), []byte("efi"), kernel, initrd, rel, system, nil); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"a", "b"} {
		sf, err := ReadSlot(cfg.Output, slot)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sf.Kernel, kernel) || !bytes.Equal(sf.Initrd, initrd) || !bytes.Equal(sf.Release, rel) {
			t.Fatalf("slot %s: boot files differ", slot)
		}
		if sf.SystemSize < 96 || sf.SystemSize > cfg.SlotSize {
			t.Fatalf("slot %s: squashfs size %d", slot, sf.SystemSize)
		}
		want, _ := PartitionOffset(cfg.Output, map[string]string{"a": LabelSlotA, "b": LabelSlotB}[slot])
		if sf.SystemOffset != want {
			t.Fatalf("slot %s: offset %d, want %d", slot, sf.SystemOffset, want)
		}
		f, _ := os.Open(cfg.Output)
		magic := make([]byte, 4)
		f.ReadAt(magic, sf.SystemOffset)
		f.Close()
		if string(magic) != "hsqs" {
			t.Fatalf("slot %s: no squashfs at the offset", slot)
		}
	}
	if _, err := ReadSlot(cfg.Output, "c"); err == nil {
		t.Fatal("slot c read")
	}
}
