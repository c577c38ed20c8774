package datapart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"
)

// Content is what Probe found on a partition.
type Content int

const (
	Blank   Content = iota // all zeros where a filesystem would have its headers
	Ext4                   // an ext2/3/4 superblock
	Unknown                // something else: never overwritten
)

func (c Content) String() string {
	return [...]string{"blank", "ext4", "unknown"}[c]
}

// ErrNotFound means no partition carries the label.
var ErrNotFound = errors.New("no partition with that label")

// Find returns the device node (/dev/...) of the partition whose GPT label is label, looking
// at the block devices in sysfs (normally "/sys").
func Find(sysfs, label string) (string, error) {
	uevents, _ := filepath.Glob(filepath.Join(sysfs, "class/block/*/uevent"))
	for _, u := range uevents {
		b, err := os.ReadFile(u)
		if err != nil {
			continue
		}
		var name, dev string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PARTNAME="); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
				dev = v
			}
		}
		if name == label && dev != "" {
			return "/dev/" + dev, nil
		}
	}
	return "", fmt.Errorf("find partition %q: %w", label, ErrNotFound)
}

// probeBytes covers the ext superblock (offset 1024) and the areas other filesystems and
// partition tools write to at the start of a partition.
const probeBytes = 64 << 10

// Probe says whether dev is blank, holds an ext filesystem, or holds something else.
func Probe(dev string) (Content, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Unknown, fmt.Errorf("probe %s: %w", dev, err)
	}
	defer f.Close()
	buf := make([]byte, probeBytes)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Unknown, fmt.Errorf("probe %s: %w", dev, err)
	}
	buf = buf[:n]
	if len(buf) >= 1024+58 && buf[1024+56] == 0x53 && buf[1024+57] == 0xEF {
		return Ext4, nil
	}
	if len(bytes.Trim(buf, "\x00")) == 0 {
		return Blank, nil
	}
	return Unknown, nil
}

// Format writes an empty ext4 filesystem labelled label over the whole of dev (a block device
// or a file). It refuses unless Probe says the device is blank.
func Format(dev, label string) error {
	c, err := Probe(dev)
	if err != nil {
		return err
	}
	if c != Blank {
		return fmt.Errorf("format %s: refusing, it holds %s data", dev, c)
	}
	size, err := deviceSize(dev)
	if err != nil {
		return fmt.Errorf("format %s: %w", dev, err)
	}
	b, err := file.OpenFromPath(dev, false)
	if err != nil {
		return fmt.Errorf("format %s: %w", dev, err)
	}
	defer b.Close()
	if _, err := ext4.Create(b, size, 0, 512, &ext4.Params{VolumeName: label}); err != nil {
		return fmt.Errorf("format %s: %w", dev, err)
	}
	if f, err := os.OpenFile(dev, os.O_WRONLY, 0); err == nil {
		f.Sync()
		f.Close()
	}
	return nil
}

// deviceSize returns the size of a block device or regular file.
func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}

// Mount mounts the ext4 filesystem on dev at dir.
func Mount(dev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	return nil
}

// Sectors returns a partition's size from sysfs, for reports.
func Sectors(sysfs, dev string) int64 {
	b, err := os.ReadFile(filepath.Join(sysfs, "class/block", filepath.Base(dev), "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}
