package rescue_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

func reinstallOptions(t *testing.T, disk string, r testRelease, keep bool) rescue.ReinstallOptions {
	src, err := release.OpenDir(r.bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return rescue.ReinstallOptions{Disk: disk, Bundle: src, TrustedRoot: r.root, BootEFI: []byte("systemd-boot efi"),
		KeepData: keep, Cmdline: "anya.network=regtest", Scratch: t.TempDir(), ESPSize: 40 * mib, SlotSize: 8 * mib, Now: now}
}

func TestReinstallBlankDisk(t *testing.T) {
	r := makeRelease(t, "1.2.0", 12)
	disk := blankDisk(t, 200*mib)
	res, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reinstall of a %d-byte release took %s", len(r.kernel)+len(r.initrd)+len(r.system), res.Took)
	if res.Version != "1.2.0" || res.Counter != 12 {
		t.Fatalf("result %+v", res)
	}
	for _, s := range []string{"a", "b"} {
		sf, err := image.ReadSlot(disk, s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sf.Kernel, r.kernel) || !bytes.Equal(sf.Initrd, r.initrd) || !bytes.Equal(sf.Release, r.manifest) {
			t.Fatalf("slot %s: boot files differ", s)
		}
		sys := make([]byte, sf.SystemSize)
		f, _ := os.Open(disk)
		f.ReadAt(sys, sf.SystemOffset)
		f.Close()
		if !bytes.Equal(sys, r.system) {
			t.Fatalf("slot %s: system image differs", s)
		}
	}
	ents, err := image.ListESPDir(disk, "/loader/entries")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ents)
	if strings.Join(ents, ",") != "anya-a.conf,anya-b.conf" {
		t.Fatalf("entries %v", ents)
	}
	a, _ := image.ReadESPFile(disk, "/loader/entries/anya-a.conf")
	if !strings.Contains(string(a), "anya.slot=a anya.network=regtest") || !strings.Contains(string(a), "version 13") {
		t.Fatalf("entry a:\n%s", a)
	}
	efi, _ := image.ReadESPFile(disk, "/EFI/BOOT/BOOTX64.EFI")
	if string(efi) != "systemd-boot efi" {
		t.Fatal("boot loader not written")
	}
}

func TestReinstallKeepsData(t *testing.T) {
	r := makeRelease(t, "1.2.0", 12)
	disk := blankDisk(t, 200*mib)
	if _, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, false)); err != nil {
		t.Fatal(err)
	}
	off, err := image.PartitionOffset(disk, "anya-data")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(disk, os.O_RDWR, 0)
	marker := []byte("the owner's data partition")
	f.WriteAt(marker, off+4096)
	// Damage slot a's system image: a reinstall repairs it.
	sa, _ := image.ReadSlot(disk, "a")
	f.WriteAt(make([]byte, 4096), sa.SystemOffset)
	f.Close()
	if _, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, true)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(marker))
	f, _ = os.Open(disk)
	f.ReadAt(got, off+4096)
	sys := make([]byte, len(r.system))
	f.ReadAt(sys, sa.SystemOffset)
	f.Close()
	if !bytes.Equal(got, marker) {
		t.Fatal("the data partition changed")
	}
	if !bytes.Equal(sys, r.system) {
		t.Fatal("slot a not repaired")
	}
	// Without keeping, the data partition's start is cleared.
	if _, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, false)); err != nil {
		t.Fatal(err)
	}
	f, _ = os.Open(disk)
	f.ReadAt(got, off+4096)
	f.Close()
	if !bytes.Equal(got, make([]byte, len(marker))) {
		t.Fatal("the data partition was not cleared")
	}
}

func TestReinstallRefusesBadBundle(t *testing.T) {
	r := makeRelease(t, "1.2.0", 12)
	other := makeRelease(t, "1.2.0", 12) // signed with other keys
	disk := blankDisk(t, 200*mib)
	o := reinstallOptions(t, disk, r, false)
	o.TrustedRoot = other.root
	if _, err := rescue.Reinstall(context.Background(), o); err == nil {
		t.Fatal("a bundle of other keys was installed")
	}
	// A tampered payload.
	sys, _ := filepath.Glob(filepath.Join(r.bundle, "targets", "amd64", "*system*"))
	if len(sys) != 1 {
		t.Fatalf("system payload: %v", sys)
	}
	b, _ := os.ReadFile(sys[0])
	b[len(b)/2] ^= 1
	os.WriteFile(sys[0], b, 0o644)
	_, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, false))
	if release.ReasonOf(err) != release.ReasonPayloadMismatch {
		t.Fatalf("tampered bundle: %v", err)
	}
	// Nothing was written for the refused bundles: the disk is still blank.
	b, _ = os.ReadFile(disk)
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("a refused bundle changed the disk")
	}
}

func TestReinstallKeepOnBlankAndForeignDisks(t *testing.T) {
	r := makeRelease(t, "1.2.0", 12)
	// "Keep the data" on a blank disk: there is none, the disk is set up as new.
	disk := blankDisk(t, 200*mib)
	if _, err := rescue.Reinstall(context.Background(), reinstallOptions(t, disk, r, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := image.ReadSlot(disk, "b"); err != nil {
		t.Fatal(err)
	}
	// A disk with someone else's partitions is not taken over when keeping data.
	foreign := blankDisk(t, 200*mib)
	d, err := diskfs.Open(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Partition(&gpt.Table{Partitions: []*gpt.Partition{{Index: 1, Start: 2048, End: 204799, Type: gpt.LinuxFilesystem, Name: "home"}},
		LogicalSectorSize: 512, ProtectiveMBR: true}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before, _ := os.ReadFile(foreign)
	if _, err := rescue.Reinstall(context.Background(), reinstallOptions(t, foreign, r, true)); !errors.Is(err, rescue.ErrNoLayout) {
		t.Fatalf("foreign disk: %v", err)
	}
	if after, _ := os.ReadFile(foreign); !bytes.Equal(before, after) {
		t.Fatal("a refused reinstall changed the foreign disk")
	}
}
