package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// ErrSchemaTooNew is returned (wrapped) by Migrate when the stored data was
// written by a newer schema that the given migrations cannot read safely,
// typically after a firmware rollback.
var ErrSchemaTooNew = errors.New("stored schema is too new for this code")

// ErrInvalidMigrations is returned (wrapped) by Migrate when the subsystem
// name or the list of migrations is malformed.
var ErrInvalidMigrations = errors.New("invalid migrations")

// Migration is one ordered step of a subsystem's schema.
type Migration struct {
	// Version is 1 for the first migration of a subsystem and increases by
	// exactly one for each following migration.
	Version int

	// Name is a short description, recorded in the meta bucket.
	Name string

	// Breaking is true when code that only knows earlier versions can no
	// longer read the data safely. A non-breaking migration promises that
	// such code can still read and write the data.
	Breaking bool

	// Up performs the migration. It runs in a write transaction in which
	// the subsystem's top-level bucket already exists; returning an error
	// rolls back everything Up did.
	Up func(tx *bbolt.Tx) error
}

// AppliedMigration is the record of a migration kept in the meta bucket.
type AppliedMigration struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	Breaking  bool      `json:"breaking"`
	AppliedAt time.Time `json:"applied_at"`
}

// Schema describes the stored schema state of one subsystem.
type Schema struct {
	// Version is the number of the last applied migration, 0 if none.
	Version int

	// MinReaderVersion is the lowest schema version code must know to
	// read the data: the version of the newest breaking migration, and at
	// least 1 once any migration has been applied.
	MinReaderVersion int

	// History lists the applied migrations, oldest first.
	History []AppliedMigration
}

// Keys of the meta bucket. Each subsystem has a bucket
// MetaBucket/schema/<subsystem> holding its current state and a nested
// history bucket with one record per applied migration.
const (
	metaSchema    = "schema"
	keyVersion    = "version"
	keyMinReader  = "min_reader"
	keyName       = "name"
	keyAppliedAt  = "applied_at"
	bucketHistory = "history"
)

// schemaState is the part of a subsystem's stored state Migrate needs.
type schemaState struct {
	version   int
	minReader int
	hasBucket bool // the subsystem's top-level bucket exists
}

// Migrate brings one subsystem's schema up to date. It creates the top-level
// bucket named after the subsystem, then runs each pending migration in its
// own write transaction, recording version, name, time and the minimum reader
// version in the meta bucket in the same transaction. If a migration fails,
// its transaction is rolled back, the stored version stays at the previous
// migration, and the error is returned.
//
// If the stored version is newer than the last migration given, the data was
// written by newer code. Migrate then returns nil without changing anything
// when all of the newer migrations were non-breaking, and an error wrapping
// ErrSchemaTooNew when at least one of them was breaking.
//
// The migrations must be numbered 1, 2, 3, ... in order; otherwise Migrate
// returns an error wrapping ErrInvalidMigrations. Subsystem names must be
// non-empty and must not start with an underscore. Concurrent calls for the
// same subsystem are safe: each migration is applied once.
func (db *DB) Migrate(subsystem string, migrations []Migration) error {
	if err := validateSubsystem(subsystem); err != nil {
		return fmt.Errorf("migrate %q: %w", subsystem, err)
	}
	if err := validateMigrations(migrations); err != nil {
		return fmt.Errorf("migrate %s: %w", subsystem, err)
	}
	known := len(migrations)

	// Most starts find nothing to do; settle that without a write
	// transaction, which also lets read-only databases pass.
	var st schemaState
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		st, err = readSchemaState(tx, subsystem)
		return err
	}); err != nil {
		return fmt.Errorf("migrate %s: %w", subsystem, err)
	}
	if err := checkNotTooNew(subsystem, st, known); err != nil {
		return err
	}
	if st.hasBucket && st.version >= known {
		return nil
	}

	if !st.hasBucket {
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			cur, err := readSchemaState(tx, subsystem)
			if err != nil {
				return err
			}
			if err := checkNotTooNew(subsystem, cur, known); err != nil {
				return err
			}
			db.MarkChanged(tx, subsystem)
			_, err = tx.CreateBucketIfNotExists([]byte(subsystem))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: create bucket: %w", subsystem, err)
		}
	}

	for _, m := range migrations[min(st.version, known):] {
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			cur, err := readSchemaState(tx, subsystem)
			if err != nil {
				return err
			}
			if cur.version >= m.Version {
				return nil // applied by a concurrent call
			}
			if cur.version != m.Version-1 {
				return fmt.Errorf("stored version is %d, expected %d", cur.version, m.Version-1)
			}
			if err := m.Up(tx); err != nil {
				return err
			}
			db.MarkChanged(tx, subsystem)
			minReader := max(cur.minReader, 1)
			if m.Breaking {
				minReader = m.Version
			}
			return recordMigration(tx, subsystem, m, minReader, time.Now().UTC())
		})
		if err != nil {
			return fmt.Errorf("migrate %s to version %d (%s): %w", subsystem, m.Version, m.Name, err)
		}
	}
	return nil
}

func checkNotTooNew(subsystem string, st schemaState, known int) error {
	if st.version > known && st.minReader > known {
		return fmt.Errorf("migrate %s: stored schema version %d needs code that knows at least version %d, this code knows %d: %w",
			subsystem, st.version, st.minReader, known, ErrSchemaTooNew)
	}
	return nil
}

