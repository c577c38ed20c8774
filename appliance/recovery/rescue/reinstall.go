package rescue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/storage"
	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// Default sizes of a reinstalled disk: the image build's (package image).
const (
	DefaultESPSize  = 160 * mib
	DefaultSlotSize = 256 * mib
	MinDataSize     = 64 * mib
)

// loaderConf is systemd-boot's configuration on the internal disk, as the image build writes it.
const loaderConf = "timeout 0\ndefault anya-*\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n"

// ReinstallOptions say what to write where.
type ReinstallOptions struct {
	// Disk is the internal disk: a block device (/dev/nvme0n1) or, in tests, an image file.
	Disk string
	// Bundle is the signed release (the stick's bundle.tar through release.NewTar, or a
	// directory); TrustedRoot the root metadata it must verify against.
	Bundle      release.Fetcher
	TrustedRoot []byte
	// BootEFI is systemd-boot (the stick's own \EFI\BOOT\BOOTX64.EFI).
	BootEFI []byte
	// KeepData keeps the disk's partition table and data partition as they are (the disk
	// must then have the box's four partitions); otherwise a new partition table is written
	// and the data partition's first MiB is zeroed, so that the box formats it at its first
	// boot (see WipeData for erasing the old content).
	KeepData bool
	// Cmdline is the extra kernel command line of the installed entries (anya.network=…).
	Cmdline string
	// Scratch is a directory for the install's throw-away records (tmpfs in recovery mode).
	Scratch string
	// ESPSize and SlotSize default to the image build's sizes.
	ESPSize, SlotSize int64
	Log               *slog.Logger
	Now               func() time.Time
}

// ReinstallResult says what was installed.
type ReinstallResult struct {
	Version  string        `json:"version"`
	Counter  uint64        `json:"counter"`
	KeptData bool          `json:"kept_data"`
	Took     time.Duration `json:"took"`
}

// ErrNoLayout means KeepData was asked for a disk without the box's partitions.
var ErrNoLayout = errors.New("the disk does not hold the box's partitions")

// Reinstall writes the firmware of a signed release onto the internal disk: a GPT with the
// box's four partitions (unless KeepData), a new ESP with systemd-boot, and both slots. The
// release is verified against TrustedRoot before the disk is written; slot A is installed by
// the update agent (every payload checked before and while it is written, the system image
// read back), then slot B receives the same verified payloads, as a factory image has them.
// Both entries are written as committed (anya-a.conf ordered before anya-b.conf).
func Reinstall(ctx context.Context, o ReinstallOptions) (ReinstallResult, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ESPSize == 0 {
		o.ESPSize = DefaultESPSize
	}
	if o.SlotSize == 0 {
		o.SlotSize = DefaultSlotSize
	}
	if o.Disk == "" || o.Bundle == nil || len(o.TrustedRoot) == 0 || len(o.BootEFI) == 0 || o.Scratch == "" {
		return ReinstallResult{}, errors.New("reinstall: Disk, Bundle, TrustedRoot, BootEFI and Scratch are required")
	}
	// Verify first, against a throw-away trust state from the stick's root: nothing is
	// written for a bundle that does not verify.
	st, err := release.NewState(o.TrustedRoot)
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: trusted root: %w", err)
	}
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: "amd64", Now: o.Now})
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: %w", err)
	}
	rel, err := v.Update(ctx, o.Bundle, release.Installed{})
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: verify the bundle: %w", err)
	}
	if err := checkPayloads(ctx, rel); err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: verify the bundle: %w", err)
	}
	o.Log.Info("reinstall: bundle verified", "version", rel.Version, "counter", rel.Counter, "disk", o.Disk, "keep_data", o.KeepData)

	layout, err := prepareDisk(o)
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: %w", err)
	}

	// Slot A through the update agent, pretending slot B runs: a fresh records database in
	// Scratch, the stick's root as the trusted root.
	dbPath := filepath.Join(o.Scratch, "reinstall.db")
	os.Remove(dbPath)
	db, err := storage.Open(dbPath, storage.Options{})
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: records: %w", err)
	}
	defer func() {
		db.Close()
		os.Remove(dbPath)
	}()
	opener := slot.FATOpener(layout.ESP)
	a, err := agent.New(agent.Config{DB: db, Log: o.Log, Slot: slot.B, Layout: layout, OpenESP: opener,
		TrustedRoot: o.TrustedRoot, Arch: "amd64", Now: o.Now})
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: %w", err)
	}
	if _, err := a.Boot(ctx); err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: %w", err)
	}
	if _, err := a.Install(ctx, rel, agent.InstallOptions{Source: "recovery", Force: true}); err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: slot a: %w", err)
	}
	if err := finishSlots(ctx, rel, layout, opener, o.Cmdline); err != nil {
		return ReinstallResult{}, fmt.Errorf("reinstall: %w", err)
	}
	rereadPartitions(o.Disk)
	res := ReinstallResult{Version: rel.Version, Counter: rel.Counter, KeptData: o.KeepData, Took: time.Since(start)}
	o.Log.Info("reinstall: done", "version", rel.Version, "took", res.Took.Round(time.Millisecond))
	return res, nil
}

