package release_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestRefusals covers every metadata check: each case signs release 3 (installed 2), breaks
// one thing and expects one reason.
func TestRefusals(t *testing.T) {
	type env struct {
		f     *fixture
		b     *publish.Bundle
		cfg   *release.Config
		inst  *release.Installed
		state *release.State
	}
	path := func(e *env, name string) string { return filepath.Join(e.b.Dir, filepath.FromSlash(name)) }
	cases := []struct {
		name   string
		keygen publish.KeygenOptions
		sign   publish.SignOptions
		rel    rel
		setup  func(t *testing.T, e *env)
		want   release.Reason
		what   string
	}{
		{name: "tampered timestamp (expiry pushed out)", want: release.ReasonSignature, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.TimestampFile), func(m map[string]any) {
					signed(m)["expires"] = "2099-01-01T00:00:00Z"
				})
			}},
		{name: "tampered timestamp issued time", want: release.ReasonSignature, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.TimestampFile), func(m map[string]any) {
					signed(m)[release.IssuedField] = "2030-01-01T00:00:00Z"
				})
			}},
		{name: "tampered targets (payload length)", want: release.ReasonMixAndMatch, what: "targets",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.TargetsFile(e.b.Targets)), func(m map[string]any) {
					signed(m)["targets"].(map[string]any)["amd64/vmlinuz"].(map[string]any)["length"] = 1
				})
			}},
		{name: "tampered targets, snapshot and timestamp re-hashed without the targets key", want: release.ReasonSignature, what: "targets",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.TargetsFile(e.b.Targets)), func(m map[string]any) {
					signed(m)["targets"].(map[string]any)["amd64/vmlinuz"].(map[string]any)["length"] = 1
				})
				e.f.rehash(e.b)
			}},
		{name: "tampered snapshot", want: release.ReasonMixAndMatch, what: "snapshot",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.SnapshotFile(e.b.Snapshot)), func(m map[string]any) {
					signed(m)["expires"] = "2099-01-01T00:00:00Z"
				})
			}},
		{name: "timestamp signed by a key the root does not name", want: release.ReasonSignature, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TimestampType](t, path(e, release.TimestampFile), nil, newKey(t))
			}},
		{name: "targets signed by the timestamp key", want: release.ReasonSignature, what: "targets",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), nil, e.f.roleKeys(metadata.TIMESTAMP)...)
				e.f.rehash(e.b)
			}},
		{name: "timestamp below threshold (1 of 2 signatures)", keygen: publish.KeygenOptions{Timestamp: publish.RoleKeys{Keys: 3, Threshold: 2}},
			want: release.ReasonSignature, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TimestampType](t, path(e, release.TimestampFile), nil, e.f.roleKeys(metadata.TIMESTAMP)[:1]...)
			}},
		{name: "the same signature twice does not make a threshold", keygen: publish.KeygenOptions{Targets: publish.RoleKeys{Keys: 2, Threshold: 2}},
			want: release.ReasonMalformed, what: "targets",
			setup: func(t *testing.T, e *env) {
				editJSON(t, path(e, release.TargetsFile(e.b.Targets)), func(m map[string]any) {
					sigs := m["signatures"].([]any)
					m["signatures"] = []any{sigs[0], sigs[0]}
				})
				e.f.rehash(e.b)
			}},
		{name: "threshold met by the targets role in a 2-of-2 setup", keygen: publish.KeygenOptions{Targets: publish.RoleKeys{Keys: 2, Threshold: 2}},
			setup: func(t *testing.T, e *env) {}},
		{name: "timestamp expired: clock past it", want: release.ReasonFreeze, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return t0.Add(publish.DefaultTimestampExpires + time.Minute) }
			}},
		{name: "timestamp expired: clock reset to 1970 but last-known-good past it", want: release.ReasonFreeze, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return time.Unix(0, 0) }
				e.state.LastKnownGood = t0.Add(publish.DefaultTimestampExpires + time.Hour)
			}},
		{name: "timestamp expired: clock reset, installed release built after it", want: release.ReasonFreeze, what: "timestamp",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return time.Unix(0, 0) }
				e.inst.Built = t0.Add(publish.DefaultTimestampExpires + time.Hour)
			}},
		{name: "clock reset to 1970 and nothing known: accepted", setup: func(t *testing.T, e *env) {
			e.cfg.Now = func() time.Time { return time.Unix(0, 0) }
		}},
		{name: "targets expired", sign: publish.SignOptions{TargetsExpires: time.Hour}, want: release.ReasonExpired, what: "targets",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return t0.Add(2 * time.Hour) }
			}},
		{name: "snapshot expired", sign: publish.SignOptions{SnapshotExpires: time.Hour}, want: release.ReasonExpired, what: "snapshot",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return t0.Add(2 * time.Hour) }
			}},
		{name: "root expired", keygen: publish.KeygenOptions{RootExpires: 25 * time.Hour}, want: release.ReasonExpired, what: "root",
			setup: func(t *testing.T, e *env) {
				e.cfg.Now = func() time.Time { return t0.Add(2 * time.Hour) }
			}},
		{name: "timestamp version below the one seen (replay)", want: release.ReasonRollback, what: "timestamp",
			setup: func(t *testing.T, e *env) { e.state.Timestamp = e.b.Timestamp + 1 }},
		{name: "snapshot version below the one seen (replay)", want: release.ReasonRollback, what: "snapshot",
			setup: func(t *testing.T, e *env) { e.state.Snapshot = e.b.Snapshot + 1 }},
		{name: "targets version below the one seen (replay)", want: release.ReasonRollback, what: "targets",
			setup: func(t *testing.T, e *env) { e.state.Targets = e.b.Targets + 1 }},
		{name: "release counter below the installed one", want: release.ReasonRollback, what: "release",
			setup: func(t *testing.T, e *env) { e.inst.Counter = 4 }},
		{name: "release counter below the highest accepted one", want: release.ReasonRollback, what: "release",
			setup: func(t *testing.T, e *env) { e.state.Counter = 4 }},
		{name: "same counter as installed: accepted (the agent decides)", setup: func(t *testing.T, e *env) { e.inst.Counter = 3 }},
		{name: "wrong architecture", want: release.ReasonArch, what: "targets",
			setup: func(t *testing.T, e *env) { e.cfg.Arch = "riscv64" }},
		{name: "installed release below min-from", rel: rel{counter: 3, minFrom: 3}, want: release.ReasonMinVersion, what: "release",
			setup: func(t *testing.T, e *env) {}},
		{name: "installed release at min-from: accepted", rel: rel{counter: 3, minFrom: 2}, setup: func(t *testing.T, e *env) {}},
		{name: "release.json payload missing", want: release.ReasonPayloadUnknown,
			setup: func(t *testing.T, e *env) {
				removePayload(t, e.b, "release.json")
			}},
		{name: "release.json payload altered", want: release.ReasonPayloadMismatch, what: "amd64/release.json",
			setup: func(t *testing.T, e *env) {
				p := payloadPath(t, e.b, "release.json")
				b := readFile(t, p)
				b[len(b)-2] ^= 1
				writeFile(t, p, b)
			}},
		{name: "timestamp missing", want: release.ReasonMalformed, what: release.TimestampFile,
			setup: func(t *testing.T, e *env) { os.Remove(path(e, release.TimestampFile)) }},
		{name: "timestamp garbage", want: release.ReasonMalformed, what: "timestamp",
			setup: func(t *testing.T, e *env) { writeFile(t, path(e, release.TimestampFile), []byte("{\"signed\":")) }},
		{name: "timestamp huge", want: release.ReasonMalformed, what: release.TimestampFile,
			setup: func(t *testing.T, e *env) {
				writeFile(t, path(e, release.TimestampFile), []byte(strings.Repeat(" ", 1<<20)))
			}},
		{name: "targets file is a snapshot", want: release.ReasonMixAndMatch, what: "targets",
			setup: func(t *testing.T, e *env) {
				writeFile(t, path(e, release.TargetsFile(e.b.Targets)), readFile(t, path(e, release.SnapshotFile(e.b.Snapshot))))
			}},
		{name: "unknown payload kind for this architecture", want: release.ReasonPayloadUnknown, what: "amd64/dtb",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), func(m *metadata.Metadata[metadata.TargetsType]) {
					tf := *m.Signed.Targets["amd64/vmlinuz"]
					raw := []byte(`{"arch":"amd64","kind":"dtb","version":"1.3.0","counter":3,"min_from":0}`)
					tf.Custom = (*jsonRaw)(&raw).msg()
					m.Signed.Targets["amd64/dtb"] = &tf
				}, e.f.roleKeys(metadata.TARGETS)...)
				e.f.rehash(e.b)
			}},
		{name: "payloads disagree on the counter", want: release.ReasonMalformed,
			setup: func(t *testing.T, e *env) {
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), func(m *metadata.Metadata[metadata.TargetsType]) {
					raw := []byte(`{"arch":"amd64","kind":"kernel","version":"1.9.0","counter":9,"min_from":0}`)
					m.Signed.Targets["amd64/vmlinuz"].Custom = (*jsonRaw)(&raw).msg()
				}, e.f.roleKeys(metadata.TARGETS)...)
				e.f.rehash(e.b)
			}},
		{name: "payload without custom metadata", want: release.ReasonMalformed, what: "amd64/initrd.img",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), func(m *metadata.Metadata[metadata.TargetsType]) {
					m.Signed.Targets["amd64/initrd.img"].Custom = nil
				}, e.f.roleKeys(metadata.TARGETS)...)
				e.f.rehash(e.b)
			}},
		{name: "kernel payload missing from the targets", want: release.ReasonPayloadUnknown, what: "amd64/vmlinuz",
			setup: func(t *testing.T, e *env) {
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), func(m *metadata.Metadata[metadata.TargetsType]) {
					delete(m.Signed.Targets, "amd64/vmlinuz")
				}, e.f.roleKeys(metadata.TARGETS)...)
				e.f.rehash(e.b)
			}},
		{name: "signed release.json describes another release", want: release.ReasonMalformed, what: "amd64/release.json",
			setup: func(t *testing.T, e *env) {
				other := manifest("amd64", 7)
				p := payloadPath(t, e.b, "release.json")
				os.Remove(p)
				sum := sha(other)
				writeFile(t, filepath.Join(e.b.Dir, release.PayloadFile("amd64/release.json", sum)), other)
				resign[metadata.TargetsType](t, path(e, release.TargetsFile(e.b.Targets)), func(m *metadata.Metadata[metadata.TargetsType]) {
					tf, _ := metadata.TargetFile().FromBytes("amd64/release.json", other, "sha256")
					tf.Custom = m.Signed.Targets["amd64/release.json"].Custom
					m.Signed.Targets["amd64/release.json"] = tf
				}, e.f.roleKeys(metadata.TARGETS)...)
				e.f.rehash(e.b)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.keygen)
			r := c.rel
			if r.counter == 0 {
				r.counter = 3
			}
			e := &env{f: f, b: f.sign("", c.sign, r), cfg: &release.Config{Arch: "amd64"},
				inst: &release.Installed{Version: version(2), Counter: 2}}
			st := f.state()
			e.state = &st
			c.setup(t, e)
			store := release.NewMemStore(*e.state)
			e.cfg.Store = store
			if e.cfg.Now == nil {
				e.cfg.Now = func() time.Time { return t0.Add(time.Hour) }
			}
			v, err := release.NewVerifier(*e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := store.Load()
			_, err = v.Update(context.Background(), dirSource(t, e.b.Dir), *e.inst)
			if c.want == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantReason(t, err, c.want)
			var re *release.Error
			if !errors.As(err, &re) || (c.what != "" && re.What != c.what) {
				t.Fatalf("error names %q, want %q: %v", re.What, c.what, err)
			}
			if !errors.Is(err, &release.Error{Reason: c.want}) {
				t.Fatalf("errors.Is(%v) with the sentinel failed", err)
			}
			if c.want.Text() == "" || strings.HasPrefix(c.want.String(), "reason(") {
				t.Fatalf("reason %d has no words", c.want)
			}
			after, _ := store.Load()
			if after.Counter != before.Counter {
				t.Fatalf("refused release moved the accepted counter %d -> %d", before.Counter, after.Counter)
			}
			t.Logf("%v", err)
		})
	}
}
