package slot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// MountDir is where the ESP is mounted while the box reads or changes it. The ESP is not
// mounted otherwise: nothing else on the box needs it, and an unmounted FAT cannot be left
// half-written by a crash.
const MountDir = "/run/anya/esp"

// MountESP mounts the FAT ESP device at dir (read-write only when write is set) and returns
// it; Close syncs and unmounts it. The kernel's vfat driver is the one that frees clusters,
// orders its writes and is exercised by every Linux box; anyad loads it at boot.
func MountESP(dev, dir string, write bool) (*DirESP, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount ESP %s: %w", dev, err)
	}
	// A mount left by a process that died while it held the ESP is ours and stale: two
	// mounts of one FAT must never be writable at once.
	if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("mount ESP %s: a stale mount at %s: %w", dev, dir, err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME)
	if !write {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, "vfat", flags, "umask=0077,errors=remount-ro"); err != nil {
		return nil, fmt.Errorf("mount ESP %s on %s: %w", dev, dir, err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		unix.Unmount(dir, 0)
		return nil, err
	}
	d.unmount = func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
			return fmt.Errorf("unmount ESP %s: %w", dir, err)
		}
		return nil
	}
	return d, nil
}

// Opener opens the ESP for reading or for an update.
type Opener func(write bool) (ESP, error)

// DeviceOpener opens the ESP partition p by mounting it at dir, or, when the kernel cannot
// mount it (no vfat driver: ENODEV), by editing the FAT in place with go-diskfs.
func DeviceOpener(p Partition, dir string, log *slog.Logger) Opener {
	return func(write bool) (ESP, error) {
		d, err := MountESP(p.Path, dir, write)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, unix.ENODEV) {
			return nil, err
		}
		if log != nil {
			log.Warn("the kernel cannot mount the ESP; editing it with go-diskfs", "err", err)
		}
		return OpenFAT(p, write)
	}
}

// FATOpener opens the FAT ESP of a disk image region with go-diskfs (tests, host tools).
func FATOpener(p Partition) Opener {
	return func(write bool) (ESP, error) { return OpenFAT(p, write) }
}

// DirOpener opens a directory as the ESP (tests, development runs).
func DirOpener(dir string) Opener {
	return func(bool) (ESP, error) { return OpenDir(dir) }
}
