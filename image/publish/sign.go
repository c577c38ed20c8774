package publish

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Release is one architecture's release to sign.
type Release struct {
	Arch           string // GOARCH of the boxes it is for
	Version        string // version string, as in its release.json
	Counter        uint64 // monotonic release counter, as in its release.json (> 0)
	MinFrom        uint64 // lowest installed counter it may update from (0: any)
	MinFromVersion string // MinFrom's version string, shown when a box is too old
	// Payloads holds a reader for every kind in release.Kinds; each is read once.
	Payloads map[release.Kind]io.Reader
}

// SignOptions configures Sign and Refresh. Zero durations take the defaults.
type SignOptions struct {
	Now                                               time.Time
	TargetsExpires, SnapshotExpires, TimestampExpires time.Duration
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Bundle describes the release a bundle directory offers now (what its timestamp.json leads
// to).
type Bundle struct {
	Dir string
	// Files are the bundle paths in bundle order: the root chain, timestamp, snapshot, targets
	// metadata, then the payloads (architectures sorted, kinds in release.Kinds order). A tar
	// bundle holds them in this order.
	Files                                     []string
	MetadataBytes, PayloadBytes               int64
	RootVersion, Timestamp, Snapshot, Targets int64
	Issued                                    time.Time
	Releases                                  []release.Custom // one per architecture (Kind empty)
}

// Sign writes a signed bundle for rels (one per architecture) into the directory out: the
// payloads under targets/, new targets, snapshot and timestamp metadata (each version one
// higher than the last this signing directory signed) and the root chain under metadata/.
// out may already hold earlier bundles (every name is versioned or content-addressed);
// timestamp.json is written last, atomically, so a directory that is being served switches to
// the new release in one step.
func (r *Repo) Sign(out string, rels []Release, o SignOptions) (*Bundle, error) {
	t := now(o.Now)
	if t.Before(r.state.Issued) {
		return nil, fmt.Errorf("sign: the clock (%s) is before the last signing time (%s); fix the clock",
			t.Format(time.RFC3339), r.state.Issued.Format(time.RFC3339))
	}
	if len(rels) == 0 {
		return nil, errors.New("sign: no release")
	}
	for _, d := range []string{release.MetadataDir, release.TargetsDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	st := r.state
	st.Targets++
	st.Snapshot++
	st.Timestamp++
	st.Issued = t

	targets := metadata.Targets(t.Add(orDefault(o.TargetsExpires, DefaultTargetsExpires)))
	targets.Signed.Version = st.Targets
	seen := map[string]bool{}
	for _, rel := range rels {
		if seen[rel.Arch] {
			return nil, fmt.Errorf("sign: two releases for %s", rel.Arch)
		}
		seen[rel.Arch] = true
		if err := addRelease(out, targets, rel); err != nil {
			return nil, fmt.Errorf("sign %s %s: %w", rel.Arch, rel.Version, err)
		}
	}
	if err := signRole(r, targets, metadata.TARGETS); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	tb, err := targets.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}

	snap := metadata.Snapshot(t.Add(orDefault(o.SnapshotExpires, DefaultSnapshotExpires)))
	snap.Signed.Version = st.Snapshot
	snap.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metaFile(st.Targets, tb)}
	if err := signRole(r, snap, metadata.SNAPSHOT); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sb, err := snap.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}

	tsb, err := r.timestamp(st.Timestamp, st.Snapshot, sb, t, o)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	files := map[string][]byte{
		release.TargetsFile(st.Targets):   tb,
		release.SnapshotFile(st.Snapshot): sb,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, filepath.FromSlash(name)), b, 0o644); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	if err := r.writeRoots(out); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := writeAtomic(filepath.Join(out, filepath.FromSlash(release.TimestampFile)), tsb); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := r.saveState(st); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return ReadBundle(out)
}

