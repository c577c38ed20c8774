package release

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Limits of a tar bundle's metadata, which Tar keeps in memory.
const (
	maxTarMetaFile  = 1 << 20 // one metadata file
	maxTarMetaTotal = 8 << 20 // all of them
	maxTarMetaFiles = 1024
)

// Tar reads a bundle from a single tar file (see WriteTar in the host package: metadata first,
// then the payloads in bundle order) in one forward pass, so that an upload through the page or
// a file on a USB stick can be verified and streamed into the inactive slot without a temporary
// copy. The metadata entries at the start are read into memory at the first Fetch; payloads
// must then be fetched in bundle order (Release.Payloads is in that order). Fetching a payload
// that lies behind the current position works only if r is an io.Seeker (the tar is read again
// from the start); otherwise it reports fs.ErrNotExist. Fetching a payload ends the reader of
// the previous one.
//
// A Tar is not safe for concurrent use.
type Tar struct {
	r      io.Reader
	tr     *tar.Reader
	loaded bool
	meta   map[string][]byte
	next   *tar.Header // the entry at the current position, not yet handed out; nil at the end
	in     bool        // the position is inside an entry that was handed out
	cur    *tarEntry
	err    error // sticky: the archive is damaged
}

// NewTar returns a Fetcher reading the tar bundle from r.
func NewTar(r io.Reader) *Tar {
	return &Tar{r: r, tr: tar.NewReader(r)}
}

func tarName(raw string) (string, bool) {
	n := strings.TrimPrefix(raw, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || !fs.ValidPath(n) || path.Clean(n) != n {
		return "", false
	}
	return n, true
}

func (t *Tar) malformed(format string, args ...any) error {
	t.err = refuse(ReasonMalformed, "tar bundle", format, args...)
	return t.err
}

// advance reads the next file entry header into t.next (nil at the end of the archive),
// skipping directories.
func (t *Tar) advance() error {
	for {
		hdr, err := t.tr.Next()
		if err == io.EOF {
			t.next = nil
			return nil
		}
		if err != nil {
			return t.malformed("%v", err)
		}
		name, ok := tarName(hdr.Name)
		if !ok {
			return t.malformed("bad entry name %q", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return t.malformed("entry %s: unsupported type %q", name, hdr.Typeflag)
		}
		if hdr.Size < 0 {
			return t.malformed("entry %s: negative size", name)
		}
		for k := range hdr.PAXRecords {
			// A sparse entry expands holes into zeros that are not in the archive.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return t.malformed("entry %s: sparse files are not allowed", name)
			}
		}
		hdr.Name = name
		t.next = hdr
		return nil
	}
}

func (t *Tar) load() error {
	t.loaded = true
	t.meta = map[string][]byte{}
	var total int64
	for {
		if err := t.advance(); err != nil {
			return err
		}
		h := t.next
		if h == nil || !strings.HasPrefix(h.Name, MetadataDir+"/") {
			return nil
		}
		t.next = nil
		if _, dup := t.meta[h.Name]; dup {
			return t.malformed("duplicate entry %s", h.Name)
		}
		total += h.Size
		if h.Size > maxTarMetaFile || total > maxTarMetaTotal || len(t.meta) >= maxTarMetaFiles {
			return t.malformed("metadata too large at %s", h.Name)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(t.tr, b); err != nil {
			return t.malformed("entry %s: %v", h.Name, err)
		}
		t.meta[h.Name] = b
	}
}

// rewind starts reading the archive again from the beginning, if r can seek.
func (t *Tar) rewind() (bool, error) {
	s, ok := t.r.(io.Seeker)
	if !ok {
		return false, nil
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return false, nil // a pipe: *os.File, but it cannot seek
	}
	t.tr = tar.NewReader(t.r)
	t.in = false
	return true, t.advance()
}

// Fetch returns the entry name. See Tar for the order in which entries can be fetched.
func (t *Tar) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.err != nil {
		return nil, t.err
	}
	if !t.loaded {
		if err := t.load(); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(name, MetadataDir+"/") {
		b, ok := t.meta[name]
		if !ok {
			return nil, fmt.Errorf("tar bundle: %s: %w", name, fs.ErrNotExist)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	if t.cur != nil {
		t.cur.done = true
		t.cur = nil
	}
	if t.in {
		t.in = false
		if err := t.advance(); err != nil {
			return nil, err
		}
	}
	rewound := false
	for {
		if t.next == nil {
			if rewound {
				return nil, fmt.Errorf("tar bundle: %s: %w", name, fs.ErrNotExist)
			}
			ok, err := t.rewind()
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("tar bundle: %s (not in the bundle, or asked for out of bundle order): %w", name, fs.ErrNotExist)
			}
			rewound = true
			continue
		}
		if t.next.Name == name {
			e := &tarEntry{t: t}
			t.next = nil
			t.in = true
			t.cur = e
			return e, nil
		}
		if err := t.advance(); err != nil {
			return nil, err
		}
	}
}

type tarEntry struct {
	t    *Tar
	done bool
}

var errSuperseded = errors.New("tar bundle: entry reader used after the next entry was fetched")

func (e *tarEntry) Read(p []byte) (int, error) {
	if e.done {
		return 0, errSuperseded
	}
	n, err := e.t.tr.Read(p)
	if err != nil && err != io.EOF {
		return n, e.t.malformed("%v", err)
	}
	return n, err
}

// Close ends the reader; the next Fetch skips what is left of the entry.
func (e *tarEntry) Close() error {
	e.done = true
	if e.t.cur == e {
		e.t.cur = nil
	}
	return nil
}
