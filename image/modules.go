package image

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// BootModules are loaded from the initramfs: what anyad needs to reach disks, filesystems,
// the network and the watchdog on a PC-class box or a VM. Modules the kernel has built in are
// skipped; dependencies are added.
var BootModules = []string{
	// buses and disks
	"virtio_pci", "virtio_blk", "virtio_scsi", "nvme", "ahci", "sd_mod",
	"xhci_pci", "ehci_pci", "usb_storage", "uas",
	// filesystems: system slots, data partition, ESP
	"squashfs", "ext4", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859_1", "crc32c_generic", "efivarfs",
	// network
	"virtio_net", "e1000", "e1000e", "igb", "r8169",
	// entropy and watchdogs
	"virtio_rng", "i6300esb", "iTCO_wdt",
}

// SystemModules live in the slot's system partition and are loaded after it is mounted.
var SystemModules = []string{
	"i2c_dev", "i2c_i801", "usbnet", "cdc_ether", "r8152", "ax88179_178a",
}

// kmodule is one kernel module file with what its .modinfo section says.
type kmodule struct {
	Name    string
	Path    string // absolute path of the .ko in the extracted package
	Depends []string
	Aliases []string
}

// moduleTree indexes the modules of one kernel in an extracted linux-image package.
type moduleTree struct {
	Version string            // kernel release, e.g. 6.1.0-56-amd64
	Dir     string            // .../lib/modules/<Version>
	files   map[string]string // module name -> path
	builtin map[string]bool
}

func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
}

// loadModuleTree finds lib/modules/<version> under root and indexes its .ko files by name.
func loadModuleTree(root string) (*moduleTree, error) {
	vers, err := filepath.Glob(filepath.Join(root, "lib/modules/*"))
	if err != nil || len(vers) != 1 {
		return nil, fmt.Errorf("find kernel modules under %s: want one lib/modules/<version>, got %v", root, vers)
	}
	t := &moduleTree{Version: filepath.Base(vers[0]), Dir: vers[0], files: map[string]string{}, builtin: map[string]bool{}}
	err = filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			t.files[modName(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index kernel modules: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(t.Dir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	for _, line := range strings.Fields(string(b)) {
		t.builtin[modName(line)] = true
	}
	return t, nil
}

// readModinfo parses the .modinfo section of a kernel module.
func readModinfo(path string) (deps, aliases []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil, fmt.Errorf("read module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, nil, fmt.Errorf("read module %s: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					deps = append(deps, modName(d))
				}
			}
		case "alias":
			aliases = append(aliases, v)
		}
	}
	return deps, aliases, nil
}

// closure returns the named modules and everything they depend on, each once, dependencies
// before their users. Built-in modules are skipped; skip names modules already provided
// elsewhere (for example in the initramfs).
func (t *moduleTree) closure(names []string, skip map[string]bool) ([]kmodule, error) {
	var out []kmodule
	seen := map[string]bool{}
	var visit func(name string, stack []string) error
	visit = func(name string, stack []string) error {
		name = modName(name)
		if seen[name] || t.builtin[name] || skip[name] {
			return nil
		}
		for _, s := range stack {
			if s == name {
				return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, name), " -> "))
			}
		}
		path, ok := t.files[name]
		if !ok {
			return fmt.Errorf("kernel %s has no module %q", t.Version, name)
		}
		deps, aliases, err := readModinfo(path)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(stack, name)); err != nil {
				return err
			}
		}
		seen[name] = true
		out = append(out, kmodule{Name: name, Path: path, Depends: deps, Aliases: aliases})
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleFiles returns the files of a flat module directory for mods: each module as <name>.ko,
// plus modules.dep and modules.alias in kmod's formats (modules.dep lists every transitive
// dependency, the one to load first last).
func moduleFiles(mods []kmodule) (map[string][]byte, error) {
	files := map[string][]byte{}
	byName := map[string]kmodule{}
	for _, m := range mods {
		b, err := os.ReadFile(m.Path)
		if err != nil {
			return nil, fmt.Errorf("read module: %w", err)
		}
		files[m.Name+".ko"] = b
		byName[m.Name] = m
	}
	var dep, alias bytes.Buffer
	for _, m := range mods {
		// Transitive dependencies, in load order.
		var order []string
		seen := map[string]bool{}
		var walk func(n string)
		walk = func(n string) {
			d, ok := byName[n]
			if !ok || seen[n] {
				return
			}
			seen[n] = true
			for _, x := range d.Depends {
				walk(x)
			}
			if n != m.Name {
				order = append(order, n+".ko")
			}
		}
		walk(m.Name)
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
		fmt.Fprintf(&dep, "%s.ko:", m.Name)
		for _, o := range order {
			fmt.Fprintf(&dep, " %s", o)
		}
		dep.WriteByte('\n')
		al := append([]string(nil), m.Aliases...)
		sort.Strings(al)
		for _, a := range al {
			fmt.Fprintf(&alias, "alias %s %s\n", a, m.Name)
		}
	}
	files["modules.dep"] = dep.Bytes()
	files["modules.alias"] = alias.Bytes()
	return files, nil
}