// checkPayloads reads every payload against its signed length and SHA-256, writing nothing:
// the disk is only touched for a bundle that is whole.
func checkPayloads(ctx context.Context, rel *release.Release) error {
	buf := make([]byte, 4*mib)
	for _, p := range rel.Payloads {
		r, err := rel.Open(ctx, p.Kind)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf)
		ok := r.Verified()
		r.Close()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("payload %s: not verified", p.Path)
		}
	}
	return nil
}

// prepareDisk writes the partition table (unless KeepData), formats the ESP with systemd-boot
// and returns the layout as regions of the disk.
func prepareDisk(o ReinstallOptions) (slot.Layout, error) {
	d, err := diskfs.Open(o.Disk, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return slot.Layout{}, fmt.Errorf("open %s: %w", o.Disk, err)
	}
	defer d.Close()
	const sector = 512
	var table *gpt.Table
	if o.KeepData {
		// A disk without any partition table has no data to keep: it is set up as new.
		pt, err := d.GetPartitionTable()
		if err == nil {
			t, ok := pt.(*gpt.Table)
			if !ok {
				return slot.Layout{}, fmt.Errorf("%w: not a GPT disk", ErrNoLayout)
			}
			table = t
		} else if !blankStart(o.Disk) {
			return slot.Layout{}, fmt.Errorf("%w: %v", ErrNoLayout, err)
		}
	}
	fresh := table == nil
	if fresh {
		data := d.Size - mib - o.ESPSize - 2*o.SlotSize - mib
		if data < MinDataSize {
			return slot.Layout{}, fmt.Errorf("the disk (%d MiB) is too small for the box", d.Size/mib)
		}
		var parts []*gpt.Partition
		start := int64(mib)
		add := func(name string, typ gpt.Type, size int64) {
			parts = append(parts, &gpt.Partition{Index: len(parts) + 1, Start: uint64(start / sector),
				End: uint64((start+size)/sector - 1), Size: uint64(size), Type: typ, Name: name})
			start += size
		}
		add(slot.LabelESP, gpt.EFISystemPartition, o.ESPSize)
		add(slot.Label(slot.A), gpt.LinuxRootX86_64, o.SlotSize)
		add(slot.Label(slot.B), gpt.LinuxRootX86_64, o.SlotSize)
		add(slot.LabelData, gpt.LinuxFilesystem, data/mib*mib)
		table = &gpt.Table{Partitions: parts, LogicalSectorSize: sector, ProtectiveMBR: true}
		if err := d.Partition(table); err != nil {
			return slot.Layout{}, fmt.Errorf("write the partition table: %w", err)
		}
	}
	kept := o.KeepData && !fresh
	l := slot.Layout{Disk: o.Disk, Slots: map[string]slot.Partition{}}
	espIndex, dataFound := 0, false
	var dataPart slot.Partition
	for _, p := range table.Partitions {
		name := strings.TrimRight(p.Name, "\x00")
		sp := slot.Partition{Label: name, Path: o.Disk, Offset: int64(p.Start) * sector, Size: (int64(p.End) - int64(p.Start) + 1) * sector}
		switch name {
		case slot.LabelESP:
			l.ESP, espIndex = sp, p.Index
		case slot.Label(slot.A):
			l.Slots[slot.A] = sp
		case slot.Label(slot.B):
			l.Slots[slot.B] = sp
		case slot.LabelData:
			dataPart, dataFound = sp, true
		}
	}
	if espIndex == 0 || len(l.Slots) != 2 || !dataFound {
		return slot.Layout{}, fmt.Errorf("%w: it needs partitions labelled %s, %s, %s and %s", ErrNoLayout,
			slot.LabelESP, slot.Label(slot.A), slot.Label(slot.B), slot.LabelData)
	}
	if !kept {
		if err := zeroRegion(o.Disk, dataPart.Offset, min(dataPart.Size, mib)); err != nil {
			return slot.Layout{}, fmt.Errorf("clear the data partition: %w", err)
		}
	}
	esp, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: espIndex, FSType: filesystem.TypeFat32, VolumeLabel: "ANYA-ESP"})
	if err != nil {
		return slot.Layout{}, fmt.Errorf("format the ESP: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"/EFI/BOOT/BOOTX64.EFI", o.BootEFI}, {"/" + slot.LoaderConf, []byte(loaderConf)}} {
		if err := writeFATFile(esp, f.name, f.data); err != nil {
			return slot.Layout{}, fmt.Errorf("fill the ESP: %w", err)
		}
	}
	if err := esp.Mkdir("/" + slot.EntriesDir); err != nil {
		return slot.Layout{}, fmt.Errorf("fill the ESP: %w", err)
	}
	return l, nil
}