func validateSubsystem(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty subsystem name", ErrInvalidMigrations)
	case strings.HasPrefix(name, "_"):
		return fmt.Errorf("%w: subsystem names starting with '_' are reserved", ErrInvalidMigrations)
	}
	return nil
}

func validateMigrations(migrations []Migration) error {
	for i, m := range migrations {
		switch {
		case m.Version != i+1:
			return fmt.Errorf("%w: migration at index %d (%q) has version %d, want %d: versions must run 1, 2, 3, ... without gaps",
				ErrInvalidMigrations, i, m.Name, m.Version, i+1)
		case m.Name == "":
			return fmt.Errorf("%w: migration %d has no name", ErrInvalidMigrations, m.Version)
		case m.Up == nil:
			return fmt.Errorf("%w: migration %d (%s) has no Up function", ErrInvalidMigrations, m.Version, m.Name)
		}
	}
	return nil
}

// schemaBucket returns MetaBucket/schema/<subsystem>, or nil if it does not
// exist.
func schemaBucket(tx *bbolt.Tx, subsystem string) *bbolt.Bucket {
	meta := tx.Bucket([]byte(MetaBucket))
	if meta == nil {
		return nil
	}
	schema := meta.Bucket([]byte(metaSchema))
	if schema == nil {
		return nil
	}
	return schema.Bucket([]byte(subsystem))
}

func readSchemaState(tx *bbolt.Tx, subsystem string) (schemaState, error) {
	st := schemaState{hasBucket: tx.Bucket([]byte(subsystem)) != nil}
	b := schemaBucket(tx, subsystem)
	if b == nil {
		return st, nil
	}
	var err error
	if st.version, err = readInt(b, keyVersion); err != nil {
		return st, err
	}
	if st.minReader, err = readInt(b, keyMinReader); err != nil {
		return st, err
	}
	return st, nil
}

// readInt reads a non-negative decimal integer; a missing key reads as 0.
func readInt(b *bbolt.Bucket, key string) (int, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("corrupt meta value %s=%q", key, v)
	}
	return n, nil
}

func recordMigration(tx *bbolt.Tx, subsystem string, m Migration, minReader int, now time.Time) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(MetaBucket))
	if err != nil {
		return err
	}
	schema, err := meta.CreateBucketIfNotExists([]byte(metaSchema))
	if err != nil {
		return err
	}
	b, err := schema.CreateBucketIfNotExists([]byte(subsystem))
	if err != nil {
		return err
	}
	for _, kv := range [...][2]string{
		{keyVersion, strconv.Itoa(m.Version)},
		{keyMinReader, strconv.Itoa(minReader)},
		{keyName, m.Name},
		{keyAppliedAt, now.Format(time.RFC3339Nano)},
	} {
		if err := b.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
			return fmt.Errorf("record %s: %w", kv[0], err)
		}
	}
	hist, err := b.CreateBucketIfNotExists([]byte(bucketHistory))
	if err != nil {
		return err
	}
	rec, err := json.Marshal(AppliedMigration{Version: m.Version, Name: m.Name, Breaking: m.Breaking, AppliedAt: now})
	if err != nil {
		return err
	}
	return hist.Put(historyKey(m.Version), rec)
}

// historyKey is zero-padded so that byte order is version order.
func historyKey(version int) []byte {
	return fmt.Appendf(nil, "%010d", version)
}

// SchemaVersion returns the stored schema version of subsystem, 0 when it
// has never been migrated.
func (db *DB) SchemaVersion(subsystem string) (int, error) {
	var v int
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		st, err := readSchemaState(tx, subsystem)
		v = st.version
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", subsystem, err)
	}
	return v, nil
}

// Schema returns the stored schema state of subsystem, including its
// migration history. A subsystem that was never migrated has a zero Schema.
func (db *DB) Schema(subsystem string) (Schema, error) {
	var s Schema
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		st, err := readSchemaState(tx, subsystem)
		if err != nil {
			return err
		}
		s.Version, s.MinReaderVersion = st.version, st.minReader
		b := schemaBucket(tx, subsystem)
		if b == nil {
			return nil
		}
		hist := b.Bucket([]byte(bucketHistory))
		if hist == nil {
			return nil
		}
		return hist.ForEach(func(k, v []byte) error {
			var rec AppliedMigration
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("corrupt history record %s: %w", k, err)
			}
			s.History = append(s.History, rec)
			return nil
		})
	})
	if err != nil {
		return Schema{}, fmt.Errorf("schema of %s: %w", subsystem, err)
	}
	return s, nil
}

// subsystemVersions returns the stored schema version of every subsystem.
func subsystemVersions(tx *bbolt.Tx) (map[string]int, error) {
	versions := make(map[string]int)
	meta := tx.Bucket([]byte(MetaBucket))
	if meta == nil {
		return versions, nil
	}
	schema := meta.Bucket([]byte(metaSchema))
	if schema == nil {
		return versions, nil
	}
	err := schema.ForEachBucket(func(name []byte) error {
		v, err := readInt(schema.Bucket(name), keyVersion)
		if err != nil {
			return fmt.Errorf("subsystem %s: %w", name, err)
		}
		versions[string(name)] = v
		return nil
	})
	return versions, err
}
