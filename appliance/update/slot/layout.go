package slot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Partition is where a partition's bytes are: a block device (Offset 0), or a region of a
// disk image file in tests and host tools.
type Partition struct {
	Label  string
	Path   string
	Offset int64 // byte offset in Path
	Size   int64 // bytes
}

func (p Partition) String() string {
	if p.Offset == 0 {
		return p.Path
	}
	return fmt.Sprintf("%s@%d", p.Path, p.Offset)
}

// Layout is the boot disk: its ESP and its two system partitions.
type Layout struct {
	Disk  string // "/dev/vda"; the image file in tests
	ESP   Partition
	Slots map[string]Partition // by slot, "a" and "b"
}

// Slot returns the system partition of slot s.
func (l Layout) Slot(s string) (Partition, bool) {
	p, ok := l.Slots[s]
	return p, ok
}

// blockPart is a partition as sysfs shows it.
type blockPart struct {
	name, label, disk string
	sectors           int64
}

// Discover finds the boot disk's partitions in sysfs (normally "/sys"; device nodes are
// devDir/<name>, normally "/dev").
//
// The boot disk is the disk of systemDev, the partition mounted at /system (see
// MountedDevice), when that is known; otherwise the disk holding the partition labelled
// anya-<booted>, which must then be unique: with two disks carrying Anya partitions (an image
// on a USB stick) Discover refuses to guess, since writing the wrong disk would be a
// disaster. The disk must hold the ESP and both system partitions.
func Discover(sysfs, devDir, systemDev, booted string) (Layout, error) {
	parts, err := blockParts(sysfs)
	if err != nil {
		return Layout{}, fmt.Errorf("find the boot disk: %w", err)
	}
	disk := ""
	if systemDev != "" {
		name := filepath.Base(systemDev)
		for _, p := range parts {
			if p.name == name {
				disk = p.disk
			}
		}
		if disk == "" {
			return Layout{}, fmt.Errorf("find the boot disk: %s (mounted at /system) is not a partition in %s", systemDev, sysfs)
		}
	} else {
		if !Valid(booted) {
			return Layout{}, fmt.Errorf("find the boot disk: %w", ErrUnknownSlot)
		}
		var disks []string
		for _, p := range parts {
			if p.label == Label(booted) {
				disks = append(disks, p.disk)
			}
		}
		switch len(disks) {
		case 0:
			return Layout{}, fmt.Errorf("find the boot disk: no partition labelled %s", Label(booted))
		case 1:
			disk = disks[0]
		default:
			return Layout{}, fmt.Errorf("find the boot disk: disks %s all hold a partition labelled %s; refusing to guess",
				strings.Join(disks, ", "), Label(booted))
		}
	}
	l := Layout{Disk: filepath.Join(devDir, disk), Slots: map[string]Partition{}}
	seen := map[string]int{}
	for _, p := range parts {
		if p.disk != disk {
			continue
		}
		seen[p.label]++
		dp := Partition{Label: p.label, Path: filepath.Join(devDir, p.name), Size: p.sectors * 512}
		switch p.label {
		case LabelESP:
			l.ESP = dp
		case Label(A):
			l.Slots[A] = dp
		case Label(B):
			l.Slots[B] = dp
		}
	}
	for _, label := range []string{LabelESP, Label(A), Label(B)} {
		switch seen[label] {
		case 0:
			return Layout{}, fmt.Errorf("find the boot disk: %s has no partition labelled %s", l.Disk, label)
		case 1:
		default:
			return Layout{}, fmt.Errorf("find the boot disk: %s has %d partitions labelled %s", l.Disk, seen[label], label)
		}
	}
	return l, nil
}

// blockParts lists the partitions of every block device in sysfs, sorted by name. A
// partition's disk is the directory its sysfs node lives in (class/block/vda2 links to
// .../block/vda/vda2).
func blockParts(sysfs string) ([]blockPart, error) {
	uevents, err := filepath.Glob(filepath.Join(sysfs, "class/block/*/uevent"))
	if err != nil {
		return nil, err
	}
	var out []blockPart
	for _, u := range uevents {
		b, err := os.ReadFile(u)
		if err != nil {
			continue
		}
		var p blockPart
		partition := false
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "DEVNAME":
				p.name = v
			case "PARTNAME":
				p.label = v
			case "DEVTYPE":
				partition = v == "partition"
			}
		}
		if !partition || p.name == "" {
			continue
		}
		node, err := filepath.EvalSymlinks(filepath.Dir(u))
		if err != nil {
			continue
		}
		p.disk = filepath.Base(filepath.Dir(node))
		if s, err := os.ReadFile(filepath.Join(node, "size")); err == nil {
			p.sectors, _ = strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no partitions in " + sysfs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// MountedDevice returns the source device of the filesystem mounted at mountpoint, from
// /proc/self/mountinfo.
func MountedDevice(mountinfo io.Reader, mountpoint string) (string, error) {
	sc := bufio.NewScanner(mountinfo)
	dev := ""
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[4] != mountpoint {
			continue
		}
		for i := 6; i+2 < len(f); i++ {
			if f[i] == "-" {
				dev = f[i+2] // the last mount at the point wins
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	if dev == "" {
		return "", fmt.Errorf("nothing is mounted at %s", mountpoint)
	}
	return dev, nil
}

// SystemDevice returns the device mounted at /system, from /proc/self/mountinfo.
func SystemDevice() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return MountedDevice(f, "/system")
}
