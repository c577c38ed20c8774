package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// Subsystem is the agent's storage subsystem (its top-level bucket).
const Subsystem = "update"

// migrations of the update subsystem. None may ever be Breaking: after a rollback the older
// firmware must still read the attempt records to say why the update failed (see the package
// documentation). Records are JSON, so adding fields is a compatible change.
var migrations = []storage.Migration{
	{Version: 1, Name: "trust state, attempt history, versions", Up: func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		for _, name := range []string{bucketTrust, bucketAttempts, bucketVersions} {
			if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}},
}

const (
	bucketTrust    = "trust"
	bucketAttempts = "attempts"
	bucketVersions = "versions"
	keyState       = "state"
	keyVersions    = "versions"
	// maxAttempts is how many attempt records are kept; older ones are dropped.
	maxAttempts = 100
)

// Result is where an update attempt stands or how it ended.
type Result string

// The results of an attempt. Installing, Installed and Trying are in progress; the others are
// final.
const (
	Installing Result = "installing"  // writing the inactive slot
	Installed  Result = "installed"   // the new slot is set to be tried: waiting for a restart
	Trying     Result = "trying"      // the new slot booted: its health check runs
	Committed  Result = "committed"   // the new slot passed its health check and is the default
	Failed     Result = "failed"      // the install stopped before the switch: nothing changed
	Refused    Result = "refused"     // the release did not verify: nothing was written
	RolledBack Result = "rolled-back" // the new slot failed; the box is back on the previous one
)

// Final reports whether r ends an attempt.
func (r Result) Final() bool {
	switch r {
	case Installing, Installed, Trying:
		return false
	}
	return true
}

// Attempt is the record of one update attempt, kept in the database so that both the old and
// the new firmware can read it.
type Attempt struct {
	ID      uint64 `json:"id"`
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	// Source is where the release came from: "fleet", "upload", "usb", ...
	Source string `json:"source"`
	// The release and slot the box ran when the attempt started.
	FromVersion string `json:"from_version"`
	FromCounter uint64 `json:"from_counter"`
	FromSlot    string `json:"from_slot,omitempty"`
	// Slot is the slot the release was written to.
	Slot string `json:"slot,omitempty"`

	Started  time.Time `json:"started"`
	Switched time.Time `json:"switched,omitzero"` // the new slot's boot entry was written
	Booted   time.Time `json:"booted,omitzero"`   // the new slot's first boot seen by its agent
	Finished time.Time `json:"finished,omitzero"`

	Result Result `json:"result"`
	// Code is a short stable reason code: a release.Reason string ("signature", "rollback",
	// ...), "health", "no-start", "interrupted", "write", "esp", "switch".
	Code string `json:"code,omitempty"`
	// Reason says why in plain words (for the page), Detail what exactly happened (for logs).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Message is the attempt's outcome in one line for the page: "update to 1.3.0 failed: ...".
func (a Attempt) Message() string {
	if a.Version == "" {
		if a.Result == Refused {
			return "an update was refused: " + a.Reason
		}
		return "an update failed: " + a.Reason
	}
	switch a.Result {
	case Installing:
		return fmt.Sprintf("installing %s", a.Version)
	case Installed:
		return fmt.Sprintf("%s is installed and starts at the next restart", a.Version)
	case Trying:
		return fmt.Sprintf("%s is being checked", a.Version)
	case Committed:
		return fmt.Sprintf("updated to %s", a.Version)
	case Refused:
		return fmt.Sprintf("update to %s refused: %s", a.Version, a.Reason)
	}
	return fmt.Sprintf("update to %s failed: %s", a.Version, a.Reason)
}

// Versions records which release runs now and which ran before the last committed update.
type Versions struct {
	Current        string    `json:"current"`
	CurrentCounter uint64    `json:"current_counter"`
	CurrentSlot    string    `json:"current_slot,omitempty"`
	Previous       string    `json:"previous,omitempty"`
	PrevCounter    uint64    `json:"previous_counter,omitempty"`
	PreviousSlot   string    `json:"previous_slot,omitempty"`
	Since          time.Time `json:"since,omitzero"`
}

// records is the agent's view of its part of the database.
type records struct {
	db       *storage.DB
	trust    *storage.Table[release.State]
	attempts *storage.Table[Attempt]
	versions *storage.Table[Versions]
}

func openRecords(db *storage.DB) (*records, error) {
	if err := db.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("update records: %w", err)
	}
	return &records{
		db:       db,
		trust:    storage.NewTable[release.State](db, Subsystem, bucketTrust),
		attempts: storage.NewTable[Attempt](db, Subsystem, bucketAttempts),
		versions: storage.NewTable[Versions](db, Subsystem, bucketVersions),
	}, nil
}

