package hsm

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
)

// # Backup keys
//
// The box's encrypted backups (package appliance/recovery/backup) are encrypted to a key
// pair derived from the wallet seed, so that a new box can open them once the owner types
// the mnemonic, while the sealed seed stays bound to the old box's TPM or YubiKey.
//
// The pair is asymmetric: backups are made with the public half alone, which the custody
// stores beside the descriptors, so the box keeps taking automatic backups while the wallet
// is locked (a passphrase or YubiKey wallet is locked after every restart until the owner
// unlocks it, yet its history keeps changing). Only the private half, derived from the seed,
// opens a backup.
//
// Derivation, version 1 (BackupKeyVersion):
//
//	child     = BIP32 private key at m/1095653697'/0'/0' of the wallet's master key
//	            (1095653697 = 0x414E5941, "ANYA", used as a hardened purpose; 0' = backups;
//	            0' = the first key version). The path is hardened all the way, so no xpub the
//	            box exports leads to it, and no BIP44/49/84/86/48 wallet uses it.
//	ikm       = the child's 32-byte secp256k1 private key
//	key pair  = DHKEM(X25519, HKDF-SHA256).DeriveKeyPair(ikm)   (RFC 9180, section 7.1.3)
//	wallet id = first 16 bytes of SHA-256("anya backup wallet id v1" || master fingerprint
//	            (4 bytes) || the pair's X25519 public key (32 bytes))
//
// BIP32 private derivation ignores the network (only the serialization's version bytes
// differ), so a mnemonic has one backup key on every network; a backup records its network
// separately. The wallet id is public and written in the clear in every backup, so that a
// backup made for another wallet is recognised before anything is decrypted; it is a hash of
// a public key that only the seed leads to, so it tells nothing about the wallet's addresses.
//
// A backup's encryption key is an HPKE (RFC 9180, base mode) exporter secret: the backup
// writer calls BackupRecipient.Seal, which runs the KEM with a fresh ephemeral key and gives
// the encapsulated key to store in the backup; the reader calls BackupKey.Open with it. The
// HPKE context only exports secrets (AEAD "export only"); the backup format does its own
// chunked encryption with them. The private key never leaves this package: BackupKey keeps
// the 32-byte ikm, which Zero clears, and rebuilds the X25519 key inside Open. Go's
// crypto/ecdh and crypto/hpke keep their own copies of the private key and the shared
// secret, which cannot be cleared, so zeroing is best effort as everywhere in hsm.

// BackupKeyVersion is the backup-key derivation described above.
const BackupKeyVersion = 1

// backupPath is m/1095653697'/0'/0'.
var backupPath = keys.Path{0x414E5941 + keys.Hardened, 0 + keys.Hardened, 0 + keys.Hardened}

// walletIDLabel prefixes the hash that makes a wallet id.
const walletIDLabel = "anya backup wallet id v1"

// ErrBackupKey is returned (wrapped) by BackupKey.Open when the encapsulated key of a backup
// cannot be used at all (malformed); a well-formed one for another key gives other secrets,
// which the backup format detects.
var ErrBackupKey = errors.New("the backup's encapsulated key is malformed")

// WalletID identifies a wallet in its backups. It is public.
type WalletID [16]byte

// String is the id in lower-case hex.
func (id WalletID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as hex.
func (id WalletID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex.
func (id *WalletID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("wallet id: want %d hex digits, got %d", 2*len(id), len(b))
	}
	_, err := hex.Decode(id[:], b)
	if err != nil {
		return fmt.Errorf("wallet id: %w", err)
	}
	return nil
}

// BackupExporter derives the secrets of one backup from its HPKE context: the same
// exporterContext and length give the same bytes on the writing and the reading side.
type BackupExporter interface {
	Export(exporterContext string, length int) ([]byte, error)
}

// BackupRecipient is the public half of a wallet's backup key: enough to make backups, not
// to read them. It is stored with the wallet's public records.
type BackupRecipient struct {
	Version     int      `json:"version"`
	Fingerprint string   `json:"fingerprint"` // the wallet's master fingerprint
	WalletID    WalletID `json:"wallet_id"`
	PublicKey   []byte   `json:"public_key"` // X25519, 32 bytes
}

func backupSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.ExportOnly()
}

// Seal starts the encryption of one backup to r. enc is the encapsulated key the backup must
// store (32 bytes); the exporter gives the backup's secrets. info binds the context to the
// caller's purpose and must be given to Open again.
func (r BackupRecipient) Seal(info []byte) (enc []byte, ex BackupExporter, err error) {
	if r.Version != BackupKeyVersion {
		return nil, nil, fmt.Errorf("backup recipient: key version %d, this code makes version %d", r.Version, BackupKeyVersion)
	}
	kem, kdf, aead := backupSuite()
	pub, err := kem.NewPublicKey(r.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("backup recipient: public key: %w", err)
	}
	enc, s, err := hpke.NewSender(pub, kdf, aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("backup recipient: %w", err)
	}
	return enc, s, nil
}

// BackupKey is the private half of a wallet's backup key. It is secret: its String is
// redacted, it has no accessor for the key, and the holder calls Zero when done.
type BackupKey struct {
	rec BackupRecipient
	ikm []byte // nil once zeroed
}

// Recipient returns the public half.
func (k *BackupKey) Recipient() BackupRecipient {
	r := k.rec
	r.PublicKey = append([]byte(nil), k.rec.PublicKey...)
	return r
}

// WalletID is the id of the wallet the key belongs to.
func (k *BackupKey) WalletID() WalletID { return k.rec.WalletID }

