package image

import (
	"fmt"
	"time"

	"github.com/anya-edge/anya/appliance/update/slot"
)

// Disk is what WriteDisk puts on a disk image: the boot loader, the boot files both slots
// start with, and the files of the system squashfs (paths without a leading slash; Execs
// marks the executable ones).
type Disk struct {
	BootEFI, Kernel, Initrd, Release []byte
	System                           map[string][]byte
	Execs                            map[string]bool
}

// WriteDisk writes a disk image with Build's layout from the parts in d instead of Debian
// packages and anyad: for tests and tools that need a small image with real partitions. Of
// cfg it uses Output, Version, Counter, Cmdline, Epoch and the sizes (Build's defaults when
// zero; the ESP must be at least 33 MiB for FAT32). It returns the size of the system
// squashfs. The FAT is reproducible only with SOURCE_DATE_EPOCH set, as in Build.
func WriteDisk(cfg Config, d Disk) (int64, error) {
	if cfg.Output == "" {
		return 0, fmt.Errorf("write disk: no output file")
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0-dev"
	}
	if cfg.Epoch < 315532800 {
		cfg.Epoch = 315532800
	}
	if cfg.ESPSize == 0 {
		cfg.ESPSize = 160 * mib
	}
	if cfg.SlotSize == 0 {
		cfg.SlotSize = 256 * mib
	}
	if cfg.DataSize == 0 {
		cfg.DataSize = 512 * mib
	}
	n, err := writeDisk(cfg, time.Unix(cfg.Epoch, 0), d.BootEFI, d.Kernel, d.Initrd, d.Release, d.System, d.Execs)
	if err != nil {
		return 0, fmt.Errorf("write disk %s: %w", cfg.Output, err)
	}
	return n, nil
}

// Layout returns the update agent's view of a disk image file: its ESP and system partitions
// as regions of the file.
func Layout(img string) (slot.Layout, error) {
	l := slot.Layout{Disk: img, Slots: map[string]slot.Partition{}}
	for _, label := range []string{LabelESP, LabelSlotA, LabelSlotB} {
		start, size, err := partition(img, label)
		if err != nil {
			return slot.Layout{}, err
		}
		p := slot.Partition{Label: label, Path: img, Offset: start, Size: size}
		switch label {
		case LabelESP:
			l.ESP = p
		case LabelSlotA:
			l.Slots[slot.A] = p
		case LabelSlotB:
			l.Slots[slot.B] = p
		}
	}
	return l, nil
}
