package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// RecoveryConfig says what recovery stick to build.
type RecoveryConfig struct {
	// Bundle is a signed release bundle: a directory (anyactl release sign) or its tar.
	Bundle string
	// TrustedRoot is the root metadata the bundle must verify against (the vendor's
	// keys/roots/N.root.json); the stick carries it for the box.
	TrustedRoot string
	// BootEFI is systemd-boot; when nil it comes from Debian's systemd-boot-efi in CacheDir.
	BootEFI  []byte
	CacheDir string
	Output   string
	// Cmdline is the extra kernel command line of the recovery entry, and of the entries a
	// reinstall writes (anya.network=regtest, anya.static=…).
	Cmdline string
	// Epoch is every timestamp on the stick; SOURCE_DATE_EPOCH, else the release's build time.
	Epoch int64
	// BackupSpace is the free room for backups and logs on the files partition (default
	// 256 MiB).
	BackupSpace int64
	// Backups are backup files (.anyabak) put in the stick's backups/, by file name: an
	// owner's downloaded backups, for the recovery page to restore.
	Backups map[string][]byte
	// Now is the verification time of the bundle's metadata (time.Now when nil).
	Now func() time.Time
}

// RecoveryResult describes a built stick.
type RecoveryResult struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	// BundleBytes is the size of the signed bundle (bundle.tar) on the stick.
	BundleBytes int64 `json:"bundle_bytes"`
}

// recoveryInfo is the stick's recovery.json.
type recoveryInfo struct {
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	Epoch   int64  `json:"epoch"`
	Bundle  string `json:"bundle_sha256"`
}

// recoveryLoaderConf boots the recovery entry at once.
const recoveryLoaderConf = "timeout 0\ndefault anya-recovery*\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n"

const recoveryReadme = `Anya Edge recovery stick
========================

Plug this stick into the box and start it from USB (most boxes do when no internal
system can start). Open the box's address in a browser: the recovery page offers to
reinstall the firmware, restore a backup from backups/, check the data partition and
export the logs to logs/.

bundle.tar    the signed firmware release (verified before it is written)
root.json     the vendor's trusted root it is verified against
backups/      put .anyabak backups here (the box also writes its backups here)
logs/         log exports
`

