package release_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// t0 is when the test releases are signed; boxes check them an hour later unless a test says
// otherwise.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t    testing.TB
	keys string // signing directory
	repo *publish.Repo
}

func newFixture(t testing.TB, o publish.KeygenOptions) *fixture {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = t0.Add(-24 * time.Hour)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	repo, err := publish.Keygen(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, keys: dir, repo: repo}
}

// rel describes a test release; payload contents derive from the counter.
type rel struct {
	counter, minFrom uint64
	arch             string
	system           []byte // the system payload; default a few bytes
}

func version(counter uint64) string { return fmt.Sprintf("1.%d.0", counter) }

func manifest(arch string, counter uint64) []byte {
	b, _ := json.Marshal(map[string]any{"version": version(counter), "counter": counter, "arch": arch, "epoch": t0.Unix(), "kernel_release": "6.1.0-test"})
	return b
}

func payload(k release.Kind, counter uint64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%s of release %d\n", k, counter)), 100)
}

func (r rel) input() publish.Release {
	if r.arch == "" {
		r.arch = "amd64"
	}
	sys := r.system
	if sys == nil {
		sys = payload(release.KindSystem, r.counter)
	}
	return publish.Release{
		Arch: r.arch, Version: version(r.counter), Counter: r.counter, MinFrom: r.minFrom,
		MinFromVersion: func() string {
			if r.minFrom == 0 {
				return ""
			}
			return version(r.minFrom)
		}(),
		Payloads: map[release.Kind]io.Reader{
			release.KindRelease: bytes.NewReader(manifest(r.arch, r.counter)),
			release.KindKernel:  bytes.NewReader(payload(release.KindKernel, r.counter)),
			release.KindInitrd:  bytes.NewReader(payload(release.KindInitrd, r.counter)),
			release.KindSystem:  bytes.NewReader(sys),
		},
	}
}

