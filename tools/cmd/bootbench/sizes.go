package main

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/anya-edge/anya/image"
)

// anyaPayload reads the update payload of slot A from the image: the kernel and initramfs on
// the ESP and the slot's squashfs.
func anyaPayload(img, anyad string) (payload, error) {
	var p payload
	parts, err := gptPartitions(img)
	if err != nil {
		return p, err
	}
	esp := 0
	for _, part := range parts {
		if part.Name == image.LabelESP {
			esp = part.Index
		}
	}
	if esp == 0 {
		return p, fmt.Errorf("%s: no %s partition", img, image.LabelESP)
	}
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return p, err
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(esp)
	if err != nil {
		return p, fmt.Errorf("%s: read ESP: %w", img, err)
	}
	for _, f := range []struct {
		path string
		n    *int64
	}{{"anya/a/vmlinuz", &p.Kernel}, {"anya/a/initrd.img", &p.Initramfs}} {
		fi, err := fs.Stat(fsys, f.path)
		if err != nil {
			return p, fmt.Errorf("%s: ESP %s: %w", img, f.path, err)
		}
		*f.n = fi.Size()
	}
	off, err := image.PartitionOffset(img, image.LabelSlotA)
	if err != nil {
		return p, err
	}
	if p.System, err = squashfsSize(img, off); err != nil {
		return p, err
	}
	p.Total = p.Kernel + p.Initramfs + p.System
	fi, err := os.Stat(anyad)
	if err != nil {
		return p, fmt.Errorf("anyad binary: %w (set -anyad)", err)
	}
	p.Anyad = fi.Size()
	return p, nil
}

// anchorPayload reads a gokrazy image's update payload: the boot FAT (partition 1, as many
// bytes as its boot sector declares) and the root squashfs (partition 2).
func anchorPayload(img string) (payload, error) {
	var p payload
	parts, err := gptPartitions(img)
	if err != nil {
		return p, err
	}
	if len(parts) < 2 {
		return p, fmt.Errorf("%s: %d partitions, want boot and root", img, len(parts))
	}
	f, err := os.Open(img)
	if err != nil {
		return p, err
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, int64(parts[0].Start)*512); err != nil {
		return p, fmt.Errorf("%s: boot sector: %w", img, err)
	}
	sectors := int64(binary.LittleEndian.Uint16(bs[19:]))
	if sectors == 0 {
		sectors = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	p.BootFAT = sectors * int64(binary.LittleEndian.Uint16(bs[11:]))
	if p.BootFAT == 0 {
		return p, fmt.Errorf("%s: partition 1 is not a FAT file system", img)
	}
	if p.RootSquash, err = squashfsSize(img, int64(parts[1].Start)*512); err != nil {
		return p, err
	}
	p.Total = p.BootFAT + p.RootSquash
	return p, nil
}

func gptPartitions(img string) ([]*gpt.Partition, error) {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", img, err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return nil, fmt.Errorf("%s: partition table: %w", img, err)
	}
	t, ok := pt.(*gpt.Table)
	if !ok {
		return nil, fmt.Errorf("%s: not a GPT disk", img)
	}
	if t.LogicalSectorSize != 0 && t.LogicalSectorSize != 512 {
		return nil, fmt.Errorf("%s: sector size %d, want 512", img, t.LogicalSectorSize)
	}
	return t.Partitions, nil
}

// squashfsSize returns bytes_used from the squashfs superblock at off.
func squashfsSize(img string, off int64) (int64, error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sb := make([]byte, 48)
	if _, err := f.ReadAt(sb, off); err != nil {
		return 0, fmt.Errorf("%s: squashfs superblock at %d: %w", img, off, err)
	}
	if string(sb[:4]) != "hsqs" {
		return 0, fmt.Errorf("%s: no squashfs at offset %d", img, off)
	}
	return int64(binary.LittleEndian.Uint64(sb[40:])), nil
}