func writeFATFile(fsys filesystem.FileSystem, name string, data []byte) error {
	if err := fsys.Mkdir(path.Dir(name)); err != nil {
		return fmt.Errorf("mkdir %s: %w", path.Dir(name), err)
	}
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// finishSlots makes slot A's trial entry a committed one with the stick's command line, and
// copies the release into slot B (each payload verified again as it streams).
func finishSlots(ctx context.Context, rel *release.Release, l slot.Layout, open slot.Opener, extra string) error {
	esp, err := open(true)
	if err != nil {
		return err
	}
	defer esp.Close()
	names, err := esp.List(slot.EntriesDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := esp.Remove(path.Join(slot.EntriesDir, n)); err != nil {
			return err
		}
	}
	for _, p := range rel.Payloads {
		r, err := rel.Open(ctx, p.Kind)
		if err != nil {
			return fmt.Errorf("slot b: %w", err)
		}
		if p.Kind == release.KindSystem {
			part := l.Slots[slot.B]
			err = copyToPartition(part, r, p.Length)
		} else {
			_, err = esp.WriteFile(path.Join(slot.BootDir(slot.B), p.Kind.FileName()), r)
		}
		if err == nil && !r.Verified() {
			err = fmt.Errorf("payload %s: not verified", p.Path)
		}
		r.Close()
		if err != nil {
			return fmt.Errorf("slot b: %w", err)
		}
	}
	order := int(rel.Counter)
	for _, e := range []struct {
		s     string
		order int
	}{{slot.A, order + 1}, {slot.B, order}} {
		entry := slot.NewEntry(e.s, rel.Version, e.order, slot.KernelCmdline(e.s, extra))
		name := slot.Name{Slot: e.s}.String()
		if _, err := esp.WriteFile(path.Join(slot.EntriesDir, name), bytes.NewReader(entry.Bytes())); err != nil {
			return err
		}
	}
	if err := esp.Sync(); err != nil {
		return err
	}
	return esp.Close()
}

func copyToPartition(part slot.Partition, r io.Reader, length int64) error {
	if length > part.Size {
		return fmt.Errorf("the system image (%d bytes) does not fit the %d-byte partition", length, part.Size)
	}
	f, err := os.OpenFile(part.Path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(io.NewOffsetWriter(f, part.Offset), r, make([]byte, 4*mib)); err != nil {
		return err
	}
	return f.Sync()
}

// zeroRegion writes n zero bytes at off of the file or device name and syncs.
func zeroRegion(name string, off, n int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, min(n, 4*mib))
	for done := int64(0); done < n; {
		k := min(int64(len(buf)), n-done)
		if _, err := f.WriteAt(buf[:k], off+done); err != nil {
			return err
		}
		done += k
	}
	return f.Sync()
}

// rereadPartitions asks the kernel to read a block device's partition table again (nothing
// for an image file).
func rereadPartitions(dev string) {
	f, err := os.Open(dev)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeDevice != 0 {
		_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	}
}

// blankStart reports whether the first MiB of the disk is all zeros (no partition table, no
// filesystem).
func blankStart(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, mib)
	n, _ := io.ReadFull(f, b)
	return n > 0 && bytes.Count(b[:n], []byte{0}) == n
}
