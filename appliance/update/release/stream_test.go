package release_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
)

// countingSource counts the bytes read from the payloads it serves and can fail after a
// number of bytes.
type countingSource struct {
	release.Fetcher
	read     int64
	failAt   int64 // 0: never
	oneBytes bool
}

func (c *countingSource) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := c.Fetcher.Fetch(ctx, name)
	if err != nil || !strings.HasPrefix(name, release.TargetsDir+"/") {
		return rc, err
	}
	var r io.Reader = rc
	if c.oneBytes {
		r = iotest.OneByteReader(r)
	}
	return struct {
		io.Reader
		io.Closer
	}{&countReader{c: c, r: r}, rc}, nil
}

type countReader struct {
	c *countingSource
	r io.Reader
}

func (r *countReader) Read(p []byte) (int, error) {
	if r.c.failAt > 0 && r.c.read >= r.c.failAt {
		return 0, errors.New("disk unplugged")
	}
	n, err := r.r.Read(p)
	r.c.read += int64(n)
	return n, err
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPayloadStreaming: the reader hands out bytes while it hashes; a mismatch only ever shows
// as an error at the end (or at the first surplus byte), never as io.EOF.
func TestPayloadStreaming(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	sys := randomBytes(t, 1<<20+123)
	b := f.sign("", publish.SignOptions{}, rel{counter: 1, system: sys})
	sysFile := payloadPath(t, b, "system.squashfs")

	cases := []struct {
		name      string
		content   []byte // of the system payload file
		failAt    int64
		want      release.Reason
		delivered int
	}{
		{"intact", sys, 0, 0, len(sys)},
		{"last byte altered", append(append([]byte(nil), sys[:len(sys)-1]...), sys[len(sys)-1]^0x80), 0, release.ReasonPayloadMismatch, len(sys)},
		{"first byte altered", append([]byte{sys[0] ^ 1}, sys[1:]...), 0, release.ReasonPayloadMismatch, len(sys)},
		{"truncated by one byte", sys[:len(sys)-1], 0, release.ReasonPayloadMismatch, len(sys) - 1},
		{"empty", []byte{}, 0, release.ReasonPayloadMismatch, 0},
		{"one byte too long", append(append([]byte(nil), sys...), 0), 0, release.ReasonPayloadMismatch, len(sys)},
		{"a megabyte too long", append(append([]byte(nil), sys...), make([]byte, 1<<20)...), 0, release.ReasonPayloadMismatch, len(sys)},
		{"source fails midway", sys, 4096, release.ReasonUnavailable, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			writeFile(t, sysFile, c.content)
			src := &countingSource{Fetcher: dirSource(t, b.Dir), failAt: c.failAt}
			bx := f.box(release.Config{})
			r, err := bx.v.Update(context.Background(), src, release.Installed{})
			if err != nil {
				t.Fatal(err)
			}
			src.read = 0
			pr, err := r.Open(context.Background(), release.KindSystem)
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			// Read in small steps: data arrives before the verdict.
			var got bytes.Buffer
			buf := make([]byte, 64<<10)
			var rerr error
			for rerr == nil {
				var n int
				n, rerr = pr.Read(buf)
				got.Write(buf[:n])
				if rerr == nil && pr.Verified() {
					t.Fatal("verified before the end")
				}
			}
			if c.want == 0 {
				if rerr != io.EOF || !pr.Verified() || !bytes.Equal(got.Bytes(), sys) {
					t.Fatalf("intact payload: err %v verified %v", rerr, pr.Verified())
				}
				return
			}
			wantReason(t, rerr, c.want)
			if pr.Verified() {
				t.Fatal("verified after an error")
			}
			if c.delivered >= 0 && got.Len() != c.delivered {
				t.Fatalf("delivered %d bytes, want %d", got.Len(), c.delivered)
			}
			if src.read > int64(len(sys))+1 {
				t.Fatalf("read %d bytes from the source for a %d-byte payload", src.read, len(sys))
			}
			// The error sticks.
			if _, err := pr.Read(buf); release.ReasonOf(err) != c.want {
				t.Fatalf("second read: %v", err)
			}
			t.Log(rerr)
		})
	}
	writeFile(t, sysFile, sys)

	t.Run("io.Copy", func(t *testing.T) {
		bx := f.box(release.Config{})
		r, err := bx.update(t, b.Dir)
		if err != nil {
			t.Fatal(err)
		}
		altered := append([]byte(nil), sys...)
		altered[len(altered)/2] ^= 1
		writeFile(t, sysFile, altered)
		defer writeFile(t, sysFile, sys)
		pr, _ := r.Open(context.Background(), release.KindSystem)
		n, err := io.Copy(io.Discard, pr)
		wantReason(t, err, release.ReasonPayloadMismatch)
		if n != int64(len(sys)) {
			t.Fatalf("copied %d", n)
		}
	})
	t.Run("one byte at a time", func(t *testing.T) {
		src := &countingSource{Fetcher: dirSource(t, b.Dir), oneBytes: true}
		r, err := f.box(release.Config{}).v.Update(context.Background(), src, release.Installed{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := install(r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		r, err := f.box(release.Config{}).update(t, b.Dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Open(context.Background(), "firmware")
		wantReason(t, err, release.ReasonPayloadUnknown)
	})
	t.Run("payload file missing", func(t *testing.T) {
		r, err := f.box(release.Config{}).update(t, b.Dir)
		if err != nil {
			t.Fatal(err)
		}
		os.Rename(sysFile, sysFile+".x")
		defer os.Rename(sysFile+".x", sysFile)
		_, err = r.Open(context.Background(), release.KindSystem)
		wantReason(t, err, release.ReasonPayloadUnknown)
	})
	t.Run("cancelled", func(t *testing.T) {
		r, err := f.box(release.Config{}).update(t, b.Dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		pr, err := r.Open(ctx, release.KindSystem)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.Copy(io.Discard, pr); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

func tarBytes(t testing.TB, b *publish.Bundle) []byte {
	var buf bytes.Buffer
	if err := b.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type onlyReader struct{ io.Reader }

func TestTarBundle(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	b := f.sign("", publish.SignOptions{}, rel{counter: 1}, rel{counter: 1, arch: "arm64"})
	tb := tarBytes(t, b)
	if again := tarBytes(t, b); !bytes.Equal(tb, again) {
		t.Fatal("tar not deterministic")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, seek := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(tb)
			if !seek {
				r = onlyReader{r}
			}
			bx := f.box(release.Config{Arch: arch})
			rel, err := bx.v.Update(context.Background(), release.NewTar(r), release.Installed{})
			if err != nil {
				t.Fatalf("%s seek=%v: %v", arch, seek, err)
			}
			got, err := install(rel)
			if err != nil {
				t.Fatalf("%s seek=%v: %v", arch, seek, err)
			}
			if !bytes.Equal(got[release.KindKernel], payload(release.KindKernel, 1)) {
				t.Fatal("kernel differs")
			}
		}
	}
	t.Run("out of order", func(t *testing.T) {
		for _, seek := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(tb)
			if !seek {
				r = onlyReader{r}
			}
			rel, err := f.box(release.Config{}).v.Update(context.Background(), release.NewTar(r), release.Installed{})
			if err != nil {
				t.Fatal(err)
			}
			sys, err := rel.Open(context.Background(), release.KindSystem)
			if err != nil {
				t.Fatal(err)
			}
			k, err := rel.Open(context.Background(), release.KindKernel)
			if !seek {
				wantReason(t, err, release.ReasonPayloadUnknown)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, k); err != nil {
				t.Fatal(err)
			}
			// The system reader was superseded.
			if _, err := io.Copy(io.Discard, sys); err == nil {
				t.Fatal("superseded reader still reads")
			}
		}
	})
	t.Run("damaged", func(t *testing.T) {
		cases := map[string][]byte{
			"truncated in metadata": tb[:2000],
			"garbage":               bytes.Repeat([]byte{0xAB}, 4096),
			"empty":                 nil,
			"path escape":           handTar(t, "../metadata/timestamp.json", tar.TypeReg, []byte("x")),
			"symlink":               handTar(t, "metadata/timestamp.json", tar.TypeSymlink, nil),
			"huge metadata":         handTar(t, "metadata/timestamp.json", tar.TypeReg, make([]byte, 2<<20)),
		}
		for name, data := range cases {
			_, err := f.box(release.Config{}).v.Update(context.Background(), release.NewTar(bytes.NewReader(data)), release.Installed{})
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			if r := release.ReasonOf(err); r != release.ReasonMalformed && r != release.ReasonPayloadUnknown {
				t.Fatalf("%s: %v", name, err)
			}
		}
		// A tar cut inside the (last) system payload verifies its metadata, then fails the payload.
		rel, err := f.box(release.Config{Arch: "arm64"}).v.Update(context.Background(), release.NewTar(bytes.NewReader(tb[:len(tb)-2048])), release.Installed{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = install(rel)
		if r := release.ReasonOf(err); r != release.ReasonMalformed && r != release.ReasonPayloadMismatch {
			t.Fatalf("cut tar: %v", err)
		}
	})
}

func handTar(t testing.TB, name string, typ byte, data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Typeflag: typ, Size: int64(len(data)), Mode: 0o644, Linkname: "x"}
	if typ != tar.TypeReg {
		hdr.Size = 0
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}

func TestHTTPSource(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	b := f.sign("", publish.SignOptions{}, rel{counter: 1})
	fail := map[string]int{}
	var gotNoCache bool
	srv := httptest.NewServer(http.StripPrefix("/stable/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == release.TimestampFile && r.Header.Get("Cache-Control") == "no-cache" {
			gotNoCache = true
		}
		for suffix, code := range fail {
			if strings.HasSuffix(r.URL.Path, suffix) {
				w.WriteHeader(code)
				return
			}
		}
		http.FileServer(http.Dir(b.Dir)).ServeHTTP(w, r)
	})))
	defer srv.Close()
	src, err := release.NewHTTP(srv.URL+"/stable", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.box(release.Config{}).v.Update(context.Background(), src, release.Installed{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := install(r); err != nil {
		t.Fatal(err)
	}
	if !gotNoCache {
		t.Fatal("timestamp fetched without Cache-Control: no-cache")
	}
	fail[".vmlinuz"] = http.StatusNotFound
	_, err = install(r)
	wantReason(t, err, release.ReasonPayloadUnknown)
	fail[".vmlinuz"] = http.StatusServiceUnavailable
	_, err = install(r)
	wantReason(t, err, release.ReasonUnavailable)
	fail["timestamp.json"] = http.StatusBadGateway
	_, err = f.box(release.Config{}).v.Update(context.Background(), src, release.Installed{})
	wantReason(t, err, release.ReasonUnavailable)
	if _, err := release.NewHTTP("file:///etc", nil); err == nil {
		t.Fatal("file URL accepted")
	}
}

func TestDirSourceStaysInside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("x"), 0o644)
	d, err := release.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"../secret", "/etc/passwd", "metadata/../../secret"} {
		if rc, err := d.Fetch(context.Background(), name); err == nil {
			rc.Close()
			t.Fatalf("%s: opened", name)
		}
	}
}
