package rescue_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const mib = 1 << 20

func random(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// testRelease is a signed release: its payloads and a bundle directory.
type testRelease struct {
	kernel, initrd, manifest, system []byte
	bundle                           string
	root                             []byte
}

// makeRelease builds a small release (as image.WriteDisk and anyactl release sign do) and
// signs it with new keys.
func makeRelease(t *testing.T, version string, counter uint64) testRelease {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	dir := t.TempDir()
	img := filepath.Join(dir, "release.img")
	m, _ := json.Marshal(image.Release{Version: version, Counter: int(counter), Arch: "amd64", Epoch: t0.Add(-48 * time.Hour).Unix()})
	d := image.Disk{BootEFI: []byte("systemd-boot"), Kernel: random(counter*10+1, mib), Initrd: random(counter*10+2, 2*mib),
		Release: m, System: map[string][]byte{"release.json": m, "lib/blob": random(counter*10+3, 256<<10)}}
	cfg := image.Config{Output: img, Version: version, Counter: int(counter), ESPSize: 40 * mib, SlotSize: 8 * mib, DataSize: mib}
	if _, err := image.WriteDisk(cfg, d); err != nil {
		t.Fatal(err)
	}
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	sys := make([]byte, sf.SystemSize)
	f, _ := os.Open(img)
	defer f.Close()
	if _, err := f.ReadAt(sys, sf.SystemOffset); err != nil {
		t.Fatal(err)
	}
	keys, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: t0.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	_, err = keys.Sign(out, []publish.Release{{Arch: "amd64", Version: version, Counter: counter,
		Payloads: map[release.Kind]io.Reader{
			release.KindRelease: bytes.NewReader(sf.Release), release.KindKernel: bytes.NewReader(sf.Kernel),
			release.KindInitrd: bytes.NewReader(sf.Initrd), release.KindSystem: bytes.NewReader(sys),
		}}}, publish.SignOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return testRelease{kernel: sf.Kernel, initrd: sf.Initrd, manifest: sf.Release, system: sys, bundle: out, root: keys.Root()}
}

func now() time.Time { return t0.Add(time.Hour) }

// blankDisk makes a sparse all-zero disk image.
func blankDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "internal.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}
