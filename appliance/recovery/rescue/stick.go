package rescue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The recovery stick (written by anyactl recovery build, see package image): GPT partition
// names, which PID 1 and this package find the stick's parts by. None of them is a label of
// the internal disk, so the box's own partition lookups never pick the stick.
const (
	// LabelStickESP is the stick's EFI system partition: systemd-boot and one entry that
	// boots the release's kernel and initramfs with anya.mode=recovery.
	LabelStickESP = "anya-recovery-esp"
	// LabelStickSystem holds the release's system squashfs (mounted at /system in recovery
	// mode: the further kernel modules and the trusted root).
	LabelStickSystem = "anya-recovery-sys"
	// LabelStickFiles is the stick's FAT32 partition for files (FAT volume label ANYA-RESCUE):
	// the signed bundle, the trusted root, backups/ and logs/.
	LabelStickFiles = "ANYA-RECOVERY"
	// LabelBackupStick is the partition name or FAT volume label of a plain backup stick.
	LabelBackupStick = "ANYA-BACKUP"
)

// Paths in the stick's files partition.
const (
	BundleFile = "bundle.tar"
	RootFile   = "root.json"
	BackupsDir = "backups"
	LogsDir    = "logs"
	// StickInfoFile describes the stick (release, build time) as JSON.
	StickInfoFile = "recovery.json"
)

// ModeParam is the kernel command line parameter of recovery mode (anya.mode=recovery).
const (
	ModeParam = "anya.mode"
	ModeValue = "recovery"
)

// blockDisk is a whole disk in sysfs.
type blockDisk struct {
	name      string
	removable bool
	sectors   int64
	labels    []string // its partitions' GPT names
}

// listDisks lists the whole disks in sysfs with their partitions' labels; loop, ram, zram
// and optical devices are left out.
func listDisks(sysfs string) ([]blockDisk, error) {
	ents, err := os.ReadDir(filepath.Join(sysfs, "block"))
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var out []blockDisk
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") || strings.HasPrefix(n, "sr") {
			continue
		}
		dir := filepath.Join(sysfs, "block", n)
		d := blockDisk{name: n}
		if b, err := os.ReadFile(filepath.Join(dir, "removable")); err == nil {
			d.removable = strings.TrimSpace(string(b)) == "1"
		}
		if b, err := os.ReadFile(filepath.Join(dir, "size")); err == nil {
			d.sectors, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			b, err := os.ReadFile(filepath.Join(dir, s.Name(), "uevent"))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "PARTNAME="); ok {
					d.labels = append(d.labels, v)
				}
			}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// ErrNoDisk means no internal disk was found, or not a single one.
var ErrNoDisk = errors.New("no internal disk")

// FindInternalDisk returns the name of the internal disk ("vda", "nvme0n1"): the disk that
// holds the box's partitions (anya-a), else the only fixed disk that is not the recovery
// stick. It refuses to guess between several candidates: writing the wrong disk would be a
// disaster.
func FindInternalDisk(sysfs string) (string, error) {
	disks, err := listDisks(sysfs)
	if err != nil {
		return "", err
	}
	var withBox, fixed []string
	for _, d := range disks {
		stick := false
		box := false
		for _, l := range d.labels {
			switch l {
			case LabelStickESP, LabelStickSystem, LabelStickFiles, LabelBackupStick:
				stick = true
			case "anya-a", "anya-b", "anya-data":
				box = true
			}
		}
		if stick || d.sectors == 0 {
			continue
		}
		if box {
			withBox = append(withBox, d.name)
		}
		if !d.removable {
			fixed = append(fixed, d.name)
		}
	}
	switch {
	case len(withBox) == 1:
		return withBox[0], nil
	case len(withBox) > 1:
		return "", fmt.Errorf("%w: disks %s all hold the box's partitions; refusing to guess", ErrNoDisk, strings.Join(withBox, ", "))
	case len(fixed) == 1:
		return fixed[0], nil
	case len(fixed) == 0:
		return "", fmt.Errorf("%w was found", ErrNoDisk)
	}
	return "", fmt.Errorf("%w: several blank disks (%s); refusing to guess", ErrNoDisk, strings.Join(fixed, ", "))
}
