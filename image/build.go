package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/klauspost/compress/zstd"
)

// Partition labels; anyad finds its partitions by these, never by device name.
const (
	LabelESP   = "ESP"
	LabelSlotA = "anya-a"
	LabelSlotB = "anya-b"
	LabelData  = "anya-data"
)

// Config says what to build.
type Config struct {
	Anyad         string // path of the linux/amd64 anyad binary
	CacheDir      string // where Debian packages are downloaded and unpacked
	KernelPackage string // Debian package of the kernel; DefaultKernelPackage when empty
	Version       string // release version shown on the page and in boot entries
	Counter       int    // monotonic release counter, used to order boot entries
	Epoch         int64  // every timestamp in the image; SOURCE_DATE_EPOCH or 0 when unset
	Output        string // the disk image file to write
	Cmdline       string // extra kernel command line
	// TrustedRoot is the update trusted root (TUF root metadata, e.g. keys/roots/1.root.json
	// from anyactl release keygen) that the system slots carry at slot.TrustedRootFile. Empty
	// builds an image whose updates are disabled ("updates disabled: no trusted root").
	TrustedRoot string

	ESPSize, SlotSize, DataSize int64 // bytes; defaults 160 MiB, 256 MiB, 512 MiB
}

// Release is the manifest stored in each slot, in the initramfs and on the ESP.
type Release struct {
	Version       string   `json:"version"`
	Counter       int      `json:"counter"`
	Arch          string   `json:"arch"`
	KernelPackage string   `json:"kernel_package"`
	KernelVersion string   `json:"kernel_version"` // Debian package version
	KernelRelease string   `json:"kernel_release"` // uname -r
	Bootloader    string   `json:"bootloader"`     // systemd-boot-efi package version
	AnyadSHA256   string   `json:"anyad_sha256"`
	Bundled       []string `json:"bundled,omitempty"` // Debian packages whose programs the system slot carries
	Epoch         int64    `json:"epoch"`
}

// Result describes a built image.
type Result struct {
	Path           string
	Size           int64
	SHA256         string
	Release        Release
	KernelBytes    int64
	InitramfsBytes int64
	SystemBytes    int64 // squashfs of one slot
	// TrustedRootVersion is the version of the trusted root shipped, 0 when the image has none
	// (its updates are disabled).
	TrustedRootVersion int64
}

const mib = 1 << 20

func (c *Config) defaults() error {
	if c.Anyad == "" || c.Output == "" || c.CacheDir == "" {
		return fmt.Errorf("image config: Anyad, Output and CacheDir are required")
	}
	if c.KernelPackage == "" {
		c.KernelPackage = DefaultKernelPackage
	}
	if c.Version == "" {
		c.Version = "0.0.0-dev"
	}
	if c.Epoch == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			e, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("image config: SOURCE_DATE_EPOCH: %w", err)
			}
			c.Epoch = e
		}
	}
	// FAT cannot store dates before 1980.
	if c.Epoch < 315532800 {
		c.Epoch = 315532800
	}
	if c.ESPSize == 0 {
		c.ESPSize = 160 * mib
	}
	if c.SlotSize == 0 {
		c.SlotSize = 256 * mib
	}
	if c.DataSize == 0 {
		c.DataSize = 512 * mib
	}
	return nil
}

