package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A module tree shaped like the image's: virtio_net needs virtio and virtio_ring (virtio_ring
// first), and only appears once virtio_pci has exposed the virtio bus device.
func setup(t *testing.T) (string, string) {
	dir, sys := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "modules.dep"), `virtio_ring.ko:
virtio.ko: virtio_ring.ko
virtio_pci.ko: virtio.ko virtio_ring.ko
virtio_net.ko: virtio.ko virtio_ring.ko
ext4.ko: jbd2.ko mbcache.ko
jbd2.ko:
mbcache.ko:
`)
	write(t, filepath.Join(dir, "modules.alias"), `alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias fs-ext4 ext4
`)
	write(t, filepath.Join(sys, "bus/pci/devices/0000:00:02.0/modalias"), "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n")
	write(t, filepath.Join(sys, "bus/pci/devices/0000:00:03.0/modalias"), "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01\n")
	return dir, sys
}

func TestLoadOrder(t *testing.T) {
	dir, _ := setup(t)
	l, err := New(dir, filepath.Join(t.TempDir(), "missing"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	l.load = func(p string) error { got = append(got, filepath.Base(p)); return nil }
	if err := l.Load("ext4"); err != nil {
		t.Fatal(err)
	}
	if err := l.Load("virtio-pci"); err != nil {
		t.Fatal(err)
	}
	want := []string{"mbcache.ko", "jbd2.ko", "ext4.ko", "virtio_ring.ko", "virtio.ko", "virtio_pci.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("load order %v, want %v", got, want)
	}
	if err := l.Load("nosuch"); err == nil {
		t.Fatal("unknown module loaded")
	}
}

func TestAlreadyLoadedIsFine(t *testing.T) {
	dir, _ := setup(t)
	l, _ := New(dir)
	l.load = func(string) error { return unix.EEXIST }
	if err := l.Load("virtio_net"); err != nil {
		t.Fatal(err)
	}
}

func TestColdplugRepeatsForNewDevices(t *testing.T) {
	dir, sys := setup(t)
	l, _ := New(dir)
	var got []string
	var mu sync.Mutex
	l.load = func(p string) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, filepath.Base(p))
		if filepath.Base(p) == "virtio_pci.ko" { // the PCI driver exposes the virtio device
			write(t, filepath.Join(sys, "bus/virtio/devices/virtio0/modalias"), "virtio:d00000001v00001AF4\n")
		}
		return nil
	}
	loaded, errs := l.Coldplug(sys)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(loaded, []string{"virtio_net", "virtio_pci"}) {
		t.Fatalf("coldplug loaded %v", loaded)
	}
	if !reflect.DeepEqual(got, []string{"virtio_ring.ko", "virtio.ko", "virtio_pci.ko", "virtio_net.ko"}) {
		t.Fatalf("files loaded %v", got)
	}
}

// Concurrent loads of modules sharing dependencies load each file exactly once, dependencies
// before their users.
func TestConcurrentLoadsShareDependencies(t *testing.T) {
	dir, _ := setup(t)
	l, _ := New(dir)
	var mu sync.Mutex
	count := map[string]int{}
	var order []string
	l.load = func(p string) error {
		mu.Lock()
		defer mu.Unlock()
		count[filepath.Base(p)]++
		order = append(order, filepath.Base(p))
		return nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range []string{"virtio_net", "virtio_pci", "ext4"} {
				if err := l.Load(m); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for f, n := range count {
		if n != 1 {
			t.Errorf("%s loaded %d times", f, n)
		}
	}
	pos := map[string]int{}
	for i, f := range order {
		pos[f] = i
	}
	if !(pos["virtio_ring.ko"] < pos["virtio.ko"] && pos["virtio.ko"] < pos["virtio_net.ko"] && pos["jbd2.ko"] < pos["ext4.ko"]) {
		t.Errorf("dependency order broken: %v", order)
	}
}
