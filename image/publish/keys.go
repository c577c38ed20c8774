package publish

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Default validity periods. The root is long-lived (a box that was offline longer than this
// needs a newer root shipped to it); targets and snapshot live as long as a release may be
// installed from a stick; the timestamp is the freshness window: a bundle older than that is
// refused as stale until it is re-stamped (Refresh) by its publisher.
const (
	DefaultRootExpires      = 3 * 365 * 24 * time.Hour
	DefaultTargetsExpires   = 365 * 24 * time.Hour
	DefaultSnapshotExpires  = 365 * 24 * time.Hour
	DefaultTimestampExpires = 30 * 24 * time.Hour
)

// RoleKeys says how many keys a role has and how many of them must sign.
type RoleKeys struct {
	Keys, Threshold int
}

func (k RoleKeys) orDefault() (RoleKeys, error) {
	if k.Keys == 0 {
		k.Keys = 1
	}
	if k.Threshold == 0 {
		k.Threshold = 1
	}
	if k.Threshold > k.Keys || k.Threshold < 1 {
		return k, fmt.Errorf("threshold %d of %d keys", k.Threshold, k.Keys)
	}
	return k, nil
}

// Repo is a signing directory on an offline machine:
//
//	DIR/keys/<key id>.key     ed25519 private keys, PKCS#8 PEM, mode 0600
//	DIR/roots/N.root.json     the root chain, version 1 to N (public)
//	DIR/state.json            versions and time of the last signed metadata
//
// The newest root says which key signs for which role; keys are found by their TUF key id, so
// root keys can be kept on a different medium than the others and brought in only to rotate.
type Repo struct {
	dir   string
	roots [][]byte // roots[i] is version i+1
	root  *metadata.Metadata[metadata.RootType]
	keys  map[string]ed25519.PrivateKey
	state repoState
}

type repoState struct {
	Timestamp int64     `json:"timestamp"`
	Snapshot  int64     `json:"snapshot"`
	Targets   int64     `json:"targets"`
	Issued    time.Time `json:"issued"`
}

// KeygenOptions configures Keygen. Zero RoleKeys mean one key, threshold one.
type KeygenOptions struct {
	Root, Targets, Snapshot, Timestamp RoleKeys
	RootExpires                        time.Duration // DefaultRootExpires when zero
	Now                                time.Time     // time.Now when zero
}

func (o KeygenOptions) role(name string) RoleKeys {
	switch name {
	case metadata.ROOT:
		return o.Root
	case metadata.TARGETS:
		return o.Targets
	case metadata.SNAPSHOT:
		return o.Snapshot
	}
	return o.Timestamp
}

func now(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Second)
}

// Keygen creates a signing directory: new ed25519 keys for every role and root version 1,
// signed by the root keys. It refuses a directory that already has a root chain.
func Keygen(dir string, o KeygenOptions) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(dir, "roots", "1.root.json")); err == nil {
		return nil, fmt.Errorf("keygen: %s already holds a root chain", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, "keys"), filepath.Join(dir, "roots")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("keygen: %w", err)
		}
	}
	t := now(o.Now)
	exp := o.RootExpires
	if exp == 0 {
		exp = DefaultRootExpires
	}
	r := &Repo{dir: dir, keys: map[string]ed25519.PrivateKey{}}
	root := metadata.Root(t.Add(exp))
	root.Signed.ConsistentSnapshot = true
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		rk, err := o.role(role).orDefault()
		if err != nil {
			return nil, fmt.Errorf("keygen: %s: %w", role, err)
		}
		root.Signed.Roles[role].Threshold = rk.Threshold
		for range rk.Keys {
			key, err := r.newKey()
			if err != nil {
				return nil, fmt.Errorf("keygen: %w", err)
			}
			if err := root.Signed.AddKey(key, role); err != nil {
				return nil, fmt.Errorf("keygen: %w", err)
			}
		}
	}
	if err := r.signRoot(root, nil); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	return r, nil
}

// newKey creates a key, writes its private half and returns its public TUF key.
func (r *Repo) newKey() (*metadata.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id, err := key.ID()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	p := filepath.Join(r.dir, "keys", id+".key")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	r.keys[id] = priv
	return key, nil
}

// Open loads a signing directory.
func Open(dir string) (*Repo, error) {
	r := &Repo{dir: dir, keys: map[string]ed25519.PrivateKey{}}
	for v := 1; ; v++ {
		b, err := os.ReadFile(filepath.Join(dir, "roots", strconv.Itoa(v)+".root.json"))
		if errors.Is(err, fs.ErrNotExist) && v > 1 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("open signing directory: %w", err)
		}
		r.roots = append(r.roots, b)
	}
	root, err := metadata.Root().FromBytes(r.roots[len(r.roots)-1])
	if err != nil {
		return nil, fmt.Errorf("open signing directory: root %d: %w", len(r.roots), err)
	}
	r.root = root
	entries, err := os.ReadDir(filepath.Join(dir, "keys"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open signing directory: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".key") {
			continue
		}
		id, priv, err := readKey(filepath.Join(dir, "keys", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("open signing directory: %w", err)
		}
		r.keys[id] = priv
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &r.state); err != nil {
			return nil, fmt.Errorf("open signing directory: state.json: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open signing directory: %w", err)
	}
	return r, nil
}

