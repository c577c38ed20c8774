package backend

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/storage"
)

// Subsystem is the storage subsystem (top-level bucket) of the backend settings.
const Subsystem = "backend"

const (
	settingsBucket = "settings"
	currentKey     = "current"
)

var migrations = []storage.Migration{{
	Version: 1,
	Name:    "settings: the owner's choice of chain backend",
	Up: func(tx *bbolt.Tx) error {
		_, err := tx.Bucket([]byte(Subsystem)).CreateBucketIfNotExists([]byte(settingsBucket))
		return err
	},
}}

func table(db *storage.DB) (*storage.Table[Settings], error) {
	if err := db.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("backend: migrate: %w", err)
	}
	return storage.NewTable[Settings](db, Subsystem, settingsBucket), nil
}

// Load returns the saved settings; ok is false when none were saved yet.
func Load(db *storage.DB) (s Settings, ok bool, err error) {
	t, err := table(db)
	if err != nil {
		return Settings{}, false, err
	}
	s, ok, err = t.Get(currentKey)
	if err != nil {
		return Settings{}, false, fmt.Errorf("backend: load settings: %w", err)
	}
	return s, ok, nil
}

// Save validates the settings and stores them, replacing the saved ones. Invalid settings
// are refused with a FieldErrors and nothing is written.
func Save(db *storage.DB, s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("backend: save: %w", err)
	}
	t, err := table(db)
	if err != nil {
		return err
	}
	if err := t.Put(currentKey, s); err != nil {
		return fmt.Errorf("backend: save settings: %w", err)
	}
	return nil
}
