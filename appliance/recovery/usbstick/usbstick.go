package usbstick

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/anya-edge/anya/appliance/uevent"
	"golang.org/x/sys/unix"
)

// Labels of the sticks the box uses (GPT partition name or FAT volume label, compared
// without regard to case).
const (
	LabelBackup   = "ANYA-BACKUP"
	LabelRecovery = "ANYA-RECOVERY"
	// fatRecovery is the recovery stick's FAT volume label (11 characters at most).
	fatRecovery = "ANYA-RESCUE"
)

// MountRoot is where sticks are mounted: MountRoot/<LABEL>.
const MountRoot = "/run/anya/usb"

// BackupsDir is the directory of backups on a stick.
const BackupsDir = "backups"

// Ours reports whether label names one of the box's sticks, and which (LabelBackup or
// LabelRecovery).
func Ours(label string) (string, bool) {
	switch strings.ToUpper(strings.TrimSpace(label)) {
	case LabelBackup:
		return LabelBackup, true
	case LabelRecovery, fatRecovery:
		return LabelRecovery, true
	}
	return "", false
}

// BlockAdded returns the device node of a block device (a partition, or a disk without a
// partition table) that the event adds.
func BlockAdded(e uevent.Event) (string, bool) {
	if e.Action != "add" || e.Env["SUBSYSTEM"] != "block" || e.Env["DEVNAME"] == "" {
		return "", false
	}
	if t := e.Env["DEVTYPE"]; t != "partition" && t != "disk" {
		return "", false
	}
	return "/dev/" + e.Env["DEVNAME"], true
}

// BlockRemoved is BlockAdded for removal.
func BlockRemoved(e uevent.Event) (string, bool) {
	if e.Action != "remove" || e.Env["SUBSYSTEM"] != "block" || e.Env["DEVNAME"] == "" {
		return "", false
	}
	return "/dev/" + e.Env["DEVNAME"], true
}

// OnUSB reports whether the block device node dev (/dev/sda1) sits on a USB device, from
// its sysfs path (/sys/class/block/sda1 → …/usb1/1-1/…).
func OnUSB(dev string) bool {
	p, err := filepath.EvalSymlinks(filepath.Join("/sys/class/block", filepath.Base(dev)))
	return err == nil && strings.Contains(p, "/usb")
}

// Label returns the label a stick's partition goes by: its GPT name (the event's PARTNAME)
// when that is one of ours, else its FAT volume label read from the boot sector. Sticks
// formatted on a laptop usually have an MBR and only a FAT label.
func Label(dev, partname string) (string, error) {
	if l, ok := Ours(partname); ok {
		return l, nil
	}
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return FATLabel(f)
}

// ErrNotFAT means the boot sector is not a FAT one.
var ErrNotFAT = errors.New("not a FAT filesystem")

// FATLabel reads the volume label from a FAT12/16/32 boot sector (the extended BIOS
// parameter block; "NO NAME" means none).
func FATLabel(r io.ReaderAt) (string, error) {
	var bs [512]byte
	if _, err := r.ReadAt(bs[:], 0); err != nil {
		return "", fmt.Errorf("read boot sector: %w", err)
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return "", ErrNotFAT
	}
	var label []byte
	switch {
	case string(bs[82:87]) == "FAT32" && bs[66] == 0x29:
		label = bs[71:82]
	case strings.HasPrefix(string(bs[54:62]), "FAT") && bs[38] == 0x29:
		label = bs[43:54]
	default:
		return "", ErrNotFAT
	}
	l := strings.TrimRight(string(label), " \x00")
	if l == "NO NAME" {
		l = ""
	}
	return l, nil
}

// Mount mounts a stick's FAT filesystem at MountRoot/<label> (read-write, no device files,
// no programs) and returns the directory.
func Mount(dev, label string) (string, error) {
	dir := filepath.Join(MountRoot, label)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	err := unix.Mount(dev, dir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOATIME, "umask=077,flush")
	if err != nil {
		return "", fmt.Errorf("mount %s (%s) at %s: %w", dev, label, dir, err)
	}
	return dir, nil
}

// Unmount unmounts a stick's directory (lazily when it is busy: the stick is gone anyway).
func Unmount(dir string) error {
	unix.Sync()
	if err := unix.Unmount(dir, 0); err != nil {
		return unix.Unmount(dir, unix.MNT_DETACH)
	}
	return nil
}