// sign signs rels into out (a new temporary directory when empty) at time at (t0 when zero).
func (f *fixture) sign(out string, o publish.SignOptions, rels ...rel) *publish.Bundle {
	f.t.Helper()
	if out == "" {
		out = filepath.Join(f.t.TempDir(), "bundle")
	}
	if o.Now.IsZero() {
		o.Now = t0
	}
	var in []publish.Release
	for _, r := range rels {
		in = append(in, r.input())
	}
	b, err := f.repo.Sign(out, in, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) state() release.State {
	f.t.Helper()
	s, err := release.NewState(readFile(f.t, filepath.Join(f.keys, "roots", "1.root.json")))
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

type box struct {
	store *release.MemStore
	v     *release.Verifier
	inst  release.Installed
}

func (f *fixture) box(cfg release.Config) *box {
	f.t.Helper()
	if cfg.Store == nil {
		cfg.Store = release.NewMemStore(f.state())
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	if cfg.Arch == "" {
		cfg.Arch = "amd64"
	}
	v, err := release.NewVerifier(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ms, _ := cfg.Store.(*release.MemStore)
	return &box{store: ms, v: v}
}

func dirSource(t testing.TB, dir string) release.Fetcher {
	t.Helper()
	d, err := release.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func (b *box) update(t testing.TB, dir string) (*release.Release, error) {
	t.Helper()
	return b.v.Update(context.Background(), dirSource(t, dir), b.inst)
}

// install reads every payload like the update agent: into a buffer, committed only if the
// reader verified.
func install(r *release.Release) (map[release.Kind][]byte, error) {
	out := map[release.Kind][]byte{}
	for _, p := range r.Payloads {
		pr, err := r.Open(context.Background(), p.Kind)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, pr)
		pr.Close()
		if err != nil {
			return nil, err
		}
		if !pr.Verified() {
			return nil, fmt.Errorf("%s: copy returned nil but not verified", p.Kind)
		}
		out[p.Kind] = buf.Bytes()
	}
	return out, nil
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editJSON rewrites a metadata file through a generic map, without re-signing.
func editJSON(t testing.TB, p string, edit func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, p), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, b)
}

func signed(m map[string]any) map[string]any { return m["signed"].(map[string]any) }

// signerKeys loads private keys of the fixture, by key id.
func (f *fixture) signerKeys() map[string]ed25519.PrivateKey {
	f.t.Helper()
	out := map[string]ed25519.PrivateKey{}
	entries, err := os.ReadDir(filepath.Join(f.keys, "keys"))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		blk, _ := pem.Decode(readFile(f.t, filepath.Join(f.keys, "keys", e.Name())))
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			f.t.Fatal(err)
		}
		out[strings.TrimSuffix(e.Name(), ".key")] = k.(ed25519.PrivateKey)
	}
	return out
}

// roleKeys returns the private keys of role in the newest root.
func (f *fixture) roleKeys(role string) []ed25519.PrivateKey {
	f.t.Helper()
	root, err := metadata.Root().FromBytes(f.repo.Root())
	if err != nil {
		f.t.Fatal(err)
	}
	all := f.signerKeys()
	var out []ed25519.PrivateKey
	for _, id := range root.Signed.Roles[role].KeyIDs {
		out = append(out, all[id])
	}
	return out
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// resign replaces the signatures of the metadata file p (of type T) after edit, by keys.
func resign[T metadata.Roles](t testing.TB, p string, edit func(m *metadata.Metadata[T]), keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	m := &metadata.Metadata[T]{}
	m, err := m.FromBytes(readFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	m.ClearSignatures()
	for _, k := range keys {
		s, err := signature.LoadED25519Signer(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, b)
	return b
}

// rehash re-signs the chain above targets after the targets file changed: snapshot (new hash
// of targets) and timestamp (new hash of snapshot), with the fixture's keys.
func (f *fixture) rehash(b *publish.Bundle) {
	f.t.Helper()
	tp := filepath.Join(b.Dir, release.TargetsFile(b.Targets))
	sp := filepath.Join(b.Dir, release.SnapshotFile(b.Snapshot))
	tsp := filepath.Join(b.Dir, release.TimestampFile)
	tb := readFile(f.t, tp)
	sb := resign(f.t, sp, func(m *metadata.Metadata[metadata.SnapshotType]) {
		m.Signed.Meta["targets.json"] = metaFile(b.Targets, tb)
	}, f.roleKeys(metadata.SNAPSHOT)...)
	resign(f.t, tsp, func(m *metadata.Metadata[metadata.TimestampType]) {
		m.Signed.Meta["snapshot.json"] = metaFile(b.Snapshot, sb)
	}, f.roleKeys(metadata.TIMESTAMP)...)
}

func metaFile(v int64, b []byte) *metadata.MetaFiles {
	m := metadata.MetaFile(v)
	m.Length = int64(len(b))
	tf, _ := metadata.TargetFile().FromBytes("x", b, "sha256")
	m.Hashes = tf.Hashes
	return m
}

func wantReason(t testing.TB, err error, want release.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %v", want)
	}
	if got := release.ReasonOf(err); got != want {
		t.Fatalf("refused for %v (%v); want %v", got, err, want)
	}
}

type jsonRaw []byte

func (j *jsonRaw) msg() *json.RawMessage { m := json.RawMessage(*j); return &m }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func payloadPath(t testing.TB, b *publish.Bundle, base string) string {
	t.Helper()
	for _, f := range b.Files {
		if strings.HasPrefix(f, "targets/amd64/") && strings.HasSuffix(f, "."+base) {
			return filepath.Join(b.Dir, filepath.FromSlash(f))
		}
	}
	t.Fatalf("no %s payload in %v", base, b.Files)
	return ""
}

func removePayload(t testing.TB, b *publish.Bundle, base string) {
	t.Helper()
	if err := os.Remove(payloadPath(t, b, base)); err != nil {
		t.Fatal(err)
	}
}
