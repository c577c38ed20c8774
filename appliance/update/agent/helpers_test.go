package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/anya-edge/anya/storage"
)

// t0 is when the test releases are signed; the boxes' clocks read an hour later.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const mib = 1 << 20

// rel is a test release: its payloads as an image build makes them.
type rel struct {
	version                  string
	counter                  uint64
	kernel, initrd, manifest []byte
	system                   []byte // a squashfs
	img                      string // the image it was taken from
}

func random(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func manifestJSON(version string, counter uint64) []byte {
	b, _ := json.Marshal(image.Release{Version: version, Counter: int(counter), Arch: "amd64", Epoch: t0.Add(-48 * time.Hour).Unix()})
	return b
}

// diskConfig is the small disk of the tests: a 40 MiB ESP (the FAT32 minimum is 33), 8 MiB
// slots.
func diskConfig(out, version string, counter uint64) image.Config {
	return image.Config{Output: out, Version: version, Counter: int(counter), ESPSize: 40 * mib, SlotSize: 8 * mib, DataSize: mib,
		Cmdline: "anya.network=regtest"}
}

// makeRelease builds a disk image for a release (with image.WriteDisk) and takes its slot's
// payloads back out (image.ReadSlot), as anyactl release sign -img does.
func makeRelease(t *testing.T, version string, counter uint64, systemSize int) rel {
	t.Helper()
	img := filepath.Join(t.TempDir(), "release.img")
	m := manifestJSON(version, counter)
	d := image.Disk{BootEFI: []byte("systemd-boot"), Kernel: random(counter*10+1, mib+int(counter)), Initrd: random(counter*10+2, 2*mib+int(counter)),
		Release: m, System: map[string][]byte{"release.json": m, "lib/blob": random(counter*10+3, systemSize)}}
	if _, err := image.WriteDisk(diskConfig(img, version, counter), d); err != nil {
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
	return rel{version: version, counter: counter, kernel: sf.Kernel, initrd: sf.Initrd, manifest: sf.Release, system: sys, img: img}
}

// box is a test box: a disk image built at v1 (slot a booted), a database, and a vendor's
// signing keys whose root the image ships.
type box struct {
	t       *testing.T
	dir     string
	img     string
	layout  slot.Layout
	dbPath  string
	keys    *publish.Repo
	root    []byte
	v1      rel
	signed  int // bundles signed so far (each a minute later)
	bundles map[string]*publish.Bundle
	reboots int
}

func newBox(t *testing.T) *box {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	b := &box{t: t, dir: t.TempDir(), bundles: map[string]*publish.Bundle{}}
	// The box's disk is v1's image: both slots v1, entry a version 10, entry b version 0.
	b.v1 = makeRelease(t, "1.0.0", 10, 256<<10)
	b.img = b.v1.img
	var err error
	if b.layout, err = image.Layout(b.img); err != nil {
		t.Fatal(err)
	}
	b.dbPath = filepath.Join(b.dir, "data", "anya.db")
	b.keys, err = publish.Keygen(filepath.Join(b.dir, "keys"), publish.KeygenOptions{Now: t0.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b.root = b.keys.Root()
	return b
}

// sign signs r into a new bundle directory.
func (b *box) sign(r rel) string {
	b.t.Helper()
	out := filepath.Join(b.dir, fmt.Sprintf("bundle-%d", b.signed))
	bundle, err := b.keys.Sign(out, []publish.Release{{Arch: "amd64", Version: r.version, Counter: r.counter,
		Payloads: map[release.Kind]io.Reader{
			release.KindRelease: bytes.NewReader(r.manifest), release.KindKernel: bytes.NewReader(r.kernel),
			release.KindInitrd: bytes.NewReader(r.initrd), release.KindSystem: bytes.NewReader(r.system),
		}}}, publish.SignOptions{Now: t0.Add(time.Duration(b.signed) * time.Minute)})
	if err != nil {
		b.t.Fatal(err)
	}
	b.signed++
	b.bundles[out] = bundle
	return out
}

// dir opens a bundle directory as a source.
func (b *box) src(dir string) release.Fetcher {
	b.t.Helper()
	d, err := release.OpenDir(dir)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { d.Close() })
	return d
}

// boot is one run of anyad on the box: the agent as the services start it.
type boot struct {
	*agent.Agent
	db *storage.DB
}

// start opens the database and starts an agent running slot s with release r, as booted by
// entry loaderEntry.
func (b *box) start(s string, r rel, loaderEntry string, mod ...func(*agent.Config)) *boot {
	b.t.Helper()
	db, err := storage.Open(b.dbPath, storage.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { db.Close() })
	cfg := agent.Config{
		DB: db, Log: slog.New(slog.NewTextHandler(testWriter{b.t}, nil)), Slot: s, LoaderEntry: loaderEntry,
		Running:     agent.Running{Version: r.version, Counter: r.counter, Built: t0.Add(-48 * time.Hour)},
		TrustedRoot: b.root, Layout: b.layout, OpenESP: slot.FATOpener(b.layout.ESP), Arch: "amd64",
		Now:    func() time.Time { return t0.Add(time.Hour) },
		Reboot: func(context.Context) error { b.reboots++; return nil },
	}
	for _, m := range mod {
		m(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	return &boot{Agent: a, db: db}
}

// stop closes the run's database (the box restarts).
func (bt *boot) stop() { bt.db.Close() }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sdBoot does what systemd-boot 252 does at power-on with loader.conf "default anya-*": it
// sorts the entries (no tries left last, then by sort-key and version, newest first), picks
// the first, and if it has a boot counter, counts one try down by renaming it. It returns
// the slot and the entry's name as it was when chosen.
func (b *box) sdBoot() (string, string) {
	b.t.Helper()
	esp, err := slot.OpenFAT(b.layout.ESP, true)
	if err != nil {
		b.t.Fatal(err)
	}
	defer esp.Close()
	type cand struct {
		file  string
		name  slot.Name
		order int
	}
	var cs []cand
	for _, f := range b.entries() {
		n, err := slot.ParseName(f)
		if err != nil {
			continue
		}
		c, err := esp.ReadFile(path.Join(slot.EntriesDir, f))
		if err != nil {
			b.t.Fatal(err)
		}
		cs = append(cs, cand{f, n, slot.ParseEntry(c).Order()})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		bi, bj := cs[i].name.State() == slot.Bad, cs[j].name.State() == slot.Bad
		if bi != bj {
			return !bi
		}
		if cs[i].order != cs[j].order {
			return cs[i].order > cs[j].order
		}
		return cs[i].file > cs[j].file
	})
	if len(cs) == 0 {
		b.t.Fatal("no boot entry")
	}
	c := cs[0]
	if c.name.Counting && c.name.Left > 0 {
		next := c.name
		next.Left, next.Done = next.Left-1, next.Done+1
		if err := esp.Rename(path.Join(slot.EntriesDir, c.file), path.Join(slot.EntriesDir, next.String())); err != nil {
			b.t.Fatal(err)
		}
	}
	return c.name.Slot, c.file
}

// entries lists the boot entries, sorted.
func (b *box) entries() []string {
	b.t.Helper()
	names, err := image.ListESPDir(b.img, "/"+slot.EntriesDir)
	if err != nil {
		b.t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func (b *box) espFile(name string) []byte {
	b.t.Helper()
	c, err := image.ReadESPFile(b.img, "/"+name)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// partition returns the first n bytes of slot s's partition.
func (b *box) partition(s string, n int) []byte {
	b.t.Helper()
	p := b.layout.Slots[s]
	out := make([]byte, n)
	f, err := os.Open(b.img)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(out, p.Offset); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// sum is the SHA-256 of the whole disk image: ESP, slots, data partition, partition tables.
func (b *box) sum() [32]byte {
	b.t.Helper()
	c, err := os.ReadFile(b.img)
	if err != nil {
		b.t.Fatal(err)
	}
	return sha256.Sum256(c)
}

// slotSums are the SHA-256 of each slot's partition and of the data partition.
func (b *box) regionSums() map[string][32]byte {
	b.t.Helper()
	c, err := os.ReadFile(b.img)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string][32]byte{}
	for s, p := range b.layout.Slots {
		out[s] = sha256.Sum256(c[p.Offset : p.Offset+p.Size])
	}
	data, err := image.PartitionOffset(b.img, image.LabelData)
	if err != nil {
		b.t.Fatal(err)
	}
	out["data"] = sha256.Sum256(c[data : data+mib])
	return out
}