// Build writes the disk image described by cfg and returns its description. It sets
// SOURCE_DATE_EPOCH in the process environment, which go-diskfs's FAT writer reads.
func Build(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	var root []byte
	var rootVersion int64
	if cfg.TrustedRoot != "" {
		var err error
		if root, rootVersion, err = LoadTrustedRoot(cfg.TrustedRoot); err != nil {
			return Result{}, err
		}
	}
	os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(cfg.Epoch, 10))
	mtime := time.Unix(cfg.Epoch, 0)

	kdeb, err := FetchDeb(ctx, cfg.CacheDir, cfg.KernelPackage)
	if err != nil {
		return Result{}, err
	}
	sbdeb, err := FetchDeb(ctx, cfg.CacheDir, SystemdBootPackage)
	if err != nil {
		return Result{}, err
	}
	kroot, err := ExtractDeb(ctx, kdeb)
	if err != nil {
		return Result{}, err
	}
	sbroot, err := ExtractDeb(ctx, sbdeb)
	if err != nil {
		return Result{}, err
	}
	tree, err := loadModuleTree(kroot)
	if err != nil {
		return Result{}, err
	}
	kernel, err := os.ReadFile(filepath.Join(kroot, "boot", "vmlinuz-"+tree.Version))
	if err != nil {
		return Result{}, fmt.Errorf("read kernel: %w", err)
	}
	bootEFI, err := os.ReadFile(filepath.Join(sbroot, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"))
	if err != nil {
		return Result{}, fmt.Errorf("read systemd-boot: %w", err)
	}
	anyad, err := os.ReadFile(cfg.Anyad)
	if err != nil {
		return Result{}, fmt.Errorf("read anyad: %w", err)
	}
	sum := sha256.Sum256(anyad)
	rel := Release{
		Version: cfg.Version, Counter: cfg.Counter, Arch: "amd64",
		KernelPackage: cfg.KernelPackage, KernelVersion: DebVersion(kdeb), KernelRelease: tree.Version,
		Bootloader: DebVersion(sbdeb), AnyadSHA256: hex.EncodeToString(sum[:]), Epoch: cfg.Epoch,
	}
	pcsc, execs, pcscVersions, err := pcscBundle.collect(ctx, cfg.CacheDir)
	if err != nil {
		return Result{}, err
	}
	rel.Bundled = pcscVersions
	relJSON, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return Result{}, err
	}
	relJSON = append(relJSON, '\n')

	bootMods, err := tree.closure(BootModules, nil)
	if err != nil {
		return Result{}, fmt.Errorf("boot modules: %w", err)
	}
	inBoot := map[string]bool{}
	for _, m := range bootMods {
		inBoot[m.Name] = true
	}
	sysMods, err := tree.closure(SystemModules, inBoot)
	if err != nil {
		return Result{}, fmt.Errorf("system modules: %w", err)
	}
	initrd, err := buildInitramfs(anyad, relJSON, tree.Version, bootMods)
	if err != nil {
		return Result{}, err
	}
	sysFiles, err := moduleFiles(sysMods)
	if err != nil {
		return Result{}, err
	}
	system := map[string][]byte{"release.json": relJSON}
	for name, b := range sysFiles {
		system[path.Join("lib/modules", tree.Version, name)] = b
	}
	for name, b := range pcsc {
		system[name] = b
	}

	res := Result{Path: cfg.Output, Release: rel, KernelBytes: int64(len(kernel)), InitramfsBytes: int64(len(initrd))}
	if root != nil {
		system[slot.TrustedRootFile] = root
		res.TrustedRootVersion = rootVersion
	}
	res.SystemBytes, err = writeDisk(cfg, mtime, bootEFI, kernel, initrd, relJSON, system, execs)
	if err != nil {
		return Result{}, err
	}
	f, err := os.Open(cfg.Output)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Result{}, fmt.Errorf("hash image: %w", err)
	}
	res.Size = n
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// buildInitramfs returns the zstd-compressed newc archive booted with each slot's kernel.
func buildInitramfs(anyad, release []byte, krel string, mods []kmodule) ([]byte, error) {
	files, err := moduleFiles(mods)
	if err != nil {
		return nil, err
	}
	modDir := "lib/modules/" + krel
	entries := []cpioEntry{
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChar | 0o600, Major: 5, Minor: 1},
		{Name: "dev/null", Mode: modeChar | 0o666, Major: 1, Minor: 3},
	}
	for _, d := range []string{"data", "etc", "etc/anya", "lib", "lib/modules", modDir, "proc", "run", "sys", "system", "tmp"} {
		entries = append(entries, cpioEntry{Name: d, Mode: modeDir | 0o755})
	}
	entries = append(entries,
		cpioEntry{Name: "etc/anya/release.json", Mode: modeReg | 0o644, Data: release},
		cpioEntry{Name: "init", Mode: modeReg | 0o755, Data: anyad},
	)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		entries = append(entries, cpioEntry{Name: modDir + "/" + n, Mode: modeReg | 0o644, Data: files[n]})
	}
	var raw bytes.Buffer
	if err := writeCpio(&raw, entries); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	var out bytes.Buffer
	// One encoder goroutine and a fixed window keep the output deterministic and within what
	// the kernel's decompressor accepts.
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8*mib),
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("initramfs: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("initramfs: compress: %w", err)
	}
	return out.Bytes(), nil
}