func readKey(p string) (string, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return "", nil, fmt.Errorf("%s: not a PEM private key", p)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", p, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return "", nil, fmt.Errorf("%s: not an ed25519 key", p)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return "", nil, err
	}
	id, err := key.ID()
	return id, priv, err
}

// Root returns the newest root metadata as signed: what an image ships as its trust anchor.
func (r *Repo) Root() []byte { return slices.Clone(r.roots[len(r.roots)-1]) }

// RootVersion is the newest root's version.
func (r *Repo) RootVersion() int64 { return r.root.Signed.Version }

// Dir is the signing directory.
func (r *Repo) Dir() string { return r.dir }

// keyIDs returns the ids of a role's keys that are in the directory, or an error if they
// are fewer than the role's threshold in root.
func (r *Repo) keyIDs(root *metadata.Metadata[metadata.RootType], role string) ([]string, error) {
	ro := root.Signed.Roles[role]
	if ro == nil {
		return nil, fmt.Errorf("root %d has no %s role", root.Signed.Version, role)
	}
	var ids []string
	for _, id := range ro.KeyIDs {
		if _, ok := r.keys[id]; ok {
			ids = append(ids, id)
		}
	}
	if len(ids) < ro.Threshold {
		return nil, fmt.Errorf("the %s role needs %d signatures, %s has %d of its keys",
			role, ro.Threshold, filepath.Join(r.dir, "keys"), len(ids))
	}
	return ids, nil
}

// sign replaces m's signatures by those of the keys ids.
func sign[T metadata.Roles](m *metadata.Metadata[T], keys map[string]ed25519.PrivateKey, ids []string) error {
	m.ClearSignatures()
	for _, id := range ids {
		s, err := signature.LoadED25519Signer(keys[id])
		if err != nil {
			return err
		}
		if _, err := m.Sign(s); err != nil {
			return err
		}
	}
	return nil
}

// signRole signs m with every key of role present in the directory.
func signRole[T metadata.Roles](r *Repo, m *metadata.Metadata[T], role string) error {
	ids, err := r.keyIDs(r.root, role)
	if err != nil {
		return err
	}
	return sign(m, r.keys, ids)
}

// signRoot signs a new root with its own root keys and, for a rotation, those of prev,
// checks both thresholds, and adds it to the chain.
func (r *Repo) signRoot(root, prev *metadata.Metadata[metadata.RootType]) error {
	ids, err := r.keyIDs(root, metadata.ROOT)
	if err != nil {
		return fmt.Errorf("sign root %d: %w", root.Signed.Version, err)
	}
	if prev != nil {
		old, err := r.keyIDs(prev, metadata.ROOT)
		if err != nil {
			return fmt.Errorf("sign root %d with the keys of root %d: %w", root.Signed.Version, prev.Signed.Version, err)
		}
		for _, id := range old {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if err := sign(root, r.keys, ids); err != nil {
		return fmt.Errorf("sign root %d: %w", root.Signed.Version, err)
	}
	if prev != nil {
		if err := prev.VerifyDelegate(metadata.ROOT, root); err != nil {
			return fmt.Errorf("root %d does not verify with root %d: %w", root.Signed.Version, prev.Signed.Version, err)
		}
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return fmt.Errorf("root %d does not verify by itself: %w", root.Signed.Version, err)
	}
	b, err := root.ToBytes(true)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	name := filepath.Join(r.dir, "roots", strconv.FormatInt(root.Signed.Version, 10)+".root.json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return err
	}
	r.roots = append(r.roots, b)
	r.root = root
	return nil
}

// RotateOptions configures Rotate.
type RotateOptions struct {
	// Roles lists the roles that get new keys (the old ones are removed from the root), with
	// their new key counts and thresholds. Roles not listed keep their keys.
	Roles   map[string]RoleKeys
	Expires time.Duration // of the new root; DefaultRootExpires when zero
	Now     time.Time
}

// Rotate writes root version N+1: new keys for the roles listed, signed by a threshold of
// root N's root keys and of its own (TUF's root rotation). Boxes that trust root N (or any
// earlier one) follow the chain in the next bundle they verify.
func (r *Repo) Rotate(o RotateOptions) error {
	prev := r.root
	next, err := metadata.Root().FromBytes(r.roots[len(r.roots)-1])
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	exp := o.Expires
	if exp == 0 {
		exp = DefaultRootExpires
	}
	next.Signed.Version++
	next.Signed.Expires = now(o.Now).Add(exp)
	roles := make([]string, 0, len(o.Roles))
	for role := range o.Roles {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		rk, err := o.Roles[role].orDefault()
		if err != nil {
			return fmt.Errorf("rotate %s: %w", role, err)
		}
		ro := next.Signed.Roles[role]
		if ro == nil {
			return fmt.Errorf("rotate: unknown role %q", role)
		}
		for _, id := range slices.Clone(ro.KeyIDs) {
			if err := next.Signed.RevokeKey(id, role); err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
		}
		ro.Threshold = rk.Threshold
		for range rk.Keys {
			key, err := r.newKey()
			if err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
			if err := next.Signed.AddKey(key, role); err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
		}
	}
	if err := r.signRoot(next, prev); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	return nil
}
