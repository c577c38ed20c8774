package rescue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

// BackupFile is a backup found on a stick, as its clear header describes it.
type BackupFile struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created,omitempty"`
	BoxVersion  string    `json:"box_version,omitempty"`
	Network     string    `json:"network,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	// Problem says why the header cannot be read (the file is still listed: a damaged
	// backup is something the owner must hear about).
	Problem string `json:"problem,omitempty"`
}

// ListBackups lists the backup files (backup.FileSuffix) in dir, newest first.
func ListBackups(dir string) ([]BackupFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []BackupFile
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), backup.FileSuffix) {
			continue
		}
		bf := BackupFile{Name: e.Name()}
		if fi, err := e.Info(); err == nil {
			bf.Size = fi.Size()
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			bf.Problem = err.Error()
		} else {
			h, err := backup.ReadHeader(f)
			f.Close()
			if err != nil {
				bf.Problem = Explain(err)
			} else {
				bf.Created, bf.BoxVersion, bf.Network, bf.Fingerprint = h.Created, h.BoxVersion, h.Network, h.Fingerprint
			}
		}
		out = append(out, bf)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// RestoreOptions configure RestoreBackup.
type RestoreOptions struct {
	// File is the backup; DBPath the internal data partition's database (created if
	// missing).
	File, DBPath string
	// Mnemonic and Passphrase (BIP39, optional) give the backup key.
	Mnemonic   string
	Passphrase []byte
	// Network is the box's network (anya.network), "" to take the backup's.
	Network string
	// Known are the schema versions this firmware's subsystems know. Subsystems the
	// database has (the installed firmware ran) are taken from it when Known lacks them.
	Known map[string]int
}

// subsystems are those DefaultPolicy names.
var subsystems = []string{backup.SubsystemWeb, backup.SubsystemBackend, backup.SubsystemWallet,
	backup.SubsystemHSM, backup.SubsystemAudit, backup.SubsystemUpdate}

// RestoreBackup verifies the backup with the key from the mnemonic (backup.Verify reads and
// authenticates all of it), then restores it into the database (backup.Restore: all or
// nothing, in one transaction). Any error leaves the database as it was; Explain turns it
// into a sentence for the owner.
func RestoreBackup(o RestoreOptions) (*backup.Manifest, error) {
	key, err := hsm.BackupKeyFromMnemonic(o.Mnemonic, o.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer key.Zero()
	db, err := storage.Open(o.DBPath, storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("restore: open the database: %w", err)
	}
	defer db.Close()
	known, err := backup.KnownSchemas(db, subsystems...)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for k, v := range o.Known {
		known[k] = v
	}
	hdr, err := readHeaderFile(o.File)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", filepath.Base(o.File), err)
	}
	// A subsystem neither this firmware's list nor the database knows is taken at the
	// backup's version: the installed firmware migrates it at its start, or refuses data
	// from a newer schema there without changing it (storage.ErrSchemaTooNew).
	for _, c := range hdr.Contents {
		if _, ok := known[c.Subsystem]; !ok {
			known[c.Subsystem] = c.Version
		}
	}
	for _, s := range subsystems {
		if _, ok := known[s]; !ok {
			known[s] = 1
		}
	}
	opts := backup.ReadOptions{Policy: backup.DefaultPolicy(known), Network: o.Network}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if _, err := backup.Verify(f, key, opts); err != nil {
		return nil, fmt.Errorf("restore %s: %w", filepath.Base(o.File), err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	m, err := backup.Restore(f, key, db, opts)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", filepath.Base(o.File), err)
	}
	return m, nil
}

func readHeaderFile(name string) (*backup.Header, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return backup.ReadHeader(f)
}

// Explain says in one sentence for the owner what went wrong with a backup.
func Explain(err error) string {
	var wm *backup.WalletMismatchError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &wm), errors.Is(err, backup.ErrOtherWallet):
		return "This backup belongs to another wallet (or another network): check the words and the BIP39 passphrase, or choose another file. Nothing was changed."
	case errors.Is(err, backup.ErrTruncated):
		return "This backup is incomplete: the file was cut short (copied while it was written, or the stick was pulled). Choose an older backup. Nothing was changed."
	case errors.Is(err, backup.ErrCorrupted), errors.Is(err, backup.ErrNotBackup):
		return "This backup is damaged and cannot be read. Choose an older backup. Nothing was changed."
	case errors.Is(err, backup.ErrWrongKey):
		return "This backup does not open with the key of these words: its key was replaced. Do not trust this file. Nothing was changed."
	case errors.Is(err, backup.ErrNewerFormat), errors.Is(err, backup.ErrNewerSchema):
		return "This backup was made by newer firmware: reinstall a newer release first. Nothing was changed."
	case strings.Contains(err.Error(), "mnemonic"), strings.Contains(err.Error(), "word"):
		return "The words are not a valid recovery phrase: check each word and their order. Nothing was changed."
	}
	return "The restore failed: " + err.Error() + ". Nothing was changed."
}
