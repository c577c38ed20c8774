package agent_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/storage"
)

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

// tamper changes (or truncates) the bundle payload whose file name ends in suffix.
func tamper(t *testing.T, bundle, suffix string, truncate bool) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(bundle, "targets", "amd64", "*."+suffix))
	if len(files) != 1 {
		t.Fatalf("payload %s: %v", suffix, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if truncate {
		b = b[:len(b)/2]
	} else {
		b[len(b)-100] ^= 0x40 // late in the file: found only after most of it streamed
	}
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// tamperMeta changes a payload's length in the signed targets metadata (keeping the
// signature, which then no longer matches).
func tamperMeta(t *testing.T, bundle string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(bundle, "metadata", "*.targets.json"))
	if len(files) != 1 {
		t.Fatalf("targets metadata: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	s := regexp.MustCompile(`"version": ?"2\.0\.0"`).ReplaceAllString(string(b), `"version":"2.0.1"`)
	if s == string(b) {
		t.Fatal("nothing to tamper in the targets metadata")
	}
	os.WriteFile(files[0], []byte(s), 0o644)
	return bundle
}

// cancelAfter cancels the context once the fetch-th fetch of file has given after bytes.
type cancelAfter struct {
	release.Fetcher
	file    string
	fetch   int
	after   int64
	cancel  func()
	mu      sync.Mutex
	fetches int
	read    int64
}

func (c *cancelAfter) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := c.Fetcher.Fetch(ctx, name)
	if err != nil || !strings.HasSuffix(name, c.file) {
		return rc, err
	}
	c.mu.Lock()
	c.fetches++
	n := c.fetches
	c.mu.Unlock()
	if n != c.fetch {
		return rc, nil
	}
	return &countingReader{ReadCloser: rc, c: c}, nil
}

type countingReader struct {
	io.ReadCloser
	c *cancelAfter
}

func (r *countingReader) Read(p []byte) (int, error) {
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := r.ReadCloser.Read(p)
	r.c.read += int64(n)
	if r.c.read >= r.c.after {
		r.c.cancel()
	}
	return n, err
}

// tarBundle writes the bundle signed into dir as a tar file and opens it.
func tarBundle(t *testing.T, b *box, dir string) *os.File {
	t.Helper()
	name := filepath.Join(t.TempDir(), "bundle.tar")
	if err := b.bundles[dir].WriteTarFile(name); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// onlyReader hides Seek.
type onlyReader struct{ io.Reader }

// killedInstall stores an attempt record as a process killed mid-install leaves it.
func killedInstall(t *testing.T, db *storage.DB, at agent.Attempt) {
	t.Helper()
	tbl := storage.NewTable[agent.Attempt](db, agent.Subsystem, "attempts")
	if at.ID == 0 {
		n, _ := tbl.Len()
		at.ID = uint64(n + 1000)
	}
	if err := tbl.Put(fmt.Sprintf("%020d", at.ID), at); err != nil {
		t.Fatal(err)
	}
}
