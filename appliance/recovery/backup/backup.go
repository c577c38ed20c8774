package backup

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/storage"
)

// DefaultMaxSize bounds what Verify and Restore read (the encrypted payload, and the
// content once decompressed) unless ReadOptions.MaxSize says otherwise.
const DefaultMaxSize = 512 << 20

// Options configures Write.
type Options struct {
	Policy     Policy
	BoxVersion string // the firmware version writing the backup, for the page
	Network    string // the wallet's network (keys.Network's name), required
	// Accounts are the wallet's public accounts (hsm.Status().Accounts), carried so that a
	// restore can show them and check them against the mnemonic.
	Accounts []hsm.Account
	Now      func() time.Time
}

// ReadOptions configures Verify and Restore.
type ReadOptions struct {
	Policy Policy
	// Network, when set, is the network this box runs; a backup of another network is
	// refused with ErrOtherWallet.
	Network string
	// MaxSize bounds the payload; 0 means DefaultMaxSize.
	MaxSize int64
	// Audit, when set, is the target's audit trail (hsm.Custody.Audit): Restore appends a
	// record of the restore to it in the restore's own transaction, after the backup's
	// trail has replaced the target's.
	Audit *audit.Log
}

// Manifest describes a backup: its header, and what Verify found inside.
type Manifest struct {
	Header
	Accounts   []hsm.Account             `json:"accounts"`
	Subsystems []storage.SubsystemExport `json:"subsystems"`
	// Size is the backup's length in bytes; PayloadSize the length of its content before
	// compression.
	Size        int64 `json:"size"`
	PayloadSize int64 `json:"payload_size"`
}

