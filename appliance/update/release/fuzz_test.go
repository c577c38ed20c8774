package release_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
)

// mapSource is a bundle in memory.
type mapSource map[string][]byte

func (m mapSource) Fetch(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func loadBundle(t testing.TB, b *publish.Bundle) mapSource {
	m := mapSource{}
	for _, name := range b.Files {
		data, err := os.ReadFile(filepath.Join(b.Dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		m[name] = data
	}
	return m
}

func fuzzBox(t testing.TB, st release.State) *release.Verifier {
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: "amd64",
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzTarBundle feeds arbitrary bytes to the tar bundle reader and the verifier: nothing may
// panic or hang, and whatever installs must be the signed release.
func FuzzTarBundle(f *testing.F) {
	fx := newFixture(f, publish.KeygenOptions{})
	b := fx.sign("", publish.SignOptions{}, rel{counter: 1})
	tb := tarBytes(f, b)
	f.Add(tb)
	f.Add(tb[:1536])
	f.Add(tb[:len(tb)/2])
	f.Add(handTar(f, "metadata/timestamp.json", tar.TypeFifo, nil))
	f.Add([]byte{})
	want := payload(release.KindKernel, 1)
	st := fx.state()
	f.Fuzz(func(t *testing.T, data []byte) {
		v := fuzzBox(t, st)
		r, err := v.Update(context.Background(), release.NewTar(bytes.NewReader(data)), release.Installed{})
		if err != nil {
			if release.ReasonOf(err) == 0 {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		got, err := install(r)
		if err != nil {
			if release.ReasonOf(err) == 0 {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !bytes.Equal(got[release.KindKernel], want) {
			t.Fatal("installed a kernel that was not signed")
		}
	})
}

// FuzzTarReader fetches names from an arbitrary tar stream in arbitrary order.
func FuzzTarReader(f *testing.F) {
	fx := newFixture(f, publish.KeygenOptions{})
	b := fx.sign("", publish.SignOptions{}, rel{counter: 1})
	f.Add(tarBytes(f, b), uint8(0))
	f.Add(tarBytes(f, b), uint8(0xff))
	f.Fuzz(func(t *testing.T, data []byte, order uint8) {
		tr := release.NewTar(bytes.NewReader(data))
		names := append([]string{"metadata/timestamp.json", "metadata/1.root.json"}, b.Files...)
		for i := range names {
			n := names[(i+int(order))%len(names)]
			rc, err := tr.Fetch(context.Background(), n)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, io.LimitReader(rc, 4<<20))
			rc.Close()
		}
	})
}

// FuzzMetadata replaces one metadata file of a valid bundle by arbitrary bytes.
func FuzzMetadata(f *testing.F) {
	fx := newFixture(f, publish.KeygenOptions{})
	b := fx.sign("", publish.SignOptions{}, rel{counter: 1})
	src := loadBundle(f, b)
	st := fx.state()
	var meta []string
	for _, n := range b.Files {
		if bytes.HasPrefix([]byte(n), []byte(release.MetadataDir+"/")) {
			meta = append(meta, n)
		}
	}
	for i, n := range meta {
		f.Add(uint8(i), src[n])
		f.Add(uint8(i), []byte(`{"signed":{"_type":"timestamp"},"signatures":[]}`))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := mapSource{}
		for k, v := range src {
			m[k] = v
		}
		name := meta[int(which)%len(meta)]
		m[name] = data
		r, err := fuzzBox(t, st).Update(context.Background(), m, release.Installed{})
		if err != nil {
			if release.ReasonOf(err) == 0 {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if r.Counter != 1 {
			t.Fatalf("accepted counter %d", r.Counter)
		}
	})
}