// writeRoots writes the whole root chain into the bundle directory out.
func (r *Repo) writeRoots(out string) error {
	for i, b := range r.roots {
		if err := os.WriteFile(filepath.Join(out, filepath.FromSlash(release.RootFile(int64(i+1)))), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	return &metadata.MetaFiles{Version: version, Length: int64(len(b)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// timestamp returns signed timestamp metadata for snapshot version sv with content sb.
func (r *Repo) timestamp(version, sv int64, sb []byte, t time.Time, o SignOptions) ([]byte, error) {
	ts := metadata.Timestamp(t.Add(orDefault(o.TimestampExpires, DefaultTimestampExpires)))
	ts.Signed.Version = version
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(sv, sb)}
	ts.Signed.UnrecognizedFields = map[string]any{release.IssuedField: t.Format(time.RFC3339)}
	if err := signRole(r, ts, metadata.TIMESTAMP); err != nil {
		return nil, err
	}
	return ts.ToBytes(false)
}

// Refresh re-signs the timestamp of the bundle in out (a new version and expiry, the same
// snapshot) and adds any newer roots to it, so that a bundle outlives the freshness window: what a fleet server does with
// the timestamp key, and what a publisher does before handing out an older stick image.
func (r *Repo) Refresh(out string, o SignOptions) (*Bundle, error) {
	t := now(o.Now)
	if t.Before(r.state.Issued) {
		return nil, fmt.Errorf("refresh: the clock (%s) is before the last signing time (%s)",
			t.Format(time.RFC3339), r.state.Issued.Format(time.RFC3339))
	}
	b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(release.TimestampFile)))
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	old, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	sm := old.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, errors.New("refresh: timestamp has no snapshot entry")
	}
	sb, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(release.SnapshotFile(sm.Version))))
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	st := r.state
	st.Timestamp = max(st.Timestamp, old.Signed.Version) + 1
	st.Issued = t
	tsb, err := r.timestamp(st.Timestamp, sm.Version, sb, t, o)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if err := r.writeRoots(out); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if err := writeAtomic(filepath.Join(out, filepath.FromSlash(release.TimestampFile)), tsb); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if err := r.saveState(st); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	return ReadBundle(out)
}

func (r *Repo) saveState(st repoState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(r.dir, "state.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("save signing state: %w", err)
	}
	r.state = st
	return nil
}

// addRelease writes rel's payloads into out and adds them to targets.
func addRelease(out string, targets *metadata.Metadata[metadata.TargetsType], rel Release) error {
	if rel.Arch == "" || rel.Version == "" || rel.Counter == 0 {
		return errors.New("arch, version and counter are required")
	}
	if rel.MinFrom > rel.Counter {
		return fmt.Errorf("min-from %d is above the release counter %d", rel.MinFrom, rel.Counter)
	}
	for k := range rel.Payloads {
		if !slices.Contains(release.Kinds(), k) {
			return fmt.Errorf("unknown payload kind %q", k)
		}
	}
	for _, k := range release.Kinds() {
		src := rel.Payloads[k]
		if src == nil {
			return fmt.Errorf("no %s payload", k)
		}
		target := release.TargetPath(rel.Arch, k)
		sum, n, err := writePayload(out, target, src)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if n == 0 {
			return fmt.Errorf("%s payload is empty", k)
		}
		if k == release.KindRelease {
			if err := checkManifest(filepath.Join(out, filepath.FromSlash(release.PayloadFile(target, hex.EncodeToString(sum)))), rel); err != nil {
				return err
			}
		}
		c := release.Custom{Arch: rel.Arch, Kind: k, Version: rel.Version, Counter: rel.Counter,
			MinFrom: rel.MinFrom, MinFromVersion: rel.MinFromVersion}
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		rm := json.RawMessage(raw)
		targets.Signed.Targets[target] = &metadata.TargetFiles{
			Length: n, Hashes: metadata.Hashes{"sha256": sum}, Custom: &rm, Path: target,
		}
	}
	return nil
}

// checkManifest refuses to sign a release.json that describes another release: the box would
// refuse it.
func checkManifest(p string, rel Release) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var m release.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("release.json: %w", err)
	}
	if m.Version != rel.Version || m.Counter != rel.Counter || m.Arch != rel.Arch {
		return fmt.Errorf("release.json describes %s #%d for %s, not %s #%d for %s",
			m.Version, m.Counter, m.Arch, rel.Version, rel.Counter, rel.Arch)
	}
	return nil
}

// writePayload copies src into out under its content-addressed name and returns its SHA-256
// and length.
func writePayload(out, target string, src io.Reader) ([]byte, int64, error) {
	dir := filepath.Join(out, release.TargetsDir, filepath.FromSlash(path.Dir(target)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	tmp, err := os.CreateTemp(dir, ".payload-*")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		return nil, 0, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, 0, err
	}
	if err := tmp.Close(); err != nil {
		return nil, 0, err
	}
	sum := h.Sum(nil)
	name := filepath.Join(out, filepath.FromSlash(release.PayloadFile(target, hex.EncodeToString(sum))))
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, 0, err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return nil, 0, err
	}
	return sum, n, nil
}

