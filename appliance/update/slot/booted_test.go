package slot

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

func efiString(s string) []byte {
	b := []byte{7, 0, 0, 0} // attributes
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

func TestFindBooted(t *testing.T) {
	for _, c := range []struct {
		cmdline, entry string
		slot           string
		warn, fails    bool
	}{
		{cmdline: "console=ttyS0 anya.slot=b", slot: "b"},
		{cmdline: "anya.slot=a", entry: "anya-a+2-1.conf", slot: "a"},
		{cmdline: "anya.slot=a", entry: "anya-b.conf", slot: "a", warn: true},
		{cmdline: "quiet", entry: "anya-b+0-3.conf", slot: "b"},
		{cmdline: "quiet", entry: "auto-windows", fails: true, warn: true},
		{cmdline: "anya.slot=c", fails: true},
		{cmdline: "quiet", fails: true},
	} {
		b, err := FindBooted(c.cmdline, c.entry)
		if c.fails {
			if err == nil || !errors.Is(err, ErrUnknownSlot) {
				t.Errorf("%q/%q: %+v, %v", c.cmdline, c.entry, b, err)
			}
		} else if err != nil || b.Slot != c.slot {
			t.Errorf("%q/%q: %+v, %v; want slot %s", c.cmdline, c.entry, b, err, c.slot)
		}
		if (b.Warning != "") != c.warn {
			t.Errorf("%q/%q: warning %q", c.cmdline, c.entry, b.Warning)
		}
	}
}

func TestDetectBooted(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("BOOT_IMAGE=x anya.slot=b\n"), 0o644)
	vars := filepath.Join(dir, "efivars")
	os.MkdirAll(vars, 0o755)
	os.WriteFile(filepath.Join(vars, "LoaderEntrySelected-"+LoaderVendor), efiString("anya-b+2-1.conf"), 0o644)
	b, err := DetectBooted(cmdline, vars)
	if err != nil || b.Slot != "b" || b.Entry != "anya-b+2-1.conf" || b.Warning != "" {
		t.Fatalf("%+v, %v", b, err)
	}
	// Without efivars (not booted by systemd-boot) the command line is enough.
	b, err = DetectBooted(cmdline, filepath.Join(dir, "none"))
	if err != nil || b.Slot != "b" || b.Entry != "" {
		t.Fatalf("%+v, %v", b, err)
	}
	if _, err := decodeEFIString([]byte{1, 2, 3}); err == nil {
		t.Fatal("short variable decoded")
	}
}

// fakeSysfs builds class/block links to devices/.../<disk>/<part> as the kernel does.
func fakeSysfs(t *testing.T, disks map[string]map[string]string) string {
	sys := t.TempDir()
	os.MkdirAll(filepath.Join(sys, "class/block"), 0o755)
	for disk, parts := range disks {
		dd := filepath.Join(sys, "devices/pci0000:00/virtio", disk)
		os.MkdirAll(dd, 0o755)
		os.WriteFile(filepath.Join(dd, "uevent"), []byte("DEVNAME="+disk+"\nDEVTYPE=disk\n"), 0o644)
		os.Symlink(dd, filepath.Join(sys, "class/block", disk))
		for part, label := range parts {
			pd := filepath.Join(dd, part)
			os.MkdirAll(pd, 0o755)
			os.WriteFile(filepath.Join(pd, "uevent"), []byte("DEVNAME="+part+"\nDEVTYPE=partition\nPARTN=1\nPARTNAME="+label+"\n"), 0o644)
			os.WriteFile(filepath.Join(pd, "size"), []byte("2048\n"), 0o644)
			os.Symlink(pd, filepath.Join(sys, "class/block", part))
		}
	}
	return sys
}

func TestDiscover(t *testing.T) {
	box := map[string]string{"vda1": "ESP", "vda2": "anya-a", "vda3": "anya-b", "vda4": "anya-data"}
	stick := map[string]string{"sda1": "ESP", "sda2": "anya-a", "sda3": "anya-b", "sda4": "anya-data"}
	one := fakeSysfs(t, map[string]map[string]string{"vda": box})
	l, err := Discover(one, "/dev", "", "a")
	if err != nil {
		t.Fatal(err)
	}
	if l.Disk != "/dev/vda" || l.ESP.Path != "/dev/vda1" || l.Slots["a"].Path != "/dev/vda2" || l.Slots["b"].Path != "/dev/vda3" ||
		l.Slots["b"].Size != 2048*512 || l.Slots["b"].Offset != 0 {
		t.Fatalf("layout %+v", l)
	}
	two := fakeSysfs(t, map[string]map[string]string{"vda": box, "sda": stick})
	if _, err := Discover(two, "/dev", "", "a"); err == nil || !strings.Contains(err.Error(), "refusing to guess") {
		t.Fatalf("two disks: %v", err)
	}
	// The device mounted at /system settles it.
	l, err = Discover(two, "/dev", "/dev/sda3", "b")
	if err != nil || l.Disk != "/dev/sda" || l.Slots["a"].Path != "/dev/sda2" {
		t.Fatalf("by /system: %+v, %v", l, err)
	}
	if _, err := Discover(two, "/dev", "/dev/nvme0n1p2", "b"); err == nil {
		t.Fatal("unknown /system device accepted")
	}
	noB := fakeSysfs(t, map[string]map[string]string{"vda": {"vda1": "ESP", "vda2": "anya-a"}})
	if _, err := Discover(noB, "/dev", "", "a"); err == nil {
		t.Fatal("disk without slot B accepted")
	}
}

func TestMountedDevice(t *testing.T) {
	mi := `22 1 0:21 / /proc rw,nosuid - proc proc rw
30 1 254:2 / /system ro,nodev,nosuid shared:5 - squashfs /dev/vda2 ro
31 1 254:4 / /data rw,noatime - ext4 /dev/vda4 rw
`
	dev, err := MountedDevice(strings.NewReader(mi), "/system")
	if err != nil || dev != "/dev/vda2" {
		t.Fatalf("%q, %v", dev, err)
	}
	if _, err := MountedDevice(strings.NewReader(mi), "/boot"); err == nil {
		t.Fatal("found a mount at /boot")
	}
}
