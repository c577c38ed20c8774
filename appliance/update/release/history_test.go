package release_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// copyTree copies a bundle directory.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseSequence: v1 then v2 pass; v1 again (its genuine, unexpired metadata) is refused
// as a rollback, as are v2's files with v1's timestamp or snapshot.
func TestReleaseSequence(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	b1 := f.sign("", publish.SignOptions{}, rel{counter: 1})
	b2 := f.sign("", publish.SignOptions{Now: t0.Add(time.Minute)}, rel{counter: 2})
	bx := f.box(release.Config{})
	if _, err := bx.update(t, b1.Dir); err != nil {
		t.Fatal(err)
	}
	bx.inst = release.Installed{Version: version(1), Counter: 1}
	r, err := bx.update(t, b2.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Counter != 2 {
		t.Fatalf("counter %d", r.Counter)
	}
	// The box has not installed v2 (still runs v1), but it has seen v2's metadata.
	_, err = bx.update(t, b1.Dir)
	wantReason(t, err, release.ReasonRollback)

	// v2's directory with v1's timestamp: the timestamp version went back.
	mixed := filepath.Join(t.TempDir(), "mixed")
	copyTree(t, b2.Dir, mixed)
	writeFile(t, filepath.Join(mixed, release.TimestampFile), readFile(t, filepath.Join(b1.Dir, release.TimestampFile)))
	copyTree(t, filepath.Join(b1.Dir, "targets"), filepath.Join(mixed, "targets-v1"))
	_, err = bx.update(t, mixed)
	wantReason(t, err, release.ReasonRollback)

	// A fresh box that never saw v2 accepts v1 (it is genuine and unexpired).
	fresh := f.box(release.Config{})
	if _, err := fresh.update(t, b1.Dir); err != nil {
		t.Fatal(err)
	}
}

// TestMixAndMatch: targets metadata of release N served with the snapshot of N+1.
func TestMixAndMatch(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	dir := filepath.Join(t.TempDir(), "repo")
	b1 := f.sign(dir, publish.SignOptions{}, rel{counter: 1})
	b2 := f.sign(dir, publish.SignOptions{Now: t0.Add(time.Minute)}, rel{counter: 2})
	if b1.Dir != b2.Dir || b2.Targets != b1.Targets+1 {
		t.Fatalf("bundles %+v %+v", b1, b2)
	}
	// Both releases live in one published directory; the box follows timestamp.json to v2.
	bx := f.box(release.Config{})
	r, err := bx.update(t, dir)
	if err != nil || r.Counter != 2 {
		t.Fatalf("%v %v", r, err)
	}

	t.Run("targets N under the name of N+1", func(t *testing.T) {
		mixed := filepath.Join(t.TempDir(), "m")
		copyTree(t, dir, mixed)
		writeFile(t, filepath.Join(mixed, release.TargetsFile(b2.Targets)), readFile(t, filepath.Join(dir, release.TargetsFile(b1.Targets))))
		_, err := f.box(release.Config{}).update(t, mixed)
		wantReason(t, err, release.ReasonMixAndMatch)
	})
	t.Run("snapshot N under the name of N+1", func(t *testing.T) {
		mixed := filepath.Join(t.TempDir(), "m")
		copyTree(t, dir, mixed)
		writeFile(t, filepath.Join(mixed, release.SnapshotFile(b2.Snapshot)), readFile(t, filepath.Join(dir, release.SnapshotFile(b1.Snapshot))))
		_, err := f.box(release.Config{}).update(t, mixed)
		wantReason(t, err, release.ReasonMixAndMatch)
	})
	t.Run("snapshot without hashes pointing at the wrong targets version", func(t *testing.T) {
		// A signer that omits hashes (TUF allows it) is still protected by versions.
		mixed := filepath.Join(t.TempDir(), "m")
		copyTree(t, dir, mixed)
		writeFile(t, filepath.Join(mixed, release.TargetsFile(b2.Targets)), readFile(t, filepath.Join(dir, release.TargetsFile(b1.Targets))))
		sb := resign(t, filepath.Join(mixed, release.SnapshotFile(b2.Snapshot)), func(m *metadata.Metadata[metadata.SnapshotType]) {
			m.Signed.Meta["targets.json"] = metadata.MetaFile(b2.Targets)
		}, f.roleKeys(metadata.SNAPSHOT)...)
		resign(t, filepath.Join(mixed, release.TimestampFile), func(m *metadata.Metadata[metadata.TimestampType]) {
			m.Signed.Meta["snapshot.json"] = metaFile(b2.Snapshot, sb)
		}, f.roleKeys(metadata.TIMESTAMP)...)
		_, err := f.box(release.Config{}).update(t, mixed)
		wantReason(t, err, release.ReasonMixAndMatch)
	})
	t.Run("payload of N under the signed name of N+1", func(t *testing.T) {
		mixed := filepath.Join(t.TempDir(), "m")
		copyTree(t, dir, mixed)
		b := &publish.Bundle{Dir: mixed, Files: b2.Files}
		old := readFile(t, payloadPath(t, b1, "vmlinuz"))
		writeFile(t, payloadPath(t, b, "vmlinuz"), old)
		r, err := f.box(release.Config{}).update(t, mixed)
		if err != nil {
			t.Fatal(err)
		}
		_, err = install(r)
		wantReason(t, err, release.ReasonPayloadMismatch)
	})
}

// TestLastKnownGood: the last-known-good time only advances from verified timestamps, never
// back, never to the box's own clock, and is the floor when the clock is behind.
func TestLastKnownGood(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	dir := filepath.Join(t.TempDir(), "repo")
	f.sign(dir, publish.SignOptions{}, rel{counter: 1})
	var now time.Time
	bx := f.box(release.Config{Now: func() time.Time { return now }})
	lkg := func() time.Time {
		s, _ := bx.store.Load()
		return s.LastKnownGood
	}

	// A clock ahead refuses (timestamp expired) and does not move the time.
	now = t0.Add(60 * 24 * time.Hour)
	_, err := bx.update(t, dir)
	wantReason(t, err, release.ReasonFreeze)
	if !lkg().IsZero() {
		t.Fatalf("clock moved last-known-good to %v", lkg())
	}

	// A verified timestamp moves it to its signing time, not to the clock.
	now = t0.Add(time.Hour)
	if _, err := bx.update(t, dir); err != nil {
		t.Fatal(err)
	}
	if !lkg().Equal(t0) {
		t.Fatalf("last-known-good %v, want %v", lkg(), t0)
	}

	// A tampered timestamp claiming a later signing time does not move it.
	tampered := filepath.Join(t.TempDir(), "t")
	copyTree(t, dir, tampered)
	editJSON(t, filepath.Join(tampered, release.TimestampFile), func(m map[string]any) {
		signed(m)[release.IssuedField] = t0.Add(20 * 24 * time.Hour).Format(time.RFC3339)
		signed(m)["version"] = 9
	})
	_, err = bx.update(t, tampered)
	wantReason(t, err, release.ReasonSignature)
	if !lkg().Equal(t0) {
		t.Fatalf("tampered timestamp moved last-known-good to %v", lkg())
	}

	// A re-stamped bundle (10 days later) moves it on.
	t10 := t0.Add(10 * 24 * time.Hour)
	if _, err := f.repo.Refresh(dir, publish.SignOptions{Now: t10}); err != nil {
		t.Fatal(err)
	}
	now = t10.Add(time.Minute)
	if _, err := bx.update(t, dir); err != nil {
		t.Fatal(err)
	}
	if !lkg().Equal(t10) {
		t.Fatalf("last-known-good %v, want %v", lkg(), t10)
	}

	// The clock is reset to 1970 (dead RTC battery): expiry is judged at the last-known-good
	// time, so the current bundle still verifies …
	now = time.Unix(0, 0)
	if _, err := bx.update(t, dir); err != nil {
		t.Fatal(err)
	}
	if !lkg().Equal(t10) {
		t.Fatalf("last-known-good moved back to %v", lkg())
	}
	// … but a bundle whose timestamp expired before the last-known-good time does not, even
	// with an unseen higher version (signed with the right key, in the past).
	old := filepath.Join(t.TempDir(), "old")
	copyTree(t, dir, old)
	resign(t, filepath.Join(old, release.TimestampFile), func(m *metadata.Metadata[metadata.TimestampType]) {
		m.Signed.Version += 5
		m.Signed.Expires = t0.Add(5 * 24 * time.Hour)
		m.Signed.UnrecognizedFields[release.IssuedField] = t0.Add(4 * 24 * time.Hour).Format(time.RFC3339)
	}, f.roleKeys(metadata.TIMESTAMP)...)
	_, err = bx.update(t, old)
	wantReason(t, err, release.ReasonFreeze)

	// A signed issued time after the timestamp's own expiry (a signer's wrong clock) is not
	// believed.
	future := filepath.Join(t.TempDir(), "future")
	copyTree(t, dir, future)
	resign(t, filepath.Join(future, release.TimestampFile), func(m *metadata.Metadata[metadata.TimestampType]) {
		m.Signed.Version += 7
		m.Signed.UnrecognizedFields[release.IssuedField] = t0.Add(50 * 365 * 24 * time.Hour).Format(time.RFC3339)
	}, f.roleKeys(metadata.TIMESTAMP)...)
	if _, err := bx.update(t, future); err != nil {
		t.Fatal(err)
	}
	if !lkg().Equal(t10) {
		t.Fatalf("an issued time past expiry moved last-known-good to %v", lkg())
	}
}

// TestRootRotation: root 2 replaces the root keys and the timestamp key and is signed by a
// threshold of root 1's keys and of its own; a box that trusts root 1 follows it.
func TestRootRotation(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{Root: publish.RoleKeys{Keys: 3, Threshold: 2}})
	b1 := f.sign("", publish.SignOptions{}, rel{counter: 1})
	bx := f.box(release.Config{})
	bx.inst.Counter = 1
	if _, err := bx.update(t, b1.Dir); err != nil {
		t.Fatal(err)
	}
	oldTimestamp := f.roleKeys(metadata.TIMESTAMP)
	err := f.repo.Rotate(publish.RotateOptions{Now: t0, Roles: map[string]publish.RoleKeys{
		metadata.ROOT:      {Keys: 2, Threshold: 2},
		metadata.TIMESTAMP: {Keys: 1, Threshold: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b2 := f.sign("", publish.SignOptions{Now: t0.Add(time.Minute)}, rel{counter: 2})
	if b2.RootVersion != 2 {
		t.Fatalf("root version %d", b2.RootVersion)
	}
	root2 := filepath.Join(b2.Dir, release.RootFile(2))

	cases := []struct {
		name string
		edit func(t *testing.T, dir string)
		want release.Reason
	}{
		{"follows the chain", func(t *testing.T, dir string) {}, 0},
		{"new root with one old signature (threshold 2)", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, release.RootFile(2)), func(m map[string]any) {
				m["signatures"] = dropOldRootSigs(t, f, m["signatures"].([]any), 1)
			})
		}, release.ReasonSignature},
		{"new root signed only by its own keys", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, release.RootFile(2)), func(m map[string]any) {
				m["signatures"] = dropOldRootSigs(t, f, m["signatures"].([]any), 0)
			})
		}, release.ReasonSignature},
		{"new root replaced by a key the old root does not know", func(t *testing.T, dir string) {
			resign[metadata.RootType](t, filepath.Join(dir, release.RootFile(2)), nil, newKey(t))
		}, release.ReasonSignature},
		{"root 1 served as root 2 (replay)", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, release.RootFile(2)), readFile(t, filepath.Join(dir, release.RootFile(1))))
		}, release.ReasonRollback},
		{"timestamp still signed by the rotated-out key", func(t *testing.T, dir string) {
			resign[metadata.TimestampType](t, filepath.Join(dir, release.TimestampFile), nil, oldTimestamp...)
		}, release.ReasonSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			copyTree(t, b2.Dir, dir)
			c.edit(t, dir)
			st, _ := bx.store.Load()
			box := f.box(release.Config{Store: release.NewMemStore(st)})
			box.inst.Counter = 1
			r, err := box.v.Update(t.Context(), dirSource(t, dir), box.inst)
			if c.want != 0 {
				wantReason(t, err, c.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.RootVersion != 2 {
				t.Fatalf("root version %d", r.RootVersion)
			}
		})
	}
	if _, err := bx.update(t, b2.Dir); err != nil {
		t.Fatal(err)
	}
	st, _ := bx.store.Load()
	if string(st.Root) != string(readFile(t, root2)) {
		t.Fatal("the trusted root did not move to version 2")
	}
}

