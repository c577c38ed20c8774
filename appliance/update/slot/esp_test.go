package slot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/image"
)

// espImage writes a small disk image as the image build lays it out and returns it.
func espImage(t *testing.T) string {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	img := filepath.Join(t.TempDir(), "disk.img")
	rel, _ := json.Marshal(image.Release{Version: "1.0.0", Counter: 1, Arch: "amd64"})
	_, err := image.WriteDisk(image.Config{Output: img, Version: "1.0.0", Counter: 1, ESPSize: 40 << 20, SlotSize: 2 << 20, DataSize: 1 << 20},
		image.Disk{BootEFI: []byte("efi"), Kernel: []byte("kernel"), Initrd: []byte("initrd"), Release: rel,
			System: map[string][]byte{"release.json": rel}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// espDir lays out a directory like the ESP.
func espDir(t *testing.T) string {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"loader/entries/anya-a.conf": image.BootEntry("a", "1.0.0", 1, ""),
		"loader/entries/anya-b.conf": image.BootEntry("b", "1.0.0", 0, ""),
		"anya/a/vmlinuz":             "kernel", "anya/b/vmlinuz": "kernel",
		"anya/a/initrd.img": "initrd", "anya/b/initrd.img": "initrd",
		"anya/a/release.json": "{}", "anya/b/release.json": "{}",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	return dir
}

func TestESP(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) slot.Opener{
		"dir": func(t *testing.T) slot.Opener { return slot.DirOpener(espDir(t)) },
		"fat": func(t *testing.T) slot.Opener {
			l, err := image.Layout(espImage(t))
			if err != nil {
				t.Fatal(err)
			}
			return slot.FATOpener(l.ESP)
		},
	} {
		t.Run(name, func(t *testing.T) { testESP(t, open(t)) })
	}
}

func list(t *testing.T, e slot.ESP, dir string) []string {
	t.Helper()
	names, err := e.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func testESP(t *testing.T, open slot.Opener) {
	e, err := open(true)
	if err != nil {
		t.Fatal(err)
	}
	if got := list(t, e, "/loader/entries"); !slices.Equal(got, []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("entries %v", got)
	}
	b, err := e.ReadFile("loader/entries/anya-a.conf")
	if err != nil || slot.ParseEntry(b).Order() != 1 {
		t.Fatalf("entry a: %q, %v", b, err)
	}
	if _, err := e.ReadFile("loader/entries/none.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := e.List("nothing/here"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	if _, err := e.WriteFile("../escape", strings.NewReader("x")); err == nil {
		t.Fatal("wrote outside the ESP")
	}

	// A new entry appears whole under its name; no temporary file stays.
	entry := image.BootEntry("b", "2.0.0", 2, "")
	if n, err := e.WriteFile("loader/entries/anya-b+3.conf", strings.NewReader(entry)); err != nil || n != int64(len(entry)) {
		t.Fatalf("write entry: %d, %v", n, err)
	}
	if got := list(t, e, "loader/entries"); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf", "anya-b.conf"}) {
		t.Fatalf("entries after write %v", got)
	}
	// Renames as systemd-boot and the agent do them, the last one over an existing name.
	for _, step := range [][2]string{{"anya-b+3.conf", "anya-b+2-1.conf"}, {"anya-b+2-1.conf", "anya-b.conf"}} {
		if err := e.Rename("loader/entries/"+step[0], "loader/entries/"+step[1]); err != nil {
			t.Fatalf("rename %s: %v", step[0], err)
		}
	}
	if got := list(t, e, "loader/entries"); !slices.Equal(got, []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("entries after renames %v", got)
	}
	if b, _ := e.ReadFile("loader/entries/anya-b.conf"); string(b) != entry {
		t.Fatalf("renamed entry holds %q", b)
	}
	if err := e.Rename("loader/entries/anya-a.conf", "anya/a/x"); err == nil {
		t.Fatal("renamed across directories")
	}

	// A failing reader leaves the old file.
	if _, err := e.WriteFile("anya/b/vmlinuz", io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("source broke")))); err == nil {
		t.Fatal("write from a failing reader succeeded")
	}
	if b, _ := e.ReadFile("anya/b/vmlinuz"); string(b) != "kernel" {
		t.Fatalf("kernel after failed write: %q", b)
	}
	if got := list(t, e, "anya/b"); !slices.Equal(got, []string{"initrd.img", "release.json", "vmlinuz"}) {
		t.Fatalf("boot dir after failed write %v", got)
	}
	// Replacing a large file many times does not fill the ESP (go-diskfs leaks clusters
	// otherwise): 12 × 4 MiB on a 40 MiB FAT.
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10)
	for i := range 12 {
		big[0] = byte(i)
		if _, err := e.WriteFile("anya/b/vmlinuz", bytes.NewReader(big)); err != nil {
			t.Fatalf("replace %d: %v", i, err)
		}
	}
	if err := e.Remove("anya/b/initrd.img"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove("anya/b/initrd.img"); err != nil {
		t.Fatalf("remove a missing file: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything is there after reopening, read-only.
	e, err = open(false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if b, err := e.ReadFile("anya/b/vmlinuz"); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("kernel after reopen: %d bytes, %v", len(b), err)
	}
	if got := list(t, e, "anya/b"); !slices.Equal(got, []string{"release.json", "vmlinuz"}) {
		t.Fatalf("boot dir after reopen %v", got)
	}
}

func TestFATReadOnly(t *testing.T) {
	l, err := image.Layout(espImage(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := slot.OpenFAT(l.ESP, false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.WriteFile("x", strings.NewReader("x")); err == nil {
		t.Fatal("wrote to a read-only ESP")
	}
	if err := e.Rename("loader/entries/anya-a.conf", "loader/entries/anya-a+1.conf"); err == nil {
		t.Fatal("renamed on a read-only ESP")
	}
}
