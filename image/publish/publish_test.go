package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func input(counter uint64, manifestCounter uint64) publish.Release {
	m, _ := json.Marshal(release.Manifest{Version: "1.0", Counter: manifestCounter, Arch: "amd64"})
	return publish.Release{Arch: "amd64", Version: "1.0", Counter: counter, Payloads: map[release.Kind]io.Reader{
		release.KindRelease: bytes.NewReader(m),
		release.KindKernel:  strings.NewReader("k"),
		release.KindInitrd:  strings.NewReader("i"),
		release.KindSystem:  strings.NewReader("s"),
	}}
}

func TestSignRefuses(t *testing.T) {
	dir := t.TempDir()
	r, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{}); err == nil {
		t.Fatal("keygen over an existing root chain")
	}
	out := filepath.Join(dir, "bundle")
	o := publish.SignOptions{Now: t0}
	bad := []struct {
		name string
		rel  publish.Release
	}{
		{"manifest of another release", input(2, 3)},
		{"no counter", input(0, 0)},
		{"missing kernel", func() publish.Release { r := input(1, 1); delete(r.Payloads, release.KindKernel); return r }()},
		{"unknown kind", func() publish.Release { r := input(1, 1); r.Payloads["dtb"] = strings.NewReader("x"); return r }()},
		{"empty payload", func() publish.Release {
			r := input(1, 1)
			r.Payloads[release.KindSystem] = strings.NewReader("")
			return r
		}()},
		{"min-from above counter", func() publish.Release { r := input(1, 1); r.MinFrom = 2; return r }()},
	}
	for _, c := range bad {
		if _, err := r.Sign(out, []publish.Release{c.rel}, o); err == nil {
			t.Fatalf("%s: signed", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if _, err := r.Sign(out, []publish.Release{input(1, 1), input(1, 1)}, o); err == nil {
		t.Fatal("two releases for one architecture signed")
	}
	b, err := r.Sign(out, []publish.Release{input(1, 1)}, o)
	if err != nil {
		t.Fatal(err)
	}
	if b.Timestamp != 1 || b.Targets != 1 || len(b.Files) != 8 || b.MetadataBytes == 0 || b.PayloadBytes == 0 {
		t.Fatalf("bundle %+v", b)
	}
	if _, err := r.Sign(out, []publish.Release{input(1, 1)}, publish.SignOptions{Now: t0.Add(-time.Hour)}); err == nil {
		t.Fatal("signed with a clock behind the last signing time")
	}
	// Reopened, the directory continues the versions.
	r2, err := publish.Open(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := r2.Sign(out, []publish.Release{input(1, 1)}, publish.SignOptions{Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Timestamp != 2 || b2.Snapshot != 2 || b2.Targets != 2 {
		t.Fatalf("versions after reopen %+v", b2)
	}
	// Without the targets key, signing fails and says why.
	root, _ := metadata.Root().FromBytes(r2.Root())
	os.Remove(filepath.Join(dir, "keys", "keys", root.Signed.Roles[metadata.TARGETS].KeyIDs[0]+".key"))
	r3, _ := publish.Open(filepath.Join(dir, "keys"))
	if _, err := r3.Sign(out, []publish.Release{input(1, 1)}, publish.SignOptions{Now: t0.Add(time.Hour)}); err == nil || !strings.Contains(err.Error(), "targets role needs 1 signatures") {
		t.Fatalf("signed without the targets key: %v", err)
	}
}

func TestRotateNeedsOldRootKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r, err := publish.Keygen(dir, publish.KeygenOptions{Now: t0, Root: publish.RoleKeys{Keys: 3, Threshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := metadata.Root().FromBytes(r.Root())
	ids := root.Signed.Roles[metadata.ROOT].KeyIDs
	// Move two of the three root keys away (as they would be, offline).
	for _, id := range ids[:2] {
		os.Rename(filepath.Join(dir, "keys", id+".key"), filepath.Join(dir, id+".offline"))
	}
	r, _ = publish.Open(dir)
	if err := r.Rotate(publish.RotateOptions{Now: t0, Roles: map[string]publish.RoleKeys{metadata.TIMESTAMP: {}}}); err == nil {
		t.Fatal("rotated with one of three root keys (threshold 2)")
	}
	os.Rename(filepath.Join(dir, ids[0]+".offline"), filepath.Join(dir, "keys", ids[0]+".key"))
	r, _ = publish.Open(dir)
	if err := r.Rotate(publish.RotateOptions{Now: t0, Roles: map[string]publish.RoleKeys{metadata.TIMESTAMP: {Keys: 2, Threshold: 2}}}); err != nil {
		t.Fatal(err)
	}
	if r.RootVersion() != 2 {
		t.Fatalf("root version %d", r.RootVersion())
	}
	// Root 2 verifies with root 1, as a box holding root 1 checks it.
	st, err := release.NewState(mustRead(t, filepath.Join(dir, "roots", "1.root.json")))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	if _, err := r.Sign(out, []publish.Release{input(1, 1)}, publish.SignOptions{Now: t0}); err != nil {
		t.Fatal(err)
	}
	v, _ := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: "amd64", Now: func() time.Time { return t0 }})
	d, _ := release.OpenDir(out)
	defer d.Close()
	rel, err := v.Update(context.Background(), d, release.Installed{})
	if err != nil {
		t.Fatal(err)
	}
	if rel.RootVersion != 2 {
		t.Fatalf("root version %d", rel.RootVersion)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