// payloadManifest is the encrypted part of the manifest, ahead of the storage export.
type payloadManifest struct {
	Accounts []hsm.Account `json:"accounts"`
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// contentID is the keyed digest of a backup's content: HMAC-SHA256 keyed with a hash of the
// recipient's public key (which no backup holds) over the export's digest and the
// manifest's hash. Equal content gives equal ids, so the scheduler skips a backup that
// would change nothing; the key keeps the id from confirming guesses of the content.
func contentID(to hsm.BackupRecipient, exportDigest [sha256.Size]byte, manifest []byte) []byte {
	k := sha256.Sum256(append([]byte(contentIDLabel), to.PublicKey...))
	mac := hmac.New(sha256.New, k[:])
	mac.Write(exportDigest[:])
	mh := sha256.Sum256(manifest)
	mac.Write(mh[:])
	return mac.Sum(nil)[:contentIDSize]
}

// ContentID returns the content id a backup of db written now with opts would have (see
// Header.ContentID), reading the database once and writing nothing.
func ContentID(db *storage.DB, to hsm.BackupRecipient, opts Options) ([]byte, error) {
	if err := opts.Policy.validate(); err != nil {
		return nil, err
	}
	pm, err := json.Marshal(payloadManifest{Accounts: opts.Accounts})
	if err != nil {
		return nil, fmt.Errorf("content id: %w", err)
	}
	info, err := db.ExportSubsystems(io.Discard, opts.Policy.specs())
	if err != nil {
		return nil, fmt.Errorf("content id: %w", err)
	}
	return contentID(to, info.Digest, pm), nil
}

// Write writes an encrypted backup of db to w, made for the wallet whose backup key's
// public half is to. It reads the database in one transaction (twice: once to learn the
// content's digest for the header, once to write it), so writers carry on meanwhile.
func Write(w io.Writer, db *storage.DB, to hsm.BackupRecipient, opts Options) (*Manifest, error) {
	if err := opts.Policy.validate(); err != nil {
		return nil, err
	}
	if opts.Network == "" {
		return nil, errors.New("backup: the network is not set")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	pm, err := json.Marshal(payloadManifest{Accounts: opts.Accounts})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	specs := opts.Policy.specs()
	var m *Manifest
	err = db.View(func(tx *bbolt.Tx) error {
		first, err := storage.ExportSubsystemsTx(tx, io.Discard, specs)
		if err != nil {
			return err
		}
		hdr := &Header{
			Format: FormatVersion, Created: now().UTC(), BoxVersion: opts.BoxVersion, Network: opts.Network,
			Fingerprint: to.Fingerprint, WalletID: to.WalletID, KeyVersion: to.Version,
			KEM: kemX25519, KDF: kdfHKDFSHA256, AEAD: aeadExportOnly, Cipher: cipherName, Compression: compressName,
			ChunkSize: ChunkSize, ContentID: contentID(to, first.Digest, pm),
		}
		for _, s := range first.Subsystems {
			hdr.Contents = append(hdr.Contents, Content{Subsystem: s.Name, Version: s.Version, MinReader: s.MinReader, Only: s.Only, Except: s.Except})
		}
		enc, ex, err := to.Seal(hpkeInfo(to.WalletID))
		if err != nil {
			return err
		}
		hdr.Enc = enc
		if hdr.KeyCheck, err = ex.Export(keyCheckLabel, keyCheckSize); err != nil {
			return err
		}
		key, err := ex.Export(payloadLabel, chacha20KeySize)
		if err != nil {
			return err
		}
		defer clear(key)
		hdr.Nonce = make([]byte, noncePrefixSize)
		if _, err := rand.Read(hdr.Nonce); err != nil {
			return err
		}
		hb, sum, err := encodeHeader(hdr)
		if err != nil {
			return err
		}
		out := &countingWriter{w: w}
		if _, err := out.Write(hb); err != nil {
			return fmt.Errorf("write header: %w", err)
		}
		cw, err := newChunkWriter(out, key, hdr.Nonce, sum[:])
		if err != nil {
			return err
		}
		zw, err := zstd.NewWriter(cw, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return err
		}
		plain := &countingWriter{w: zw}
		if _, err := plain.Write(binary.BigEndian.AppendUint32(nil, uint32(len(pm)))); err != nil {
			return err
		}
		if _, err := plain.Write(pm); err != nil {
			return err
		}
		second, err := storage.ExportSubsystemsTx(tx, plain, specs)
		if err != nil {
			return err
		}
		if second.Digest != first.Digest {
			return errors.New("the database changed within one transaction")
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		if err := cw.Close(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		m = &Manifest{Header: *hdr, Accounts: opts.Accounts, Subsystems: second.Subsystems, Size: out.n, PayloadSize: plain.n}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", db.Path(), err)
	}
	return m, nil
}

const chacha20KeySize = 32

// ReadHeader reads the clear header of a backup, without a key: enough to list backups
// (date, wallet, firmware) and to tell one for another wallet. Its errors are those of
// Verify for the header.
func ReadHeader(r io.Reader) (*Header, error) {
	h, _, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return h, nil
}

// Verify reads a whole backup with key and checks everything Restore would, writing
// nothing: header, wallet, key, every chunk, the content's integrity, and that this
// firmware can read its data. It returns the backup's manifest.
func Verify(r io.Reader, key *hsm.BackupKey, opts ReadOptions) (*Manifest, error) {
	m, _, err := open(r, key, opts)
	if err != nil {
		return nil, fmt.Errorf("verify backup: %w", err)
	}
	return m, nil
}

// Restore verifies a backup exactly as Verify does and then writes its content into db in
// one transaction, replacing the subsystems it holds (except the policy's Skip items) and
// keeping what backups never hold (the new box's sealed seed, password and sessions). On
// any error nothing is written.
//
// On a box that already has a wallet, pass its custody's BackupKey, so that only that
// wallet's backups restore; a key from typed words is for a box not set up yet, which is
// then set up with the same words. Services that keep the restored subsystems' state in
// memory (the wallet service) must be stopped during the restore and started afterwards.
func Restore(r io.Reader, key *hsm.BackupKey, db *storage.DB, opts ReadOptions) (*Manifest, error) {
	m, export, err := open(r, key, opts)
	if err != nil {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	iopts := storage.ImportOptions{Known: opts.Policy.Known, Skip: opts.Policy.Skip, MaxBytes: maxSize(opts)}
	if opts.Audit != nil {
		iopts.Then = func(tx *bbolt.Tx) error {
			_, err := opts.Audit.AppendTx(tx, audit.EventBackup, fmt.Sprintf("restored the backup of wallet %s made %s by firmware %s",
				m.Fingerprint, m.Created.Format(time.RFC3339), m.BoxVersion))
			return err
		}
	}
	_, err = db.ImportSubsystems(bytes.NewReader(export), iopts)
	if err != nil {
		return nil, fmt.Errorf("restore backup: %w", storageError(err))
	}
	return m, nil
}

func maxSize(opts ReadOptions) int64 {
	if opts.MaxSize > 0 {
		return opts.MaxSize
	}
	return DefaultMaxSize
}

// storageError classifies an error of the storage export.
func storageError(err error) error {
	switch {
	case errors.Is(err, storage.ErrSchemaTooNew), errors.Is(err, storage.ErrUnknownSubsystem):
		return fmt.Errorf("%w: %w", ErrNewerSchema, err)
	case errors.Is(err, storage.ErrBadExport):
		return fmt.Errorf("%w: %w", ErrCorrupted, err)
	}
	return err
}

// countingReader counts the bytes read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// open reads, authenticates and decrypts a backup and returns its manifest and the storage
// export it holds, checked.
func open(r io.Reader, key *hsm.BackupKey, opts ReadOptions) (*Manifest, []byte, error) {
	if err := opts.Policy.validate(); err != nil {
		return nil, nil, err
	}
	limit := maxSize(opts)
	cr := &countingReader{r: r}
	hdr, sum, err := readHeader(cr)
	if err != nil {
		return nil, nil, err
	}
	if hdr.WalletID != key.WalletID() {
		return nil, nil, &WalletMismatchError{BackupFingerprint: hdr.Fingerprint, BackupWallet: hdr.WalletID, BackupNetwork: hdr.Network,
			KeyFingerprint: key.Fingerprint(), KeyWallet: key.WalletID()}
	}
	if opts.Network != "" && hdr.Network != opts.Network {
		return nil, nil, &WalletMismatchError{BackupFingerprint: hdr.Fingerprint, BackupWallet: hdr.WalletID, BackupNetwork: hdr.Network,
			KeyFingerprint: key.Fingerprint(), KeyWallet: key.WalletID(), Network: opts.Network}
	}
	// The header is intact (its checksum matched); refuse early what this firmware cannot
	// take. The chunks authenticate the header below.
	if err := opts.Policy.checkContents(hdr.Contents); err != nil {
		return nil, nil, err
	}
	ex, err := key.Open(hdr.Enc, hpkeInfo(hdr.WalletID))
	if err != nil {
		if errors.Is(err, hsm.ErrBackupKey) {
			return nil, nil, fmt.Errorf("%w: %w", ErrCorrupted, err)
		}
		return nil, nil, err
	}
	check, err := ex.Export(keyCheckLabel, keyCheckSize)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(check, hdr.KeyCheck) != 1 {
		return nil, nil, fmt.Errorf("%w: the backup is of wallet %s, but its key check does not match this wallet's key", ErrWrongKey, hdr.Fingerprint)
	}
	pk, err := ex.Export(payloadLabel, chacha20KeySize)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pk)
	comp, err := openChunks(cr, pk, hdr.Nonce, sum[:], limit)
	if err != nil {
		return nil, nil, err
	}
	plain, err := decompress(comp, limit)
	if err != nil {
		return nil, nil, err
	}
	if len(plain) < 4 || int64(binary.BigEndian.Uint32(plain)) > int64(len(plain)-4) {
		return nil, nil, fmt.Errorf("%w: the content has no manifest", ErrCorrupted)
	}
	pmLen := int(binary.BigEndian.Uint32(plain))
	var pm payloadManifest
	if err := json.Unmarshal(plain[4:4+pmLen], &pm); err != nil {
		return nil, nil, fmt.Errorf("%w: manifest: %v", ErrCorrupted, err)
	}
	export := plain[4+pmLen:]
	info, err := storage.ReadExport(bytes.NewReader(export), storage.ImportOptions{Known: opts.Policy.Known, MaxBytes: limit})
	if err != nil {
		return nil, nil, storageError(err)
	}
	if !sameContents(hdr.Contents, info.Subsystems) {
		return nil, nil, fmt.Errorf("%w: the header's list of contents does not match the content", ErrCorrupted)
	}
	return &Manifest{Header: *hdr, Accounts: pm.Accounts, Subsystems: info.Subsystems, Size: cr.n, PayloadSize: int64(len(plain))}, export, nil
}

func sameContents(hdr []Content, subs []storage.SubsystemExport) bool {
	return slices.EqualFunc(hdr, subs, func(c Content, s storage.SubsystemExport) bool {
		return c.Subsystem == s.Name && c.Version == s.Version && c.MinReader == s.MinReader &&
			slices.Equal(c.Only, s.Only) && slices.Equal(c.Except, s.Except)
	})
}

func decompress(comp []byte, limit int64) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	defer dec.Close()
	plain, err := io.ReadAll(io.LimitReader(dec, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupted, err)
	}
	if int64(len(plain)) > limit {
		return nil, fmt.Errorf("%w: the content is larger than the limit of %d bytes", ErrCorrupted, limit)
	}
	return plain, nil
}