func writeAtomic(name string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// ReadBundle describes the release that the bundle directory dir offers: it follows
// timestamp.json to the snapshot and the targets metadata (without verifying signatures; use
// the verifier for that) and lists the files a tar of it holds.
func ReadBundle(dir string) (*Bundle, error) {
	b := &Bundle{Dir: dir}
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
		b.Files = append(b.Files, name)
		b.MetadataBytes += int64(len(data))
		return data, nil
	}
	for v := int64(1); ; v++ {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(release.RootFile(v)))); err != nil {
			break
		}
		if _, err := read(release.RootFile(v)); err != nil {
			return nil, err
		}
		b.RootVersion = v
	}
	if b.RootVersion == 0 {
		return nil, fmt.Errorf("read bundle %s: no %s", dir, release.RootFile(1))
	}
	tsb, err := read(release.TimestampFile)
	if err != nil {
		return nil, err
	}
	ts, err := metadata.Timestamp().FromBytes(tsb)
	if err != nil {
		return nil, fmt.Errorf("read bundle: timestamp: %w", err)
	}
	b.Timestamp = ts.Signed.Version
	if s, ok := ts.Signed.UnrecognizedFields[release.IssuedField].(string); ok {
		b.Issued, _ = time.Parse(time.RFC3339, s)
	}
	sm := ts.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, errors.New("read bundle: timestamp has no snapshot entry")
	}
	sb, err := read(release.SnapshotFile(sm.Version))
	if err != nil {
		return nil, err
	}
	snap, err := metadata.Snapshot().FromBytes(sb)
	if err != nil {
		return nil, fmt.Errorf("read bundle: snapshot: %w", err)
	}
	b.Snapshot = snap.Signed.Version
	tm := snap.Signed.Meta["targets.json"]
	if tm == nil {
		return nil, errors.New("read bundle: snapshot has no targets entry")
	}
	tb, err := read(release.TargetsFile(tm.Version))
	if err != nil {
		return nil, err
	}
	targets, err := metadata.Targets().FromBytes(tb)
	if err != nil {
		return nil, fmt.Errorf("read bundle: targets: %w", err)
	}
	b.Targets = targets.Signed.Version
	type entry struct {
		arch string
		kind int
		file string
		n    int64
	}
	var entries []entry
	archs := map[string]release.Custom{}
	for p, tf := range targets.Signed.Targets {
		var c release.Custom
		if tf.Custom != nil {
			if err := json.Unmarshal(*tf.Custom, &c); err != nil {
				return nil, fmt.Errorf("read bundle: %s: %w", p, err)
			}
		}
		entries = append(entries, entry{c.Arch, slices.Index(release.Kinds(), c.Kind),
			release.PayloadFile(p, hex.EncodeToString(tf.Hashes["sha256"])), tf.Length})
		c.Kind = ""
		archs[c.Arch] = c
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].arch != entries[j].arch {
			return entries[i].arch < entries[j].arch
		}
		if entries[i].kind != entries[j].kind {
			return entries[i].kind < entries[j].kind
		}
		return entries[i].file < entries[j].file
	})
	for _, e := range entries {
		b.Files = append(b.Files, e.file)
		b.PayloadBytes += e.n
	}
	for _, a := range slices.Sorted(maps.Keys(archs)) {
		b.Releases = append(b.Releases, archs[a])
	}
	return b, nil
}

// WriteTar writes the bundle as one tar file, entries in bundle order (metadata first), with
// fixed owners, modes and times (the timestamp's signing time), so the same bundle gives the
// same bytes.
func (b *Bundle) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, name := range b.Files {
		f, err := os.Open(filepath.Join(b.Dir, filepath.FromSlash(name)))
		if err != nil {
			return fmt.Errorf("write tar: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("write tar: %w", err)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o644, ModTime: b.Issued, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			f.Close()
			return fmt.Errorf("write tar: %s: %w", name, err)
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("write tar: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return nil
}

// WriteTarFile writes the bundle's tar to the file name (atomically).
func (b *Bundle) WriteTarFile(name string) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := b.WriteTar(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return os.Rename(tmp.Name(), name)
}
