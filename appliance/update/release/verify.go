package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Limits on what the verifier reads from a source before any signature is checked.
const (
	maxRootSize      = 512 << 10
	maxTimestampSize = 64 << 10
	maxMetaSize      = 8 << 20 // snapshot and targets metadata whose length is not signed
	maxManifestSize  = 1 << 20
	maxRootRotations = 256 // as go-tuf's updater
	// MaxPayloadSize bounds a payload's signed length (a slot is far smaller).
	MaxPayloadSize = 16 << 30
)

// Config configures a Verifier.
type Config struct {
	// Store keeps the trusted root and the high-water marks between calls. Required.
	Store Store
	// Arch is the box's architecture as in the payloads' custom metadata; runtime.GOARCH when
	// empty.
	Arch string
	// Now is the clock; time.Now when nil. Expiry is judged against the latest of Now, the
	// stored last-known-good time and the installed release's build time.
	Now func() time.Time
}

// Installed describes the release the box runs, as its release.json says.
type Installed struct {
	Version string
	Counter uint64
	// Built is the running release's build time (release.json's epoch). The real time is past
	// it, so it is a floor for the clock, like the last-known-good time. Zero if unknown.
	Built time.Time
}

// Verifier checks releases against a box's trust state. It is not safe for concurrent Update
// calls (the update agent runs one at a time).
type Verifier struct {
	store Store
	arch  string
	now   func() time.Time
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Store == nil {
		return nil, errors.New("release: verifier needs a Store")
	}
	v := &Verifier{store: cfg.Store, arch: cfg.Arch, now: cfg.Now}
	if v.arch == "" {
		v.arch = runtime.GOARCH
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Update verifies the metadata of the release that src offers, following TUF's client
// workflow: it walks the root chain from the trusted root, then checks timestamp, snapshot and
// targets metadata (signatures and thresholds, expiry, versions against what the box has seen,
// the snapshot against the timestamp and the targets against the snapshot), then the release:
// payloads for this architecture, release counter against the installed and the highest
// accepted one, the minimum release it may update from, and the signed release.json payload
// against the custom metadata. It fetches no other payload: the caller streams those with
// Release.Open.
//
// Update saves the state it verified (a rotated root, higher metadata versions, a later
// last-known-good time, and the release counter once the release passed every check), also
// when it then refuses the release: what verified is trusted whatever happens next.
//
// A refusal is an *Error (see Reason); a failing Store or a cancelled ctx give other errors.
func (v *Verifier) Update(ctx context.Context, src Fetcher, inst Installed) (rel *Release, err error) {
	st, err := v.store.Load()
	if err != nil {
		return nil, fmt.Errorf("release: load trust state: %w", err)
	}
	if len(st.Root) == 0 {
		return nil, errors.New("release: no trusted root in the trust state")
	}
	u := &update{v: v, src: src, st: st, next: st.clone(), inst: inst}
	u.ref = latest(v.now(), st.LastKnownGood, inst.Built)
	rel, err = u.run(ctx)
	if !u.next.equal(st) {
		if serr := v.store.Save(u.next); serr != nil {
			serr = fmt.Errorf("release: save trust state: %w", serr)
			if err != nil {
				return nil, errors.Join(err, serr)
			}
			return nil, serr
		}
	}
	if err != nil {
		return nil, err
	}
	return rel, nil
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m.UTC()
}

func (s State) equal(o State) bool {
	return bytes.Equal(s.Root, o.Root) && s.Timestamp == o.Timestamp && s.Snapshot == o.Snapshot &&
		s.Targets == o.Targets && s.Counter == o.Counter && s.LastKnownGood.Equal(o.LastKnownGood)
}

// update is the state of one Update call.
type update struct {
	v    *Verifier
	src  Fetcher
	st   State // as loaded
	next State // what has verified so far
	inst Installed
	ref  time.Time
	tm   *trustedmetadata.TrustedMetadata
}

func loadRoot(root []byte) (*trustedmetadata.TrustedMetadata, error) {
	tm, err := trustedmetadata.New(root)
	if err != nil {
		return nil, &Error{Reason: ReasonMalformed, What: "trusted root", Detail: "the stored trust anchor does not verify", Err: err}
	}
	return tm, nil
}

func (u *update) run(ctx context.Context) (*Release, error) {
	tm, err := loadRoot(u.st.Root)
	if err != nil {
		return nil, err
	}
	// trustedmetadata takes time.Now at New; expiry is judged against our reference time.
	tm.RefTime = u.ref
	u.tm = tm
	if err := u.rotateRoot(ctx); err != nil {
		return nil, err
	}
	ts, err := u.timestamp(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := u.snapshot(ctx, ts)
	if err != nil {
		return nil, err
	}
	targets, err := u.targets(ctx, snap)
	if err != nil {
		return nil, err
	}
	rel, err := u.release(targets)
	if err != nil {
		return nil, err
	}
	rel.RootVersion = tm.Root.Signed.Version
	rel.TimestampVersion = ts.Signed.Version
	rel.SnapshotVersion = snap.Signed.Version
	rel.TargetsVersion = targets.Signed.Version
	rel.Expires = earliest(tm.Root.Signed.Expires, ts.Signed.Expires, snap.Signed.Expires, targets.Signed.Expires)
	rel.Issued, _ = issued(ts)
	if err := u.manifest(ctx, rel); err != nil {
		return nil, err
	}
	if rel.Counter > u.next.Counter {
		u.next.Counter = rel.Counter
	}
	return rel, nil
}

func earliest(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

// fetch reads a file of at most max bytes from the source. A missing file is reported as
// fs.ErrNotExist (wrapped), for the caller to decide.
func (u *update) fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	rc, err := u.src.Fetch(ctx, name)
	if err != nil {
		return nil, sourceError(ctx, name, ReasonMalformed, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, sourceError(ctx, name, ReasonMalformed, err)
	}
	if int64(len(b)) > max {
		return nil, refuse(ReasonMalformed, name, "larger than %d bytes", max)
	}
	return b, nil
}

// sourceError classifies an error of a Fetcher or of a reader it returned. A file that is not
// there is refused for reason missing: ReasonMalformed for metadata (it is not a complete
// bundle), ReasonPayloadUnknown for a payload.
func sourceError(ctx context.Context, name string, missing Reason, err error) error {
	var e *Error
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("release: fetch %s: %w", name, ctx.Err())
	case errors.As(err, &e):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Reason: missing, What: name, Detail: "not in the source", Err: err}
	default:
		return &Error{Reason: ReasonUnavailable, What: name, Err: err}
	}
}

func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// classify turns a go-tuf error about role's metadata into a refusal.
func (u *update) classify(role string, data []byte, err error) error {
	var (
		unsigned *metadata.ErrUnsignedMetadata
		expired  *metadata.ErrExpiredMetadata
		mismatch *metadata.ErrLengthOrHashMismatch
		badVer   *metadata.ErrBadVersionNumber
	)
	e := &Error{What: role, Err: err}
	switch {
	case errors.As(err, &unsigned):
		e.Reason = ReasonSignature
	case errors.As(err, &expired):
		e.Reason = ReasonExpired
		if role == metadata.TIMESTAMP {
			e.Reason = ReasonFreeze
		}
		e.Detail = u.expiredDetail(data)
	case errors.As(err, &mismatch):
		e.Reason = ReasonMixAndMatch
	case errors.As(err, &badVer):
		e.Reason = ReasonMixAndMatch
		if role == metadata.ROOT {
			e.Reason = ReasonRollback
		}
	default:
		e.Reason = ReasonMalformed
	}
	return e
}

func (u *update) expiredDetail(data []byte) string {
	var m struct {
		Signed struct {
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return expiredText(m.Signed.Expires, u.ref)
}

func expiredText(expires, ref time.Time) string {
	return fmt.Sprintf("expired %s, reference time %s", expires.UTC().Format(time.RFC3339), ref.Format(time.RFC3339))
}

// rotateRoot walks N+1.root.json, N+2.root.json … from the trusted root (TUF 5.3). Each new
// root must be signed by a threshold of the previous root's root keys and of its own.
func (u *update) rotateRoot(ctx context.Context) error {
	old := u.tm.Root
	for range maxRootRotations {
		name := RootFile(u.tm.Root.Signed.Version + 1)
		data, err := u.fetch(ctx, name, maxRootSize)
		if notFound(err) {
			break
		}
		if err != nil {
			return err
		}
		if _, err := u.tm.UpdateRoot(data); err != nil {
			return u.classify(metadata.ROOT, data, err)
		}
		u.next.Root = data
	}
	if u.tm.Root == old {
		return nil
	}
	// TUF 5.3.11: when the timestamp or snapshot keys were rotated, forget their versions, so
	// that a repository can recover from a fast-forward attack (metadata signed with a huge
	// version by a compromised key). The same for targets keys.
	nr := u.tm.Root
	if keysChanged(old, nr, metadata.TIMESTAMP) || keysChanged(old, nr, metadata.SNAPSHOT) {
		u.next.Timestamp, u.next.Snapshot = 0, 0
	}
	if keysChanged(old, nr, metadata.TARGETS) {
		u.next.Targets = 0
	}
	return nil
}

func keysChanged(a, b *metadata.Metadata[metadata.RootType], role string) bool {
	ra, rb := a.Signed.Roles[role], b.Signed.Roles[role]
	if ra == nil || rb == nil {
		return true
	}
	ka, kb := slices.Clone(ra.KeyIDs), slices.Clone(rb.KeyIDs)
	slices.Sort(ka)
	slices.Sort(kb)
	return !slices.Equal(ka, kb)
}

func (u *update) timestamp(ctx context.Context) (*metadata.Metadata[metadata.TimestampType], error) {
	root := u.tm.Root
	if root.Signed.IsExpired(u.ref) {
		return nil, refuse(ReasonExpired, metadata.ROOT, "%s", expiredText(root.Signed.Expires, u.ref))
	}
	data, err := u.fetch(ctx, TimestampFile, maxTimestampSize)
	if err != nil {
		return nil, err
	}
	ts, err := u.tm.UpdateTimestamp(data)
	if err != nil {
		return nil, u.classify(metadata.TIMESTAMP, data, err)
	}
	if ts.Signed.Version < u.next.Timestamp {
		return nil, refuse(ReasonRollback, metadata.TIMESTAMP, "version %d is older than version %d already seen", ts.Signed.Version, u.next.Timestamp)
	}
	sm := ts.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, refuse(ReasonMalformed, metadata.TIMESTAMP, "no snapshot.json entry")
	}
	if sm.Version < u.next.Snapshot {
		return nil, refuse(ReasonRollback, metadata.SNAPSHOT, "version %d is older than version %d already seen", sm.Version, u.next.Snapshot)
	}
	u.next.Timestamp = ts.Signed.Version
	if t, ok := issued(ts); ok && t.After(u.next.LastKnownGood) {
		u.next.LastKnownGood = t
	}
	return ts, nil
}

// issued returns the signing time recorded in verified timestamp metadata. A time after the
// timestamp's own expiry is not believed (a signer with a wrong clock must not push boxes'
// last-known-good time into the future).
func issued(ts *metadata.Metadata[metadata.TimestampType]) (time.Time, bool) {
	s, ok := ts.Signed.UnrecognizedFields[IssuedField].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.After(ts.Signed.Expires) {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func (u *update) snapshot(ctx context.Context, ts *metadata.Metadata[metadata.TimestampType]) (*metadata.Metadata[metadata.SnapshotType], error) {
	sm := ts.Signed.Meta["snapshot.json"]
	name := MetadataDir + "/snapshot.json"
	if u.tm.Root.Signed.ConsistentSnapshot {
		name = SnapshotFile(sm.Version)
	}
	data, err := u.fetch(ctx, name, signedMax(sm.Length))
	if err != nil {
		return nil, err
	}
	snap, err := u.tm.UpdateSnapshot(data, false)
	if err != nil {
		return nil, u.classify(metadata.SNAPSHOT, data, err)
	}
	tm := snap.Signed.Meta["targets.json"]
	if tm == nil {
		return nil, refuse(ReasonMalformed, metadata.SNAPSHOT, "no targets.json entry")
	}
	if tm.Version < u.next.Targets {
		return nil, refuse(ReasonRollback, metadata.TARGETS, "version %d is older than version %d already seen", tm.Version, u.next.Targets)
	}
	u.next.Snapshot = snap.Signed.Version
	return snap, nil
}

func signedMax(length int64) int64 {
	if length > 0 && length <= maxMetaSize {
		return length
	}
	return maxMetaSize
}

func (u *update) targets(ctx context.Context, snap *metadata.Metadata[metadata.SnapshotType]) (*metadata.Metadata[metadata.TargetsType], error) {
	tmeta := snap.Signed.Meta["targets.json"]
	name := MetadataDir + "/targets.json"
	if u.tm.Root.Signed.ConsistentSnapshot {
		name = TargetsFile(tmeta.Version)
	}
	data, err := u.fetch(ctx, name, signedMax(tmeta.Length))
	if err != nil {
		return nil, err
	}
	t, err := u.tm.UpdateTargets(data)
	if err != nil {
		return nil, u.classify(metadata.TARGETS, data, err)
	}
	u.next.Targets = t.Signed.Version
	return t, nil
}

// release picks this architecture's payloads from verified targets metadata and checks the
// release against the installed one and the highest accepted one.
func (u *update) release(t *metadata.Metadata[metadata.TargetsType]) (*Release, error) {
	arch := u.v.arch
	rel := &Release{Arch: arch, src: u.src, consistent: u.tm.Root.Signed.ConsistentSnapshot}
	archs := map[string]bool{}
	var first *Custom
	for p, tf := range t.Signed.Targets {
		c, err := parseCustom(tf.Custom)
		if err != nil {
			return nil, &Error{Reason: ReasonMalformed, What: p, Err: err}
		}
		archs[c.Arch] = true
		if c.Arch != arch {
			continue
		}
		if !c.Kind.known() {
			return nil, refuse(ReasonPayloadUnknown, p, "payload kind %q is unknown to this firmware", c.Kind)
		}
		if want := TargetPath(arch, c.Kind); p != want {
			return nil, refuse(ReasonMalformed, p, "a %s payload must be at %s", c.Kind, want)
		}
		sum := tf.Hashes["sha256"]
		if len(sum) != 32 {
			return nil, refuse(ReasonMalformed, p, "no SHA-256 hash")
		}
		if tf.Length <= 0 || tf.Length > MaxPayloadSize {
			return nil, refuse(ReasonMalformed, p, "length %d out of range", tf.Length)
		}
		if first == nil {
			first = &c
		} else if c.Version != first.Version || c.Counter != first.Counter || c.MinFrom != first.MinFrom {
			return nil, refuse(ReasonMalformed, p, "payloads disagree on the release (%s vs %s)",
				formatCounter(c.Version, c.Counter), formatCounter(first.Version, first.Counter))
		}
		pl := Payload{Kind: c.Kind, Path: p, Length: tf.Length}
		copy(pl.SHA256[:], sum)
		rel.Payloads = append(rel.Payloads, pl)
	}
	if first == nil {
		have := make([]string, 0, len(archs))
		for a := range archs {
			have = append(have, a)
		}
		sort.Strings(have)
		return nil, refuse(ReasonArch, "targets", "the release has payloads for %v, this box is %s", have, arch)
	}
	for _, k := range Kinds() {
		if _, ok := rel.Payload(k); !ok {
			return nil, refuse(ReasonPayloadUnknown, TargetPath(arch, k), "the release has no %s payload", k)
		}
	}
	sort.Slice(rel.Payloads, func(i, j int) bool {
		return rel.Payloads[i].Kind.order() < rel.Payloads[j].Kind.order()
	})
	rel.Version, rel.Counter = first.Version, first.Counter
	rel.MinFrom, rel.MinFromVersion = first.MinFrom, first.MinFromVersion

	this := formatCounter(rel.Version, rel.Counter)
	if rel.Counter < u.inst.Counter {
		return nil, refuse(ReasonRollback, "release", "%s is older than the installed %s", this, formatCounter(u.inst.Version, u.inst.Counter))
	}
	if rel.Counter < u.st.Counter {
		return nil, refuse(ReasonRollback, "release", "%s is older than release #%d, which this box has already accepted", this, u.st.Counter)
	}
	if u.inst.Counter < rel.MinFrom {
		return nil, refuse(ReasonMinVersion, "release", "%s updates only from %s or later; installed is %s", this,
			formatCounter(rel.MinFromVersion, rel.MinFrom), formatCounter(u.inst.Version, u.inst.Counter))
	}
	return rel, nil
}

// manifest reads and checks the release.json payload, which must describe the same release as
// the signed custom metadata.
func (u *update) manifest(ctx context.Context, rel *Release) error {
	p, _ := rel.Payload(KindRelease)
	if p.Length > maxManifestSize {
		return refuse(ReasonMalformed, p.Path, "larger than %d bytes", maxManifestSize)
	}
	r, err := rel.open(ctx, p)
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return &Error{Reason: ReasonMalformed, What: p.Path, Err: err}
	}
	if m.Version != rel.Version || m.Counter != rel.Counter || m.Arch != rel.Arch {
		return refuse(ReasonMalformed, p.Path, "describes %s for %s, the signed metadata %s for %s",
			formatCounter(m.Version, m.Counter), m.Arch, formatCounter(rel.Version, rel.Counter), rel.Arch)
	}
	rel.Manifest = b
	return nil
}
