package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	diskfs "github.com/diskfs/go-diskfs"
)

const rmib = 1 << 20

var recoveryT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func rnd(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), 7}).Read(b)
	return b
}

// signedRelease builds a small release with image.WriteDisk, signs it, and returns the bundle
// directory, the trusted root file and the payloads.
func signedRelease(t *testing.T, version string, counter uint64) (bundle, rootFile string, sf image.SlotFiles, system []byte) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "release.img")
	m, _ := json.Marshal(image.Release{Version: version, Counter: int(counter), Arch: "amd64", Epoch: recoveryT0.Add(-48 * time.Hour).Unix()})
	d := image.Disk{BootEFI: []byte("systemd-boot"), Kernel: rnd(counter+1, rmib), Initrd: rnd(counter+2, 2*rmib),
		Release: m, System: map[string][]byte{"release.json": m, "lib/blob": rnd(counter+3, 256<<10)}}
	if _, err := image.WriteDisk(image.Config{Output: img, Version: version, Counter: int(counter), ESPSize: 40 * rmib, SlotSize: 8 * rmib, DataSize: rmib}, d); err != nil {
		t.Fatal(err)
	}
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	system = make([]byte, sf.SystemSize)
	f, _ := os.Open(img)
	f.ReadAt(system, sf.SystemOffset)
	f.Close()
	keys, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: recoveryT0.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bundle = filepath.Join(dir, "bundle")
	if _, err := keys.Sign(bundle, []publish.Release{{Arch: "amd64", Version: version, Counter: counter,
		Payloads: map[release.Kind]io.Reader{release.KindRelease: bytes.NewReader(sf.Release), release.KindKernel: bytes.NewReader(sf.Kernel),
			release.KindInitrd: bytes.NewReader(sf.Initrd), release.KindSystem: bytes.NewReader(system)}}},
		publish.SignOptions{Now: recoveryT0}); err != nil {
		t.Fatal(err)
	}
	rootFile = filepath.Join(dir, "root.json")
	os.WriteFile(rootFile, keys.Root(), 0o644)
	return bundle, rootFile, sf, system
}

func stickFile(t *testing.T, stick string, part int, name string) []byte {
	t.Helper()
	d, err := diskfs.Open(stick, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(part)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	// go-diskfs v1.9.4 reads past the end of a file: cut at the directory entry's size.
	dir, file := filepath.Split(name)
	d2 := strings.Trim(dir, "/")
	ents, err := fsys.ReadDir(d2)
	if err != nil {
		ents, err = fsys.ReadDir(".")
	}
	if err != nil {
		t.Log(err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.EqualFold(e.Name(), file) && int64(len(b)) > fi.Size() {
			b = b[:fi.Size()]
		}
	}
	return b
}

// TestRecoveryStick builds a recovery stick from a signed bundle (twice: the same bytes),
// checks its layout, and reinstalls a blank internal disk from what is on the stick.
func TestRecoveryStick(t *testing.T) {
	bundle, rootFile, sf, system := signedRelease(t, "1.4.0", 14)
	now := func() time.Time { return recoveryT0.Add(time.Hour) }
	cfg := image.RecoveryConfig{Bundle: bundle, TrustedRoot: rootFile, BootEFI: []byte("systemd-boot efi"),
		Output: filepath.Join(t.TempDir(), "stick.img"), Cmdline: "anya.network=regtest", Epoch: 1767225600, BackupSpace: 8 * rmib, Now: now}
	start := time.Now()
	res, err := image.BuildRecovery(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stick: %d bytes, bundle %d bytes, built in %s", res.Size, res.BundleBytes, time.Since(start))
	cfg2 := cfg
	cfg2.Output = filepath.Join(t.TempDir(), "stick2.img")
	res2, err := image.BuildRecovery(context.Background(), cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != res2.SHA256 {
		t.Fatal("the recovery stick is not reproducible")
	}
	stick := res.Path
	for _, label := range []string{rescue.LabelStickESP, rescue.LabelStickSystem, rescue.LabelStickFiles} {
		if _, err := image.PartitionOffset(stick, label); err != nil {
			t.Fatal(err)
		}
	}
	for _, label := range []string{image.LabelESP, image.LabelSlotA, image.LabelData} {
		if _, err := image.PartitionOffset(stick, label); err == nil {
			t.Fatalf("the stick has a partition labelled %s, which the box would take for its own", label)
		}
	}
	entry := string(stickFile(t, stick, 1, "/loader/entries/anya-recovery.conf"))
	if !strings.Contains(entry, "anya.mode=recovery anya.network=regtest") || strings.Contains(entry, "anya.slot") {
		t.Fatalf("recovery entry:\n%s", entry)
	}
	if !bytes.Equal(stickFile(t, stick, 1, "/anya/recovery/vmlinuz"), sf.Kernel) || !bytes.Equal(stickFile(t, stick, 1, "/anya/recovery/initrd.img"), sf.Initrd) {
		t.Fatal("the stick does not boot the release's kernel and initramfs")
	}
	off, _ := image.PartitionOffset(stick, rescue.LabelStickSystem)
	got := make([]byte, len(system))
	f, _ := os.Open(stick)
	f.ReadAt(got, off)
	f.Close()
	if !bytes.Equal(got, system) {
		t.Fatal("the stick's system partition differs from the release's")
	}

	// Reinstall a blank disk from the stick's files, as the recovery page does.
	tarBytes := stickFile(t, stick, 3, "/"+rescue.BundleFile)
	root := stickFile(t, stick, 3, "/"+rescue.RootFile)
	efi := stickFile(t, stick, 1, "/EFI/BOOT/BOOTX64.EFI")
	if rf, _ := os.ReadFile(rootFile); !bytes.Equal(rf, root) || int64(len(tarBytes)) != res.BundleBytes {
		t.Fatal("the stick's root or bundle differs")
	}
	tarFile := filepath.Join(t.TempDir(), "bundle.tar")
	os.WriteFile(tarFile, tarBytes, 0o644)
	tf, _ := os.Open(tarFile)
	defer tf.Close()
	internal := filepath.Join(t.TempDir(), "internal.img")
	os.WriteFile(internal, nil, 0o644)
	os.Truncate(internal, 200*rmib)
	rr, err := rescue.Reinstall(context.Background(), rescue.ReinstallOptions{Disk: internal, Bundle: release.NewTar(tf), TrustedRoot: root,
		BootEFI: efi, Cmdline: "anya.network=regtest", Scratch: t.TempDir(), ESPSize: 40 * rmib, SlotSize: 8 * rmib, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Version != "1.4.0" {
		t.Fatalf("reinstalled %+v", rr)
	}
	for _, s := range []string{"a", "b"} {
		got, err := image.ReadSlot(internal, s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Kernel, sf.Kernel) || got.SystemSize != int64(len(system)) {
			t.Fatalf("slot %s after the reinstall", s)
		}
	}
}
