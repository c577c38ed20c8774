package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// State is what a box remembers between updates: the trust anchor and the high-water marks
// that make rollback and freeze attacks detectable. The update agent persists it (in the
// storage database); it holds no secrets.
type State struct {
	// Root is the newest trusted root metadata, byte for byte as signed. A box starts from the
	// root built into its image; Update replaces it when it verifies a rotation.
	Root []byte `json:"root"`
	// Highest verified versions of the timestamp, snapshot and targets metadata. Metadata with
	// a lower version is refused as a rollback. Reset when the root rotates that role's keys
	// (TUF's recovery from a fast-forward attack).
	Timestamp int64 `json:"timestamp"`
	Snapshot  int64 `json:"snapshot"`
	Targets   int64 `json:"targets"`
	// Counter is the highest release counter that passed every check (whether or not it was
	// installed). A release with a lower counter is refused as a rollback.
	Counter uint64 `json:"counter"`
	// LastKnownGood is a time the real time is known to be past: the signing time of the newest
	// verified timestamp metadata. Expiry is judged against the later of the clock and this, so
	// a box whose clock was reset still refuses metadata it has outlived. It never moves back.
	LastKnownGood time.Time `json:"last_known_good"`
}

// Store keeps a box's State. Save must replace the state atomically (all of it or nothing):
// a crash during Save must leave either the old or the new state. Update calls Load once and
// Save at most once per call, and only with states whose Root verified.
type Store interface {
	Load() (State, error)
	Save(State) error
}

// NewState returns the initial state for a trusted root (root metadata as signed, for example
// the 1.root.json a vendor ships in its images). The root must be correctly self-signed.
func NewState(root []byte) (State, error) {
	if _, err := loadRoot(root); err != nil {
		return State{}, err
	}
	return State{Root: append([]byte(nil), root...)}, nil
}

// MemStore is a Store in memory, for tests and for one-shot verification on a host.
type MemStore struct {
	mu sync.Mutex
	s  State
}

// NewMemStore returns a MemStore holding s.
func NewMemStore(s State) *MemStore { return &MemStore{s: s.clone()} }

// Load returns a copy of the state.
func (m *MemStore) Load() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.clone(), nil
}

// Save replaces the state.
func (m *MemStore) Save(s State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = s.clone()
	return nil
}

func (s State) clone() State {
	s.Root = append([]byte(nil), s.Root...)
	return s
}

// FileStore is a Store in a JSON file, replaced atomically (write a temporary file, fsync,
// rename, fsync the directory). For hosts and tests; the box keeps its state in the database.
type FileStore struct {
	Path string
}

// Load reads the state file.
func (f FileStore) Load() (State, error) {
	var s State
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return s, fmt.Errorf("load update state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("load update state %s: %w", f.Path, err)
	}
	return s, nil
}

// Save writes the state file atomically.
func (f FileStore) Save(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save update state: %w", err)
	}
	if err := writeFileAtomic(f.Path, append(b, '\n')); err != nil {
		return fmt.Errorf("save update state: %w", err)
	}
	return nil
}

func writeFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