// Fingerprint is the master fingerprint of the wallet the key belongs to.
func (k *BackupKey) Fingerprint() string { return k.rec.Fingerprint }

// Open recovers the HPKE context of a backup from its encapsulated key enc and info (as given
// to Seal). A malformed enc gives ErrBackupKey; an enc made for another key gives a context
// whose secrets differ, which the caller must detect (the backup format stores a key check).
func (k *BackupKey) Open(enc, info []byte) (BackupExporter, error) {
	if k == nil || k.ikm == nil {
		return nil, errors.New("backup key: the key was zeroed")
	}
	kem, kdf, aead := backupSuite()
	priv, err := kem.DeriveKeyPair(k.ikm)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	r, err := hpke.NewRecipient(enc, priv, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBackupKey, err)
	}
	return r, nil
}

// Zero clears the key; it is unusable afterwards.
func (k *BackupKey) Zero() {
	if k == nil {
		return
	}
	seal.Zero(k.ikm)
	k.ikm = nil
}

// String never shows key material.
func (k *BackupKey) String() string {
	if k == nil || k.ikm == nil {
		return "hsm.BackupKey(zeroed)"
	}
	return fmt.Sprintf("hsm.BackupKey(wallet %s, redacted)", k.rec.WalletID)
}

// GoString keeps %#v from printing the key.
func (k *BackupKey) GoString() string { return k.String() }

// backupKeyFromSeed derives the backup key of a BIP39 seed. The caller zeroes seed.
func backupKeyFromSeed(seed []byte) (*BackupKey, error) {
	// The network only chooses version bytes; the private keys are the same on all.
	master, err := keys.NewMasterKey(seed, keys.Mainnet)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	defer master.Zero()
	fp, err := master.Fingerprint()
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	child, err := master.Derive(backupPath)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	defer child.Zero()
	priv, err := child.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	raw := priv.Key.Bytes()
	priv.Zero()
	ikm := append([]byte(nil), raw[:]...)
	clear(raw[:])

	kem, _, _ := backupSuite()
	kp, err := kem.DeriveKeyPair(ikm)
	if err != nil {
		seal.Zero(ikm)
		return nil, fmt.Errorf("backup key: %w", err)
	}
	pub := kp.PublicKey().Bytes()
	h := sha256.New()
	h.Write([]byte(walletIDLabel))
	h.Write(fp[:])
	h.Write(pub)
	k := &BackupKey{ikm: ikm, rec: BackupRecipient{Version: BackupKeyVersion, Fingerprint: fp.String(), PublicKey: pub}}
	copy(k.rec.WalletID[:], h.Sum(nil))
	return k, nil
}

// BackupKeyFromMnemonic derives the backup key of the wallet a mnemonic (and optional BIP39
// passphrase) make: what a new box does when the owner types the mnemonic to open a backup.
// The caller keeps and zeroes passphrase, and zeroes the key.
func BackupKeyFromMnemonic(phrase string, passphrase []byte) (*BackupKey, error) {
	seed, err := keys.SeedFromMnemonic(phrase, passphrase)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	defer seal.Zero(seed)
	return backupKeyFromSeed(seed)
}

// BackupKey returns the private backup key of the unlocked wallet, to read (verify or
// restore) its backups on this box. It fails with ErrLocked while the wallet is locked and
// with ErrNoWallet before setup. Every call is recorded in the audit trail. The caller
// zeroes the key.
func (c *Custody) BackupKey() (*BackupKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok, err := c.record(); err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("backup key: %w", ErrNoWallet)
	}
	if c.seed == nil {
		return nil, fmt.Errorf("backup key: %w", ErrLocked)
	}
	k, err := backupKeyFromSeed(c.seed)
	if err != nil {
		return nil, err
	}
	c.appendAudit(audit.EventBackup, "backup key opened to read a backup")
	return k, nil
}

// BackupRecipient returns the public half of the wallet's backup key, with which backups are
// made. It is stored with the wallet, so it is available while the wallet is locked; a
// wallet set up before backups existed gets it at its next unlock, and until then this
// returns ErrLocked. Before setup it returns ErrNoWallet.
func (c *Custody) BackupRecipient() (BackupRecipient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok, err := c.record()
	if err != nil {
		return BackupRecipient{}, fmt.Errorf("backup recipient: %w", err)
	}
	if !ok {
		return BackupRecipient{}, fmt.Errorf("backup recipient: %w", ErrNoWallet)
	}
	if rec.Backup == nil {
		if c.seed == nil {
			return BackupRecipient{}, fmt.Errorf("backup recipient: not recorded yet, unlock the wallet once: %w", ErrLocked)
		}
		if err := c.recordBackupRecipient(&rec, c.seed); err != nil {
			return BackupRecipient{}, err
		}
	}
	return *rec.Backup, nil
}

// recordBackupRecipient derives the backup recipient of seed into rec and stores rec. The
// caller holds c.mu.
func (c *Custody) recordBackupRecipient(rec *walletRecord, seed []byte) error {
	k, err := backupKeyFromSeed(seed)
	if err != nil {
		return err
	}
	r := k.Recipient()
	k.Zero()
	rec.Backup = &r
	if err := c.wallet.Put("current", *rec); err != nil {
		return fmt.Errorf("backup recipient: store: %w", err)
	}
	return nil
}

// describeBackup adds the backup recipient to a wallet record being made from seed.
func describeBackup(rec *walletRecord, seed []byte) error {
	k, err := backupKeyFromSeed(seed)
	if err != nil {
		return err
	}
	r := k.Recipient()
	k.Zero()
	rec.Backup = &r
	return nil
}
