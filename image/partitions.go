package image

import (
	"fmt"
	"io"
	"os"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
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

// ReadESPFile returns a file from the image's EFI system partition.
func ReadESPFile(img, name string) ([]byte, error) {
	var out []byte
	err := withESP(img, diskfs.ReadOnly, func(fsys filesystem.FileSystem) error {
		f, err := fsys.OpenFile(name, os.O_RDONLY)
		if err != nil {
			return err
		}
		defer f.Close()
		out, err = io.ReadAll(f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s from the ESP of %s: %w", name, img, err)
	}
	return out, nil
}

// ListESPDir lists a directory of the image's EFI system partition.
func ListESPDir(img, dir string) ([]string, error) {
	var names []string
	err := withESP(img, diskfs.ReadOnly, func(fsys filesystem.FileSystem) error {
		// go-diskfs's ReadDir takes paths without the leading slash (EINVAL otherwise).
		entries, err := fsys.ReadDir(strings.TrimPrefix(dir, "/"))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return err
	})
	return names, err
}

// EditESP opens the image's EFI system partition for writing and calls fn with it.
func EditESP(img string, fn func(fsys filesystem.FileSystem) error) error {
	return withESP(img, diskfs.ReadWrite, fn)
}

func withESP(img string, mode diskfs.OpenModeOption, fn func(fsys filesystem.FileSystem) error) error {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(mode))
	if err != nil {
		return err
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(1)
	if err != nil {
		return fmt.Errorf("open ESP: %w", err)
	}
	return fn(fsys)
}
