package usbstick_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/appliance/uevent"
	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
)

func TestFATLabel(t *testing.T) {
	// A whole-device FAT32, as a laptop formats a stick without a partition table.
	img := filepath.Join(t.TempDir(), "stick.img")
	d, err := diskfs.Create(img, 40<<20, diskfs.SectorSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "anya-backup"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	l, err := usbstick.Label(img, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := usbstick.Ours(l); !ok || got != usbstick.LabelBackup {
		t.Fatalf("label %q", l)
	}
	if l, _ := usbstick.Label(img, "ANYA-RECOVERY"); l != usbstick.LabelRecovery {
		t.Fatalf("GPT name: %q", l)
	}
	other := filepath.Join(t.TempDir(), "zero.img")
	os.WriteFile(other, make([]byte, 4096), 0o644)
	if _, err := usbstick.Label(other, "data"); !errors.Is(err, usbstick.ErrNotFAT) {
		t.Fatalf("not FAT: %v", err)
	}
}

func TestBlockEvents(t *testing.T) {
	e, err := uevent.Parse([]byte("add@/devices/pci0000:00/usb1/1-1/host0/block/sda/sda1\x00ACTION=add\x00SUBSYSTEM=block\x00DEVTYPE=partition\x00DEVNAME=sda1\x00PARTNAME=ANYA-BACKUP"))
	if err != nil {
		t.Fatal(err)
	}
	if dev, ok := usbstick.BlockAdded(e); !ok || dev != "/dev/sda1" || e.Env["PARTNAME"] != "ANYA-BACKUP" {
		t.Fatalf("%q %v", dev, ok)
	}
	e.Action, e.Env["ACTION"] = "remove", "remove"
	if _, ok := usbstick.BlockAdded(e); ok {
		t.Fatal("a removal taken for an addition")
	}
	if dev, ok := usbstick.BlockRemoved(e); !ok || dev != "/dev/sda1" {
		t.Fatal("removal")
	}
}
