package image

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// SlotFiles are the parts of one slot of a built image that an update carries: the boot files
// from the ESP's /anya/<slot>/ and the system squashfs in the slot's partition.
type SlotFiles struct {
	Kernel, Initrd, Release []byte
	// SystemOffset and SystemSize locate the system squashfs in the image file: its
	// superblock's bytes_used, not the whole partition.
	SystemOffset, SystemSize int64
}

// ReadSlot returns the update payloads of slot ("a" or "b") of the image img.
func ReadSlot(img, slot string) (SlotFiles, error) {
	var sf SlotFiles
	label := map[string]string{"a": LabelSlotA, "b": LabelSlotB}[slot]
	if label == "" {
		return sf, fmt.Errorf("read slot %q: no such slot", slot)
	}
	dir := "/anya/" + slot + "/"
	for name, dst := range map[string]*[]byte{"vmlinuz": &sf.Kernel, "initrd.img": &sf.Initrd, "release.json": &sf.Release} {
		b, err := ReadESPFile(img, dir+name)
		if err != nil {
			return sf, fmt.Errorf("read slot %s: %w", slot, err)
		}
		*dst = b
	}
	start, size, err := partition(img, label)
	if err != nil {
		return sf, fmt.Errorf("read slot %s: %w", slot, err)
	}
	f, err := os.Open(img)
	if err != nil {
		return sf, fmt.Errorf("read slot %s: %w", slot, err)
	}
	defer f.Close()
	var sb [48]byte
	if _, err := f.ReadAt(sb[:], start); err != nil {
		return sf, fmt.Errorf("read slot %s: squashfs superblock: %w", slot, err)
	}
	if string(sb[:4]) != "hsqs" {
		return sf, fmt.Errorf("read slot %s: partition %s holds no squashfs", slot, label)
	}
	used := int64(binary.LittleEndian.Uint64(sb[40:48]))
	if used <= 0 || used > size {
		return sf, fmt.Errorf("read slot %s: squashfs size %d does not fit the %d-byte partition", slot, used, size)
	}
	sf.SystemOffset, sf.SystemSize = start, used
	return sf, nil
}

// partition returns the byte offset and size of the partition labelled label.
func partition(img, label string) (int64, int64, error) {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", img, err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return 0, 0, fmt.Errorf("read partition table of %s: %w", img, err)
	}
	t, ok := pt.(*gpt.Table)
	if !ok {
		return 0, 0, fmt.Errorf("%s: not a GPT disk", img)
	}
	for _, p := range t.Partitions {
		if strings.TrimRight(p.Name, "\x00") == label {
			ss := int64(t.LogicalSectorSize)
			return int64(p.Start) * ss, (int64(p.End) - int64(p.Start) + 1) * ss, nil
		}
	}
	return 0, 0, fmt.Errorf("%s: no partition labelled %q", img, label)
}
