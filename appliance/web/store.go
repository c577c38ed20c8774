package web

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/storage"
)

// Layout of the "web" subsystem in bbolt:
//
//	web/box_name        the box's name, a JSON string (absent when none was chosen)
//	web/admin/password  the admin password's hash, a passwordHash
//	web/sessions/<hex>  one sessionRecord per session, keyed by the SHA-256 of its id
const (
	subsystem      = "web"
	bucketWeb      = "web"
	bucketAdmin    = "admin"
	bucketSessions = "sessions"
	keyPassword    = "password"
	keyBoxName     = "box_name"
)

func migrations() []storage.Migration {
	return []storage.Migration{{
		Version: 1,
		Name:    "admin and sessions buckets",
		Up: func(tx *bbolt.Tx) error {
			web := tx.Bucket([]byte(bucketWeb))
			if web == nil {
				return errors.New("bucket web is missing")
			}
			for _, name := range []string{bucketAdmin, bucketSessions} {
				if _, err := web.CreateBucketIfNotExists([]byte(name)); err != nil {
					return fmt.Errorf("create bucket web/%s: %w", name, err)
				}
			}
			return nil
		},
	}}
}

// errAlreadySetUp is returned by completeSetup when a password is already stored.
var errAlreadySetUp = errors.New("setup is already done")

// setupDone reports whether the admin password has been set.
func (s *Server) setupDone() (bool, error) {
	if s.setup.Load() {
		return true, nil
	}
	_, ok, err := s.admin.Get(keyPassword)
	if err != nil {
		return false, fmt.Errorf("read admin password: %w", err)
	}
	if ok {
		s.setup.Store(true)
	}
	return ok, nil
}

// completeSetup stores the admin password and the box name, unless a password is already
// stored. name has been validated; empty means no name.
func (s *Server) completeSetup(ctx context.Context, password, name string) error {
	h, err := s.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		_, ok, err := s.admin.GetTx(tx, keyPassword)
		if err != nil {
			return err
		}
		if ok {
			return errAlreadySetUp
		}
		if err := s.admin.PutTx(tx, keyPassword, h); err != nil {
			return err
		}
		if name != "" {
			return s.settings.PutTx(tx, keyBoxName, name)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errAlreadySetUp) {
			return err
		}
		return fmt.Errorf("store admin password: %w", err)
	}
	s.setup.Store(true)
	s.log.Info("setup complete: admin password set", "box_name", name)
	return nil
}

// boxName returns the name chosen at setup, or "" when there is none or it cannot be read.
func (s *Server) boxName() string {
	name, _, err := s.settings.Get(keyBoxName)
	if err != nil {
		s.log.Error("read box name", "err", err)
		return ""
	}
	return name
}

// validBoxName reports whether name is a hostname label: 1 to 63 characters from a-z, 0-9
// and '-', not starting or ending with '-'.
func validBoxName(name string) bool {
	if len(name) < 1 || len(name) > 63 || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
