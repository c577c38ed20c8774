package rescue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

// BackupFile is a backup found on a stick, as its clear header describes it; its Problem is
// said in the owner's words (Explain).
type BackupFile = backup.File

// ListBackups lists the backup files (backup.FileSuffix) in dir, newest first.
func ListBackups(dir string) ([]BackupFile, error) {
	out, err := backup.List(dir)
	for i := range out {
		if out[i].Err != nil {
			out[i].Problem = Explain(out[i].Err)
		}
	}
	return out, err
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
var subsystems = backup.Subsystems()

// CheckBackup reads and authenticates the whole backup with the key from the mnemonic
// without any database: it refuses another wallet's, a damaged, a cut-short or a re-keyed
// file before the internal disk is touched (Machine.Restore calls it before it mounts, or
// formats, the data partition). Schema versions are not judged here: RestoreBackup does
// that against the database it restores into.
func CheckBackup(file, mnemonic string, passphrase []byte, network string) (*backup.Manifest, error) {
	key, err := hsm.BackupKeyFromMnemonic(mnemonic, passphrase)
	if err != nil {
		return nil, fmt.Errorf("check backup: %w", err)
	}
	defer key.Zero()
	hdr, err := readHeaderFile(file)
	if err != nil {
		return nil, fmt.Errorf("check backup %s: %w", filepath.Base(file), err)
	}
	known := map[string]int{}
	for _, c := range hdr.Contents {
		known[c.Subsystem] = c.Version
	}
	for _, s := range subsystems {
		known[s] = max(known[s], 1)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("check backup: %w", err)
	}
	defer f.Close()
	m, err := backup.Verify(f, key, backup.ReadOptions{Policy: backup.DefaultPolicy(known), Network: network})
	if err != nil {
		return nil, fmt.Errorf("check backup %s: %w", filepath.Base(file), err)
	}
	return m, nil
}

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
