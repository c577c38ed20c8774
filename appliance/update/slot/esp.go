package slot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ESP is the EFI system partition, opened for reading or for an update. Names are
// slash-separated and relative to the ESP's root ("loader/entries/anya-b.conf"; a leading
// slash is ignored).
//
// Only WriteFile and Rename change what the boot loader sees, each in one directory update:
// WriteFile writes a temporary file (<name>.tmp, which systemd-boot ignores) and renames it,
// so a crash leaves either the old or the new file under name, never a partial one. FAT has
// no journal; the kernel's vfat driver and this package order their writes so that the worst
// case after a crash is a lost cluster, not a lost file.
type ESP interface {
	// List returns the names in directory dir; an error wrapping fs.ErrNotExist when there
	// is no such directory.
	List(dir string) ([]string, error)
	// ReadFile returns the content of a file; an error wrapping fs.ErrNotExist when it is
	// missing.
	ReadFile(name string) ([]byte, error)
	// WriteFile creates or replaces name with what r yields, through a temporary file and a
	// rename, creating missing directories. If r fails, name is left as it was and the error
	// is returned.
	WriteFile(name string, r io.Reader) (int64, error)
	// Rename renames a file within its directory, replacing to if it exists.
	Rename(from, to string) error
	// Remove removes a file; removing a missing file is not an error.
	Remove(name string) error
	// Sync makes every change so far durable.
	Sync() error
	// Close syncs and releases the ESP (unmounting it if it was mounted for this).
	Close() error
}

// writeBuffer is the size of the writes to the ESP and the system partition.
const writeBuffer = 4 << 20

// cleanName makes an ESP name relative and clean; it refuses names that leave the ESP.
func cleanName(name string) (string, error) {
	n := path.Clean(strings.TrimPrefix(name, "/"))
	if n == "." || !fs.ValidPath(n) {
		return "", fmt.Errorf("invalid ESP path %q", name)
	}
	return n, nil
}

// DirESP is an ESP mounted at a directory (or, in tests, any directory).
type DirESP struct {
	root    *os.Root
	unmount func() error // nil unless the ESP was mounted for this
	dirty   map[string]bool
}

// OpenDir returns the ESP mounted at dir.
func OpenDir(dir string) (*DirESP, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open ESP: %w", err)
	}
	return &DirESP{root: r, dirty: map[string]bool{}}, nil
}

// List implements ESP.
func (d *DirESP) List(dir string) ([]string, error) {
	n, err := cleanName(dir)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(n)
	if err != nil {
		return nil, fmt.Errorf("list ESP %s: %w", n, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list ESP %s: %w", n, err)
	}
	return names, nil
}

// ReadFile implements ESP.
func (d *DirESP) ReadFile(name string) ([]byte, error) {
	n, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(n)
	if err != nil {
		return nil, fmt.Errorf("read ESP %s: %w", n, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read ESP %s: %w", n, err)
	}
	return b, nil
}

// WriteFile implements ESP.
func (d *DirESP) WriteFile(name string, r io.Reader) (n int64, err error) {
	name, err = cleanName(name)
	if err != nil {
		return 0, err
	}
	dir := path.Dir(name)
	if err := d.root.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("write ESP %s: %w", name, err)
	}
	tmp := name + ".tmp"
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("write ESP %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.root.Remove(tmp)
		}
	}()
	n, err = io.CopyBuffer(struct{ io.Writer }{f}, r, make([]byte, writeBuffer)) // not f.ReadFrom: its buffer is small
	if err != nil {
		return n, fmt.Errorf("write ESP %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return n, fmt.Errorf("write ESP %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return n, fmt.Errorf("write ESP %s: %w", name, err)
	}
	if err = d.root.Rename(tmp, name); err != nil {
		return n, fmt.Errorf("write ESP %s: %w", name, err)
	}
	d.dirty[dir] = true
	return n, nil
}

// Rename implements ESP.
func (d *DirESP) Rename(from, to string) error {
	f, err := cleanName(from)
	if err != nil {
		return err
	}
	t, err := cleanName(to)
	if err != nil {
		return err
	}
	if path.Dir(f) != path.Dir(t) {
		return fmt.Errorf("rename ESP %s to %s: not in the same directory", f, t)
	}
	if err := d.root.Rename(f, t); err != nil {
		return fmt.Errorf("rename ESP %s: %w", f, err)
	}
	d.dirty[path.Dir(f)] = true
	return nil
}

// Remove implements ESP.
func (d *DirESP) Remove(name string) error {
	n, err := cleanName(name)
	if err != nil {
		return err
	}
	if err := d.root.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove ESP %s: %w", n, err)
	}
	d.dirty[path.Dir(n)] = true
	return nil
}

// Sync implements ESP: it fsyncs the directories changed so far.
func (d *DirESP) Sync() error {
	var errs []error
	for dir := range d.dirty {
		f, err := d.root.Open(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
			errs = append(errs, err)
		}
		f.Close()
		delete(d.dirty, dir)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync ESP: %w", err)
	}
	return nil
}

// Close implements ESP.
func (d *DirESP) Close() error {
	err := d.Sync()
	if cerr := d.root.Close(); err == nil {
		err = cerr
	}
	if d.unmount != nil {
		if uerr := d.unmount(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}
	return err
}