// guid derives a stable GUID (RFC 4122 version 4 layout) from the inputs.
func guid(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BootEntry is the systemd-boot entry of a slot (the format lives in package slot, which the
// update agent shares). Entries are ordered by version: the newest entry with tries left
// boots; an entry whose tries ran out (name+0-N.conf) sorts after all others and loses.
func BootEntry(s, version string, counter int, cmdline string) string {
	return string(slot.NewEntry(s, version, counter, KernelCmdline(s, cmdline)).Bytes())
}

// KernelCmdline is the kernel command line of a slot. panic=10 turns a failed boot into a
// reboot, which is what lets boot counting fall back to the other slot.
func KernelCmdline(s, extra string) string { return slot.KernelCmdline(s, extra) }

// LoadTrustedRoot reads a trusted root (TUF root metadata) for the image and checks that it
// is one the box accepts (correctly self-signed); it returns the bytes and the root's version.
func LoadTrustedRoot(name string) ([]byte, int64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, 0, fmt.Errorf("trusted root: %w", err)
	}
	if _, err := release.NewState(b); err != nil {
		return nil, 0, fmt.Errorf("trusted root %s: %w", name, err)
	}
	var m struct {
		Signed struct {
			Type    string `json:"_type"`
			Version int64  `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Signed.Type != "root" {
		return nil, 0, fmt.Errorf("trusted root %s: not TUF root metadata", name)
	}
	return b, m.Signed.Version, nil
}

const loaderConf = "timeout 0\ndefault anya-*\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n"

func writeDisk(cfg Config, mtime time.Time, bootEFI, kernel, initrd, release []byte, system map[string][]byte, execs map[string]bool) (int64, error) {
	const sector = 512
	const align = mib
	os.Remove(cfg.Output)
	total := align + cfg.ESPSize + 2*cfg.SlotSize + cfg.DataSize + align
	d, err := diskfs.Create(cfg.Output, total, diskfs.SectorSizeDefault)
	if err != nil {
		return 0, fmt.Errorf("create disk image: %w", err)
	}
	defer d.Close()
	var parts []*gpt.Partition
	start := int64(align)
	add := func(name string, typ gpt.Type, size int64) {
		parts = append(parts, &gpt.Partition{
			Index: len(parts) + 1, Start: uint64(start / sector), End: uint64((start+size)/sector - 1),
			Size: uint64(size), Type: typ, Name: name, GUID: guid(cfg.Version, "partition", name),
		})
		start += size
	}
	add(LabelESP, gpt.EFISystemPartition, cfg.ESPSize)
	add(LabelSlotA, gpt.LinuxRootX86_64, cfg.SlotSize)
	add(LabelSlotB, gpt.LinuxRootX86_64, cfg.SlotSize)
	add(LabelData, gpt.LinuxFilesystem, cfg.DataSize)
	table := &gpt.Table{Partitions: parts, LogicalSectorSize: sector, ProtectiveMBR: true, GUID: guid(cfg.Version, "disk")}
	if err := d.Partition(table); err != nil {
		return 0, fmt.Errorf("write partition table: %w", err)
	}

	// ESP
	esp, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: "ANYA-ESP", Reproducible: true})
	if err != nil {
		return 0, fmt.Errorf("format ESP: %w", err)
	}
	espFiles := map[string][]byte{
		"/EFI/BOOT/BOOTX64.EFI":       bootEFI,
		"/loader/loader.conf":         []byte(loaderConf),
		"/loader/entries/anya-a.conf": []byte(BootEntry("a", cfg.Version, cfg.Counter, cfg.Cmdline)),
		// Slot B starts as a copy of A with a lower version: it boots only when A has failed.
		"/loader/entries/anya-b.conf": []byte(BootEntry("b", cfg.Version, 0, cfg.Cmdline)),
	}
	for _, slot := range []string{"a", "b"} {
		espFiles["/anya/"+slot+"/vmlinuz"] = kernel
		espFiles["/anya/"+slot+"/initrd.img"] = initrd
		espFiles["/anya/"+slot+"/release.json"] = release
	}
	if err := writeFiles(esp, espFiles); err != nil {
		return 0, fmt.Errorf("fill ESP: %w", err)
	}

	// System slots
	var sysBytes int64
	for i := range 2 {
		p := parts[1+i]
		n, err := writeSquashfs(d, int64(p.Start)*sector, cfg.SlotSize, mtime, system, execs)
		if err != nil {
			return 0, fmt.Errorf("write slot %s: %w", p.Name, err)
		}
		sysBytes = n
	}
	return sysBytes, nil
}

func writeFiles(fsys filesystem.FileSystem, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := fsys.Mkdir(path.Dir(n)); err != nil {
			return fmt.Errorf("mkdir %s: %w", path.Dir(n), err)
		}
		f, err := fsys.OpenFile(n, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("create %s: %w", n, err)
		}
		if _, err := f.Write(files[n]); err != nil {
			return fmt.Errorf("write %s: %w", n, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", n, err)
		}
	}
	return nil
}

// writeSquashfs writes files as a gzip squashfs at offset start of the disk and returns its size.
func writeSquashfs(d *disk.Disk, start, size int64, mtime time.Time, files map[string][]byte, execs map[string]bool) (int64, error) {
	sq, err := squashfs.Create(d.Backend, size, start, 0)
	if err != nil {
		return 0, err
	}
	ws := sq.Workspace()
	if err := os.Chmod(ws, 0o755); err != nil { // the slot's root directory
		return 0, err
	}
	for name, b := range files {
		p := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		mode := os.FileMode(0o644)
		if execs[name] {
			mode = 0o755
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			return 0, err
		}
		if err := os.Chmod(p, mode); err != nil { // not subject to the umask
			return 0, err
		}
	}
	// Every time in the tree becomes the build epoch.
	err = filepath.WalkDir(ws, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		return 0, err
	}
	var root uint32
	err = sq.Finalize(squashfs.FinalizeOptions{
		Compression: &squashfs.CompressorGzip{CompressionLevel: 9},
		FileUID:     &root, FileGID: &root,
	})
	if err != nil {
		return 0, fmt.Errorf("finalize squashfs: %w", err)
	}
	// go-diskfs stamps the superblock with the current time (4 bytes at offset 8).
	var ts [4]byte
	binary.LittleEndian.PutUint32(ts[:], uint32(mtime.Unix()))
	w, err := d.Backend.Writable()
	if err != nil {
		return 0, err
	}
	if _, err := w.WriteAt(ts[:], start+8); err != nil {
		return 0, fmt.Errorf("stamp squashfs time: %w", err)
	}
	var sb [48]byte
	if _, err := d.Backend.ReadAt(sb[:], start); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(sb[40:48])), nil
}
