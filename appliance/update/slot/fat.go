package slot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// FATESP edits a FAT32 ESP in place with go-diskfs, without mounting it: a disk image file in
// tests and host tools, or the raw ESP device when the kernel cannot mount vfat.
//
// go-diskfs does not free a file's clusters when it removes the file or renames another over
// it; this type truncates a file before removing it, which frees all but its first cluster,
// and removes the target of a rename first. One cluster per replaced file stays allocated
// until fsck.vfat reclaims it — a few KiB per update, not the file sizes.
type FATESP struct {
	b        backend.Storage
	fs       *fat32.FileSystem
	readOnly bool
}

// OpenFAT opens the FAT32 filesystem of p (a device, or a region of a disk image).
func OpenFAT(p Partition, write bool) (*FATESP, error) {
	b, err := file.OpenFromPath(p.Path, !write)
	if err != nil {
		return nil, fmt.Errorf("open ESP %s: %w", p, err)
	}
	size := p.Size
	if size <= 0 {
		f, err := b.Sys()
		if err == nil {
			size, err = f.Seek(0, io.SeekEnd)
		}
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("open ESP %s: size: %w", p, err)
		}
		size -= p.Offset
	}
	fsys, err := fat32.Read(b, size, p.Offset, 512)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open ESP %s: %w", p, err)
	}
	return &FATESP{b: b, fs: fsys, readOnly: !write}, nil
}

// abs is the go-diskfs form of an ESP name.
func fatName(name string) (string, error) {
	n, err := cleanName(name)
	if err != nil {
		return "", err
	}
	return "/" + n, nil
}

func (e *FATESP) exists(name string) bool {
	dir, base := path.Split(name)
	names, err := e.List(dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.EqualFold(n, base) {
			return true
		}
	}
	return false
}

// List implements ESP.
func (e *FATESP) List(dir string) ([]string, error) {
	n, err := cleanName(dir)
	if err != nil && strings.Trim(dir, "/") != "" {
		return nil, err
	}
	if err != nil {
		n = "."
	}
	// go-diskfs's ReadDir takes names without the leading slash.
	entries, err := e.fs.ReadDir(n)
	if err != nil {
		return nil, fmt.Errorf("list ESP %s: %w: %v", n, fs.ErrNotExist, err)
	}
	names := make([]string, 0, len(entries))
	for _, de := range entries {
		if de.Name() == "." || de.Name() == ".." {
			continue
		}
		names = append(names, de.Name())
	}
	return names, nil
}

// ReadFile implements ESP.
func (e *FATESP) ReadFile(name string) ([]byte, error) {
	n, err := fatName(name)
	if err != nil {
		return nil, err
	}
	if !e.exists(n) {
		return nil, fmt.Errorf("read ESP %s: %w", n, fs.ErrNotExist)
	}
	f, err := e.fs.OpenFile(n, os.O_RDONLY)
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
func (e *FATESP) WriteFile(name string, r io.Reader) (n int64, err error) {
	if e.readOnly {
		return 0, fmt.Errorf("write ESP %s: opened read-only", name)
	}
	name, err = fatName(name)
	if err != nil {
		return 0, err
	}
	if err := e.fs.Mkdir(path.Dir(name)); err != nil {
		return 0, fmt.Errorf("write ESP %s: mkdir: %w", name, err)
	}
	tmp := name + ".tmp"
	if err := e.remove(tmp); err != nil {
		return 0, fmt.Errorf("write ESP %s: %w", name, err)
	}
	f, err := e.fs.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("write ESP %s: %w", name, err)
	}
	// go-diskfs rewrites the FAT on every Write: write in large chunks.
	buf := make([]byte, writeBuffer)
	for {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			if _, werr := f.Write(buf[:k]); werr != nil {
				f.Close()
				e.remove(tmp)
				return n, fmt.Errorf("write ESP %s: %w", name, werr)
			}
			n += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			f.Close()
			e.remove(tmp)
			return n, fmt.Errorf("write ESP %s: %w", name, rerr)
		}
	}
	f.Close()
	if err := e.Sync(); err != nil {
		return n, err
	}
	if err := e.Rename(tmp, name); err != nil {
		return n, fmt.Errorf("write ESP %s: %w", name, err)
	}
	return n, nil
}

// Rename implements ESP.
func (e *FATESP) Rename(from, to string) error {
	if e.readOnly {
		return fmt.Errorf("rename ESP %s: opened read-only", from)
	}
	f, err := fatName(from)
	if err != nil {
		return err
	}
	t, err := fatName(to)
	if err != nil {
		return err
	}
	if path.Dir(f) != path.Dir(t) {
		return fmt.Errorf("rename ESP %s to %s: not in the same directory", f, t)
	}
	if !e.exists(f) {
		return fmt.Errorf("rename ESP %s: %w", f, fs.ErrNotExist)
	}
	if !strings.EqualFold(f, t) {
		if err := e.remove(t); err != nil {
			return fmt.Errorf("rename ESP %s: %w", f, err)
		}
	}
	if err := e.fs.Rename(f, t); err != nil {
		return fmt.Errorf("rename ESP %s: %w", f, err)
	}
	return nil
}

// Remove implements ESP.
func (e *FATESP) Remove(name string) error {
	if e.readOnly {
		return fmt.Errorf("remove ESP %s: opened read-only", name)
	}
	n, err := fatName(name)
	if err != nil {
		return err
	}
	if err := e.remove(n); err != nil {
		return fmt.Errorf("remove ESP %s: %w", n, err)
	}
	return nil
}

// remove truncates (freeing the clusters but the first) and removes name if it exists.
func (e *FATESP) remove(name string) error {
	if !e.exists(name) {
		return nil
	}
	f, err := e.fs.OpenFile(name, os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	f.Close()
	return e.fs.Remove(name)
}

// Sync implements ESP.
func (e *FATESP) Sync() error {
	if e.readOnly {
		return nil
	}
	f, err := e.b.Sys()
	if err != nil {
		return fmt.Errorf("sync ESP: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync ESP: %w", err)
	}
	return nil
}

// Close implements ESP.
func (e *FATESP) Close() error {
	err := e.Sync()
	if cerr := e.b.Close(); cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
