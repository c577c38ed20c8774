package image

import (
	"fmt"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// PartitionOffset returns the byte offset of the partition labelled label in a disk image.
func PartitionOffset(img, label string) (int64, error) {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", img, err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return 0, fmt.Errorf("read partition table of %s: %w", img, err)
	}
	t, ok := pt.(*gpt.Table)
	if !ok {
		return 0, fmt.Errorf("%s: not a GPT disk", img)
	}
	for _, p := range t.Partitions {
		if p.Name == label {
			return int64(p.Start) * int64(t.LogicalSectorSize), nil
		}
	}
	return 0, fmt.Errorf("%s: no partition labelled %q", img, label)
}
