package image

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// debBundle is a set of dynamically linked programs from Debian packages that the system slot
// carries with exactly the shared libraries they need (found from the ELF files themselves:
// interpreter and DT_NEEDED, recursively), so nothing else of Debian comes along.
type debBundle struct {
	Packages []string // Debian packages to take the files from
	Files    []string // paths inside the packages to ship; symlinks are resolved
}

// pcscBundle is pcsc-lite's daemon and the CCID driver: the YubiKey's PIV applet is reached
// through them (see package hsm/piv, whose static client speaks pcscd's socket protocol).
var pcscBundle = debBundle{
	Packages: []string{"pcscd", "libccid", "libusb-1.0-0", "libudev1", "libsystemd0",
		"libc6", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1"},
	Files: []string{
		"usr/sbin/pcscd",
		"usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist",
		"usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Linux/libccid.so",
	},
}

// libDirs are searched, in every package, for a DT_NEEDED library.
var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"}

// collect fetches and unpacks the bundle's packages and returns the files to ship (path in
// the slot → content) and which of them are executable.
func (b debBundle) collect(ctx context.Context, cacheDir string) (files map[string][]byte, exec map[string]bool, versions []string, err error) {
	var roots []string
	for _, pkg := range b.Packages {
		deb, err := FetchDeb(ctx, cacheDir, pkg)
		if err != nil {
			return nil, nil, nil, err
		}
		root, err := ExtractDeb(ctx, deb)
		if err != nil {
			return nil, nil, nil, err
		}
		roots = append(roots, root)
		versions = append(versions, pkg+"="+DebVersion(deb))
	}
	files, exec = map[string][]byte{}, map[string]bool{}
	var add func(p string) error
	add = func(p string) error {
		if _, done := files[p]; done {
			return nil
		}
		data, mode, err := readMerged(roots, p)
		if err != nil {
			return err
		}
		files[p] = data
		if mode&0o111 != 0 {
			exec[p] = true
		}
		if !bytes.HasPrefix(data, []byte("\x7fELF")) {
			return nil
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				interp := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(interp, 0); err != nil {
					return fmt.Errorf("%s: interpreter: %w", p, err)
				}
				if err := add(strings.TrimPrefix(strings.TrimRight(string(interp), "\x00"), "/")); err != nil {
					return err
				}
			}
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, lib := range libs {
			found := ""
			for _, dir := range libDirs {
				if _, _, err := readMerged(roots, path.Join(dir, lib)); err == nil {
					found = path.Join(dir, lib)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which none of the packages %v has", p, lib, b.Packages)
			}
			if err := add(found); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range b.Files {
		if err := add(p); err != nil {
			return nil, nil, nil, fmt.Errorf("bundle: %w", err)
		}
	}
	return files, exec, versions, nil
}

// readMerged reads p from the union of the unpacked packages, following symlinks (absolute
// ones relative to the union's root).
func readMerged(roots []string, p string) ([]byte, os.FileMode, error) {
	for hops := 0; hops < 16; hops++ {
		var target string
		for _, r := range roots {
			full := filepath.Join(r, filepath.FromSlash(p))
			fi, err := os.Lstat(full)
			if err != nil {
				continue
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				t, err := os.Readlink(full)
				if err != nil {
					return nil, 0, err
				}
				if path.IsAbs(t) {
					target = strings.TrimPrefix(t, "/")
				} else {
					target = path.Join(path.Dir(p), t)
				}
				break
			}
			if !fi.Mode().IsRegular() {
				return nil, 0, fmt.Errorf("%s is not a regular file", p)
			}
			data, err := os.ReadFile(full)
			return data, fi.Mode(), err
		}
		if target == "" {
			return nil, 0, fmt.Errorf("%s: %w", p, os.ErrNotExist)
		}
		p = target
	}
	return nil, 0, fmt.Errorf("%s: too many symlinks", p)
}