// BuildRecovery writes a bootable recovery stick image: a GPT disk with
//
//	1 anya-recovery-esp  FAT32: systemd-boot and one entry booting the release's own kernel
//	                     and initramfs (anyad) with anya.mode=recovery
//	2 anya-recovery-sys  the release's system squashfs, byte for byte (modules, trusted root)
//	3 ANYA-RECOVERY      FAT32 (volume label ANYA-RESCUE, readable on any laptop):
//	                     bundle.tar, root.json, recovery.json, README.txt, backups/, logs/
//
// The bundle is verified against the trusted root first, and the boot files come from the
// verified payloads, so the stick runs exactly the signed release. The same inputs give the
// same bytes (GUIDs from the version, fixed FAT volume ids and times, sorted files).
func BuildRecovery(ctx context.Context, cfg RecoveryConfig) (RecoveryResult, error) {
	if cfg.Bundle == "" || cfg.TrustedRoot == "" || cfg.Output == "" {
		return RecoveryResult{}, fmt.Errorf("recovery stick: Bundle, TrustedRoot and Output are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BackupSpace <= 0 {
		cfg.BackupSpace = 256 * mib
	}
	root, _, err := LoadTrustedRoot(cfg.TrustedRoot)
	if err != nil {
		return RecoveryResult{}, err
	}
	bundleTar, err := bundleBytes(cfg.Bundle)
	if err != nil {
		return RecoveryResult{}, err
	}
	st, err := release.NewState(root)
	if err != nil {
		return RecoveryResult{}, err
	}
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: "amd64", Now: cfg.Now})
	if err != nil {
		return RecoveryResult{}, err
	}
	src := release.NewTar(bytes.NewReader(bundleTar))
	rel, err := v.Update(ctx, src, release.Installed{})
	if err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: verify %s: %w", cfg.Bundle, err)
	}
	payload := map[release.Kind][]byte{}
	for _, p := range rel.Payloads {
		r, err := rel.Open(ctx, p.Kind)
		if err != nil {
			return RecoveryResult{}, fmt.Errorf("recovery stick: %w", err)
		}
		b, err := io.ReadAll(r)
		ok := r.Verified()
		r.Close()
		if err != nil || !ok {
			return RecoveryResult{}, fmt.Errorf("recovery stick: payload %s does not verify: %v", p.Path, err)
		}
		payload[p.Kind] = b
	}
	var relInfo Release
	json.Unmarshal(payload[release.KindRelease], &relInfo)
	if cfg.Epoch == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if cfg.Epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
				return RecoveryResult{}, fmt.Errorf("recovery stick: SOURCE_DATE_EPOCH: %w", err)
			}
		} else {
			cfg.Epoch = relInfo.Epoch
		}
	}
	if cfg.Epoch < 315532800 {
		cfg.Epoch = 315532800
	}
	os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(cfg.Epoch, 10))
	if cfg.BootEFI == nil {
		if cfg.BootEFI, err = fetchBootEFI(ctx, cfg.CacheDir); err != nil {
			return RecoveryResult{}, err
		}
	}

	sum := sha256.Sum256(bundleTar)
	info, _ := json.MarshalIndent(recoveryInfo{Version: rel.Version, Counter: rel.Counter, Epoch: cfg.Epoch, Bundle: hex.EncodeToString(sum[:])}, "", "  ")
	roundUp := func(n int64) int64 { return (n + mib - 1) / mib * mib }
	espSize := max(40*mib, roundUp(int64(len(payload[release.KindKernel])+len(payload[release.KindInitrd])+len(cfg.BootEFI))+8*mib))
	sysSize := roundUp(int64(len(payload[release.KindSystem])) + 1)
	var backupBytes int64
	for _, b := range cfg.Backups {
		backupBytes += int64(len(b)) + 64<<10 // the file, rounded up to clusters
	}
	filesSize := max(64*mib, roundUp(int64(len(bundleTar))+int64(len(root))+cfg.BackupSpace+backupBytes+4*mib))

	if espSize, err = goodFATSize(espSize); err != nil {
		return RecoveryResult{}, err
	}
	if filesSize, err = goodFATSize(filesSize); err != nil {
		return RecoveryResult{}, err
	}
	const sector = 512
	os.Remove(cfg.Output)
	total := mib + espSize + sysSize + filesSize + mib
	d, err := diskfs.Create(cfg.Output, total, diskfs.SectorSizeDefault)
	if err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	var parts []*gpt.Partition
	start := int64(mib)
	add := func(name string, typ gpt.Type, size int64) {
		parts = append(parts, &gpt.Partition{Index: len(parts) + 1, Start: uint64(start / sector), End: uint64((start+size)/sector - 1),
			Size: uint64(size), Type: typ, Name: name, GUID: guid(rel.Version, "recovery partition", name)})
		start += size
	}
	add(rescue.LabelStickESP, gpt.EFISystemPartition, espSize)
	add(rescue.LabelStickSystem, gpt.LinuxFilesystem, sysSize)
	add(rescue.LabelStickFiles, gpt.MicrosoftBasicData, filesSize)
	table := &gpt.Table{Partitions: parts, LogicalSectorSize: sector, ProtectiveMBR: true, GUID: guid(rel.Version, "recovery disk")}
	if err := d.Partition(table); err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: partition table: %w", err)
	}
	esp, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: "ANYA-BOOT", Reproducible: true})
	if err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: format the ESP: %w", err)
	}
	options := "console=tty0 console=ttyS0,115200 loglevel=4 panic=10 " + rescue.ModeParam + "=" + rescue.ModeValue
	if cfg.Cmdline != "" {
		options += " " + cfg.Cmdline
	}
	entry := fmt.Sprintf("title Anya Edge %s recovery\nsort-key anya\nversion %d\nlinux /anya/recovery/vmlinuz\ninitrd /anya/recovery/initrd.img\noptions %s\n",
		rel.Version, rel.Counter, options)
	if err := writeFiles(esp, map[string][]byte{
		"/EFI/BOOT/BOOTX64.EFI":               cfg.BootEFI,
		"/loader/loader.conf":                 []byte(recoveryLoaderConf),
		"/loader/entries/anya-recovery.conf":  []byte(entry),
		"/anya/recovery/vmlinuz":              payload[release.KindKernel],
		"/anya/recovery/initrd.img":           payload[release.KindInitrd],
		"/anya/recovery/" + rescueReleaseFile: payload[release.KindRelease],
	}); err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: fill the ESP: %w", err)
	}
	w, err := d.Backend.Writable()
	if err != nil {
		return RecoveryResult{}, err
	}
	if _, err := w.WriteAt(payload[release.KindSystem], int64(parts[1].Start)*sector); err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: system partition: %w", err)
	}
	files, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 3, FSType: filesystem.TypeFat32, VolumeLabel: "ANYA-RESCUE", Reproducible: true})
	if err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: format the files partition: %w", err)
	}
	onStick := map[string][]byte{
		"/" + rescue.BundleFile:                 bundleTar,
		"/" + rescue.RootFile:                   root,
		"/" + rescue.StickInfoFile:              append(info, '\n'),
		"/README.txt":                           []byte(recoveryReadme),
		"/" + rescue.BackupsDir + "/README.txt": []byte("Backups (.anyabak) the recovery page can restore.\n"),
		"/" + rescue.LogsDir + "/README.txt":    []byte("Log exports of the recovery page.\n"),
	}
	for name, b := range cfg.Backups {
		if name == "" || strings.ContainsAny(name, `/\`) || !strings.HasSuffix(name, backup.FileSuffix) {
			return RecoveryResult{}, fmt.Errorf("recovery stick: backup file name %q: want a plain name ending in %s", name, backup.FileSuffix)
		}
		onStick["/"+rescue.BackupsDir+"/"+name] = b
	}
	if err := writeFiles(files, onStick); err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: fill the files partition: %w", err)
	}
	closed = true
	if err := d.Close(); err != nil {
		return RecoveryResult{}, fmt.Errorf("recovery stick: %w", err)
	}
	res := RecoveryResult{Path: cfg.Output, Version: rel.Version, Counter: rel.Counter, BundleBytes: int64(len(bundleTar))}
	f, err := os.Open(cfg.Output)
	if err != nil {
		return RecoveryResult{}, err
	}
	defer f.Close()
	h := sha256.New()
	if res.Size, err = io.Copy(h, f); err != nil {
		return RecoveryResult{}, err
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// goodFATSize returns the first size from size on, in MiB steps, for which go-diskfs
// v1.9.4 writes a valid FAT32: for a few sizes (64, 129, 194, 259, 505–507 MiB, …) it
// makes the FAT two entries too short for the clusters, which fsck.vfat reports and Linux
// refuses to mount. Each size is tried on a sparse scratch file.
func goodFATSize(size int64) (int64, error) {
	dir, err := os.MkdirTemp("", "fatsize")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for try := 0; try < 16; try, size = try+1, size+mib {
		p := filepath.Join(dir, "fat.img")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return 0, err
		}
		if err := os.Truncate(p, size); err != nil {
			return 0, err
		}
		d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadWrite))
		if err != nil {
			return 0, err
		}
		_, err = d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, Reproducible: true})
		d.Close()
		if err != nil {
			return 0, fmt.Errorf("recovery stick: FAT32 of %d bytes: %w", size, err)
		}
		bs := make([]byte, 512)
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		_, err = f.ReadAt(bs, 0)
		f.Close()
		if err != nil {
			return 0, err
		}
		if FATFits(bs) {
			return size, nil
		}
	}
	return 0, fmt.Errorf("recovery stick: no valid FAT32 size near %d bytes", size)
}

// FATFits reports whether a FAT32 boot sector's FAT has an entry for every cluster.
func FATFits(bs []byte) bool {
	le16 := func(b []byte) int64 { return int64(b[0]) | int64(b[1])<<8 }
	le32 := func(b []byte) int64 { return le16(b) | le16(b[2:])<<16 }
	bps, spc, reserved, fats := le16(bs[11:]), int64(bs[13]), le16(bs[14:]), int64(bs[16])
	total, fatSize := le32(bs[32:]), le32(bs[36:])
	if bps == 0 || spc == 0 {
		return false
	}
	clusters := (total - reserved - fats*fatSize) / spc
	return clusters <= fatSize*bps/4-2
}

// rescueReleaseFile is the release manifest next to the recovery kernel.
const rescueReleaseFile = "release.json"

// bundleBytes returns the bundle as the single tar the stick carries.
func bundleBytes(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("recovery stick: bundle: %w", err)
	}
	if !fi.IsDir() {
		return os.ReadFile(name)
	}
	b, err := publish.ReadBundle(name)
	if err != nil {
		return nil, fmt.Errorf("recovery stick: bundle %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := b.WriteTar(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fetchBootEFI takes systemd-boot from Debian's package, as Build does.
func fetchBootEFI(ctx context.Context, cacheDir string) ([]byte, error) {
	if cacheDir == "" {
		return nil, fmt.Errorf("recovery stick: no systemd-boot given and no cache directory to fetch it into")
	}
	deb, err := FetchDeb(ctx, cacheDir, SystemdBootPackage)
	if err != nil {
		return nil, err
	}
	root, err := ExtractDeb(ctx, deb)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"))
	if err != nil {
		return nil, fmt.Errorf("read systemd-boot: %w", err)
	}
	return b, nil
}