func isOldRootKey(t *testing.T, f *fixture, id string) bool {
	root1, err := metadata.Root().FromBytes(readFile(t, filepath.Join(f.keys, "roots", "1.root.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range root1.Signed.Roles[metadata.ROOT].KeyIDs {
		if k == id {
			return true
		}
	}
	return false
}

// dropOldRootSigs keeps only keep signatures by root 1's root keys (and all others).
func dropOldRootSigs(t *testing.T, f *fixture, sigs []any, keep int) []any {
	var out []any
	for _, s := range sigs {
		if isOldRootKey(t, f, s.(map[string]any)["keyid"].(string)) {
			if keep == 0 {
				continue
			}
			keep--
		}
		out = append(out, s)
	}
	return out
}

// TestFastForwardRecovery: a compromised timestamp key signed a huge version; rotating the
// timestamp key in a new root lets the box accept normal versions again (TUF 5.3.11).
func TestFastForwardRecovery(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	b1 := f.sign("", publish.SignOptions{}, rel{counter: 1})
	st := f.state()
	st.Timestamp, st.Snapshot, st.Targets = 1<<40, 1<<40, 1<<40
	bx := f.box(release.Config{Store: release.NewMemStore(st)})
	_, err := bx.update(t, b1.Dir)
	wantReason(t, err, release.ReasonRollback)

	err = f.repo.Rotate(publish.RotateOptions{Now: t0, Roles: map[string]publish.RoleKeys{
		metadata.TIMESTAMP: {}, metadata.SNAPSHOT: {}, metadata.TARGETS: {},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b2 := f.sign("", publish.SignOptions{Now: t0.Add(time.Minute)}, rel{counter: 2})
	if _, err := bx.update(t, b2.Dir); err != nil {
		t.Fatal(err)
	}
	got, _ := bx.store.Load()
	if got.Timestamp != b2.Timestamp || got.Snapshot != b2.Snapshot || got.Targets != b2.Targets {
		t.Fatalf("versions after recovery: %+v", got)
	}
}