func attemptKey(id uint64) string { return fmt.Sprintf("%020d", id) }

// add stores a new attempt, giving it the next ID, and drops the oldest beyond maxAttempts.
func (r *records) add(a *Attempt) error {
	err := r.db.Update(func(tx *bbolt.Tx) error {
		top := tx.Bucket([]byte(Subsystem))
		if top == nil {
			return errors.New("no update bucket")
		}
		b, err := top.CreateBucketIfNotExists([]byte(bucketAttempts))
		if err != nil {
			return err
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		a.ID = id
		if err := r.attempts.PutTx(tx, attemptKey(id), *a); err != nil {
			return err
		}
		// Keys are zero-padded IDs: the first ones are the oldest.
		var keys []string
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		for _, k := range keys[:max(len(keys)-maxAttempts, 0)] {
			if err := r.attempts.DeleteTx(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record update attempt: %w", err)
	}
	return nil
}

// put replaces an attempt.
func (r *records) put(a Attempt) error {
	if err := r.attempts.Put(attemptKey(a.ID), a); err != nil {
		return fmt.Errorf("record update attempt: %w", err)
	}
	return nil
}

// list returns the attempts, newest first, at most n (all when n <= 0).
func (r *records) list(n int) ([]Attempt, error) {
	var all []Attempt
	err := r.attempts.ForEach(func(_ string, a Attempt) error {
		all = append(all, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read update history: %w", err)
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	if n > 0 && len(all) > n {
		all = all[:n]
	}
	return all, nil
}

func (r *records) getVersions() (Versions, error) {
	v, _, err := r.versions.Get(keyVersions)
	if err != nil {
		return v, fmt.Errorf("read versions: %w", err)
	}
	return v, nil
}

func (r *records) putVersions(v Versions) error {
	if err := r.versions.Put(keyVersions, v); err != nil {
		return fmt.Errorf("record versions: %w", err)
	}
	return nil
}

// trustStore is the release.Store of the box: the trust state in the database, started from
// the root shipped in the image.
type trustStore struct {
	t       *storage.Table[release.State]
	shipped []byte
}

// errNoRoot means neither the database nor the image holds a trusted root.
var errNoRoot = errors.New("no trusted root")

// Load implements release.Store.
func (s *trustStore) Load() (release.State, error) {
	st, ok, err := s.t.Get(keyState)
	if err != nil {
		return st, fmt.Errorf("load update trust state: %w", err)
	}
	if ok && len(st.Root) > 0 {
		return st, nil
	}
	if len(s.shipped) == 0 {
		return release.State{}, errNoRoot
	}
	st, err = release.NewState(s.shipped)
	if err != nil {
		return st, fmt.Errorf("trusted root shipped in the image: %w", err)
	}
	return st, nil
}

// Save implements release.Store: one bbolt transaction, so all of it or nothing.
func (s *trustStore) Save(st release.State) error {
	if err := s.t.Put(keyState, st); err != nil {
		return fmt.Errorf("save update trust state: %w", err)
	}
	return nil
}

// has reports whether the database holds a trust state.
func (s *trustStore) has() bool {
	st, ok, err := s.t.Get(keyState)
	return err == nil && ok && len(st.Root) > 0
}
