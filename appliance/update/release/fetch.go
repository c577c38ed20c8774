package release

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// A Fetcher reads the files of a bundle by their bundle path ("metadata/timestamp.json",
// "targets/amd64/<sum>.vmlinuz", see the layout at MetadataDir). A file that is not there is
// reported with an error wrapping fs.ErrNotExist; any other error means the source could not
// be read. Fetch need not limit sizes or check contents: the verifier limits every read to the
// signed or a fixed maximum length and checks everything it reads.
//
// The verifier fetches sequentially: it closes a reader before it fetches the next file.
type Fetcher interface {
	Fetch(ctx context.Context, name string) (io.ReadCloser, error)
}

// HTTP fetches a bundle published under a base URL (a fleet server, a CDN, any static file
// server).
type HTTP struct {
	base   *url.URL
	client *http.Client
}

// NewHTTP returns a Fetcher for the bundle at base ("https://updates.example/stable/").
// client nil means http.DefaultClient; the context of each Fetch bounds the request.
func NewHTTP(base string, client *http.Client) (*HTTP, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("release source %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("release source %q: not an http(s) URL", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTP{base: u, client: client}, nil
}

// Fetch GETs base/name. 404 and 410 are fs.ErrNotExist.
func (h *HTTP) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("fetch %q: invalid name", name)
	}
	u := h.base.JoinPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	if name == TimestampFile {
		// The one file whose content changes under the same name: ask caches to revalidate.
		req.Header.Set("Cache-Control", "no-cache")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusNotFound, http.StatusGone:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %s: %w", name, resp.Status, fs.ErrNotExist)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %s", name, resp.Status)
	}
}

// Dir reads a bundle from a directory (an unpacked bundle, a mounted USB stick). Names cannot
// escape the directory (os.Root).
type Dir struct {
	root *os.Root
}

// OpenDir opens the bundle directory dir. Close releases it.
func OpenDir(dir string) (*Dir, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("release source: %w", err)
	}
	return &Dir{root: r}, nil
}

// Fetch opens the file name below the directory.
func (d *Dir) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("fetch %q: invalid name", name)
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("fetch %s: not a regular file: %w", name, fs.ErrNotExist)
	}
	return f, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }
