package hsm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"go.etcd.io/bbolt"
)

// Subsystem is the storage subsystem of the custody records.
const Subsystem = "hsm"

// Wallet states reported in Status.State.
const (
	StateNone     = "none"     // no wallet yet
	StateLocked   = "locked"   // sealed; needs Unlock
	StateUnlocked = "unlocked" // the seed is in memory
)

// MinRecoveryPassphrase is the shortest recovery passphrase accepted: the recovery copy can be
// attacked offline by whoever has the disk, so it must be long.
const MinRecoveryPassphrase = 12

// Errors callers can tell apart (wrapped, with details in the message).
var (
	ErrNoWallet       = errors.New("no wallet has been set up")
	ErrWalletExists   = errors.New("a wallet is already set up")
	ErrLocked         = errors.New("the wallet is locked")
	ErrNoSuchSealer   = errors.New("that protection is not available on this box")
	ErrWeakRecovery   = fmt.Errorf("the recovery passphrase must be at least %d characters", MinRecoveryPassphrase)
	ErrNeedsRecovery  = errors.New("this protection needs a recovery passphrase")
	ErrNotRecoverable = errors.New("this wallet has no recovery copy; use the mnemonic")
)

// Config wires a Custody.
type Config struct {
	DB      *storage.DB
	Network keys.Network
	// Sealers are the providers available on this box, by Kind. The passphrase provider must
	// be among them; it also seals the recovery copy.
	Sealers map[string]seal.Sealer
	Policy  sign.Policy
	Log     *slog.Logger
	Now     func() time.Time
}

// walletRecord is what is stored: public data and sealed blobs, never a secret in the clear.
type walletRecord struct {
	Network     string          `json:"network"`
	Fingerprint string          `json:"fingerprint"`
	Protection  string          `json:"protection"`
	Sealed      seal.Blob       `json:"sealed"`
	Recovery    *seal.Blob      `json:"recovery,omitempty"`
	Accounts    []accountRecord `json:"accounts"`
	Created     time.Time       `json:"created"`
	Changed     time.Time       `json:"changed"`
	// Generated: the mnemonic was made by this box (NewMnemonic), so no coins can have
	// been sent to the wallet before Created.
	Generated bool `json:"generated,omitempty"`
	// Backup is the public half of the wallet's backup key (see backupkey.go).
	Backup *BackupRecipient `json:"backup,omitempty"`
}

type accountRecord struct {
	Purpose     uint32 `json:"purpose"`
	Account     uint32 `json:"account"`
	Fingerprint string `json:"fingerprint"`
	XPub        string `json:"xpub"`
	Descriptor  string `json:"descriptor"` // <0;1> multipath form
	Receive     string `json:"receive"`    // chain 0 descriptor
	Change      string `json:"change"`     // chain 1 descriptor
	First       string `json:"first_address"`
}

// Account is one account of the wallet as the page shows it.
type Account struct {
	Purpose      string `json:"purpose"`
	Descriptor   string `json:"descriptor"`
	Receive      string `json:"receive_descriptor"`
	Change       string `json:"change_descriptor"`
	FirstAddress string `json:"first_address"`
	XPub         string `json:"xpub"`
}

// Status is the custody state for the page and the API.
type Status struct {
	State       string    `json:"state"`
	Network     string    `json:"network"`
	Protection  string    `json:"protection,omitempty"`
	Recovery    bool      `json:"recovery"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Available   []string  `json:"available"`
	Accounts    []Account `json:"accounts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	// Birthday is when the wallet was created, set only when its mnemonic was made by this
	// box: nothing can have paid it earlier, so a rescan may start there. Zero for restored
	// wallets, whose history may go back to the genesis block.
	Birthday time.Time `json:"birthday,omitzero"`
}

// Custody holds the wallet.
type Custody struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	wallet *storage.Table[walletRecord]
	audit  *audit.Log
	hist   *history

	mu      sync.Mutex
	seed    []byte // nil while locked
	lastErr string
	// issued remembers the mnemonics NewMnemonic handed out (keyed MACs, never the words)
	// so that Setup can tell a new wallet from a restored one.
	issued    map[[32]byte]time.Time
	issuedKey [32]byte
}

// New opens the custody records in cfg.DB.
func New(cfg Config) (*Custody, error) {
	if _, ok := cfg.Sealers[seal.KindPassphrase]; !ok {
		return nil, errors.New("hsm: the passphrase sealer is required")
	}
	if !cfg.Network.Valid() {
		return nil, errors.New("hsm: network not set")
	}
	err := cfg.DB.Migrate(Subsystem, []storage.Migration{{
		Version: 1, Name: "wallet record and spend history",
		Up: func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(Subsystem))
			for _, name := range []string{"wallet", "spends"} {
				if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("open custody records: %w", err)
	}
	al, err := audit.Open(cfg.DB)
	if err != nil {
		return nil, err
	}
	c := &Custody{
		cfg: cfg, log: cfg.Log, now: cfg.Now,
		wallet: storage.NewTable[walletRecord](cfg.DB, Subsystem, "wallet"),
		audit:  al,
		hist:   &history{tbl: storage.NewTable[sign.Spend](cfg.DB, Subsystem, "spends")},
		issued: map[[32]byte]time.Time{},
	}
	if _, err := rand.Read(c.issuedKey[:]); err != nil {
		return nil, fmt.Errorf("open custody: %w", err)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Audit returns the audit trail.
func (c *Custody) Audit() *audit.Log { return c.audit }

func (c *Custody) record() (walletRecord, bool, error) {
	return c.wallet.Get("current")
}

// Status reports the wallet's state.
func (c *Custody) Status() (Status, error) {
	st := Status{State: StateNone, Network: c.cfg.Network.String()}
	for k := range c.cfg.Sealers {
		st.Available = append(st.Available, k)
	}
	slices.Sort(st.Available)
	rec, ok, err := c.record()
	if err != nil {
		return st, fmt.Errorf("read wallet: %w", err)
	}
	c.mu.Lock()
	st.LastError = c.lastErr
	unlocked := c.seed != nil
	c.mu.Unlock()
	if !ok {
		return st, nil
	}
	st.State = StateLocked
	if unlocked {
		st.State = StateUnlocked
	}
	st.Protection, st.Recovery, st.Fingerprint = rec.Protection, rec.Recovery != nil, rec.Fingerprint
	if rec.Generated {
		st.Birthday = rec.Created
	}
	for _, a := range rec.Accounts {
		st.Accounts = append(st.Accounts, Account{
			Purpose: keys.Purpose(a.Purpose).String(), Descriptor: a.Descriptor,
			Receive: a.Receive, Change: a.Change, FirstAddress: a.First, XPub: a.XPub,
		})
	}
	return st, nil
}

// NewMnemonic returns a fresh mnemonic of 12 or 24 words for the owner to write down. It is
// not stored; Setup takes it back once the owner has confirmed it.
func (c *Custody) NewMnemonic(words int) (string, error) {
	m, err := keys.NewMnemonic(words)
	if err != nil {
		return "", err
	}
	defer m.Zero()
	p := m.Phrase()
	defer seal.Zero(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, t := range c.issued {
		if now.Sub(t) > issuedTTL {
			delete(c.issued, k)
		}
	}
	c.issued[c.issuedMAC(p)] = now
	return string(p), nil
}

// issuedTTL is how long a mnemonic from NewMnemonic counts as new: the owner writes it down
// and confirms it within that time.
const issuedTTL = 24 * time.Hour

func (c *Custody) issuedMAC(phrase []byte) [32]byte {
	m := hmac.New(sha256.New, c.issuedKey[:])
	m.Write(phrase)
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// SetupRequest creates or restores the wallet.
type SetupRequest struct {
	Mnemonic        string // new (from NewMnemonic) or restored
	BIP39Passphrase []byte // optional "25th word"
	Protection      string // seal kind
	Auth            seal.Auth
	// Recovery seals a second copy with the passphrase provider; required unless Protection is
	// the passphrase itself.
	Recovery []byte
}

// Setup creates the wallet from a mnemonic, seals it and leaves it unlocked.
func (c *Custody) Setup(ctx context.Context, req SetupRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok, err := c.record(); err != nil {
		return fmt.Errorf("set up wallet: %w", err)
	} else if ok {
		return fmt.Errorf("set up wallet: %w", ErrWalletExists)
	}
	m, err := keys.ParseMnemonic(req.Mnemonic)
	if err != nil {
		return fmt.Errorf("set up wallet: %w", err)
	}
	defer m.Zero()
	seed, err := m.Seed(req.BIP39Passphrase)
	if err != nil {
		return fmt.Errorf("set up wallet: %w", err)
	}
	rec, err := c.describe(seed)
	if err == nil {
		err = describeBackup(&rec, seed)
	}
	if err != nil {
		seal.Zero(seed)
		return fmt.Errorf("set up wallet: %w", err)
	}
	rec.Created = c.now().UTC()
	phrase := m.Phrase()
	mac := c.issuedMAC(phrase)
	seal.Zero(phrase)
	if t, ok := c.issued[mac]; ok && c.now().Sub(t) <= issuedTTL {
		rec.Generated = true
	}
	if err := c.sealInto(ctx, &rec, seed, req.Protection, req.Auth, req.Recovery); err != nil {
		seal.Zero(seed)
		return fmt.Errorf("set up wallet: %w", err)
	}
	err = c.cfg.DB.Update(func(tx *bbolt.Tx) error { return c.wallet.PutTx(tx, "current", rec) })
	if err != nil {
		seal.Zero(seed)
		return fmt.Errorf("set up wallet: store: %w", err)
	}
	c.seed = seed
	c.lastErr = ""
	clear(c.issued)
	c.appendAudit(audit.EventSeal, fmt.Sprintf("wallet %s created, protection %s, recovery %v", rec.Fingerprint, rec.Protection, rec.Recovery != nil))
	c.log.Info("wallet set up", "fingerprint", rec.Fingerprint, "protection", rec.Protection)
	return nil
}

// describe derives the public side of the wallet: fingerprint, accounts, descriptors.
func (c *Custody) describe(seed []byte) (walletRecord, error) {
	master, err := keys.NewMasterKey(seed, c.cfg.Network)
	if err != nil {
		return walletRecord{}, err
	}
	defer master.Zero()
	fp, err := master.Fingerprint()
	if err != nil {
		return walletRecord{}, err
	}
	rec := walletRecord{Network: c.cfg.Network.String(), Fingerprint: fp.String()}
	for _, p := range []keys.Purpose{keys.PurposeBIP84, keys.PurposeBIP86, keys.PurposeBIP49, keys.PurposeBIP44, keys.PurposeBIP48} {
		acct, err := keys.NewAccount(master, p, c.cfg.Network, 0)
		if err != nil {
			return walletRecord{}, fmt.Errorf("account %v: %w", p, err)
		}
		ar := accountRecord{Purpose: uint32(p), Fingerprint: fp.String(), XPub: acct.XPub.String()}
		if p == keys.PurposeBIP48 {
			// One cosigner's key: the key expression a coordinator (Sparrow, Core) combines
			// with the others' into wsh(sortedmulti(...)).
			path, err := keys.AccountPath(p, c.cfg.Network, 0)
			if err != nil {
				return walletRecord{}, err
			}
			ar.Descriptor = fmt.Sprintf("[%s/%s]%s/<0;1>/*", fp, strings.TrimPrefix(path.String(), "m/"), ar.XPub)
			rec.Accounts = append(rec.Accounts, ar)
			continue
		}
		if ar.Descriptor, err = acct.MultipathDescriptor(); err != nil {
			return walletRecord{}, err
		}
		if ar.Receive, err = acct.Descriptor(keys.Receive); err != nil {
			return walletRecord{}, err
		}
		if ar.Change, err = acct.Descriptor(keys.Change); err != nil {
			return walletRecord{}, err
		}
		a, err := acct.Address(keys.Receive, 0)
		if err != nil {
			return walletRecord{}, err
		}
		ar.First = a.Address
		rec.Accounts = append(rec.Accounts, ar)
	}
	return rec, nil
}

// sealInto seals seed with the chosen provider (and the recovery copy) into rec.
func (c *Custody) sealInto(ctx context.Context, rec *walletRecord, seed []byte, kind string, auth seal.Auth, recovery []byte) error {
	s, ok := c.cfg.Sealers[kind]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchSealer, kind)
	}
	if kind != seal.KindPassphrase {
		if len(recovery) == 0 {
			return ErrNeedsRecovery
		}
		if len(recovery) < MinRecoveryPassphrase {
			return ErrWeakRecovery
		}
	}
	blob, err := s.Seal(ctx, seed, auth)
	if err != nil {
		return fmt.Errorf("seal seed with %s: %w", kind, err)
	}
	rec.Protection, rec.Sealed, rec.Recovery = kind, blob, nil
	if kind != seal.KindPassphrase {
		rb, err := c.cfg.Sealers[seal.KindPassphrase].Seal(ctx, seed, seal.Auth{Passphrase: recovery})
		if err != nil {
			return fmt.Errorf("seal recovery copy: %w", err)
		}
		rec.Recovery = &rb
	}
	rec.Changed = c.now().UTC()
	return nil
}

// Unlock unseals the seed with auth (a passphrase, or the PIN of the device; nothing for a TPM
// without PIN).
func (c *Custody) Unlock(ctx context.Context, auth seal.Auth) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok, err := c.record()
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if !ok {
		return fmt.Errorf("unlock: %w", ErrNoWallet)
	}
	if c.seed != nil {
		return nil
	}
	s, ok := c.cfg.Sealers[rec.Protection]
	if !ok {
		return c.fail(fmt.Errorf("unlock: %w: the wallet is protected by %s", seal.ErrDeviceMissing, rec.Protection))
	}
	seed, err := s.Unseal(ctx, rec.Sealed, auth)
	if err != nil {
		c.appendAudit(audit.EventUnseal, fmt.Sprintf("failed with %s: %v", rec.Protection, err))
		if errors.Is(err, seal.ErrBootState) && rec.Recovery != nil {
			err = fmt.Errorf("%w — enter the recovery passphrase", err)
		}
		return c.fail(fmt.Errorf("unlock: %w", err))
	}
	if err := c.check(rec, seed); err != nil {
		seal.Zero(seed)
		return c.fail(fmt.Errorf("unlock: %w", err))
	}
	c.seed, c.lastErr = seed, ""
	c.appendAudit(audit.EventUnseal, "with "+rec.Protection)
	if rec.Backup == nil { // a wallet set up before backups existed
		if err := c.recordBackupRecipient(&rec, seed); err != nil {
			c.log.Warn("could not record the backup key", "err", err)
		}
	}
	return nil
}

// check makes sure an unsealed seed is this wallet's.
func (c *Custody) check(rec walletRecord, seed []byte) error {
	got, err := c.describe(seed)
	if err != nil {
		return err
	}
	if got.Fingerprint != rec.Fingerprint {
		return fmt.Errorf("%w: the unsealed seed belongs to wallet %s, not %s", seal.ErrCorrupt, got.Fingerprint, rec.Fingerprint)
	}
	return nil
}

func (c *Custody) fail(err error) error {
	c.lastErr = err.Error()
	return err
}

// AutoUnlock opens a wallet whose protection needs no input (a TPM without PIN). It is what
// the appliance calls at boot; other protections return ErrLocked and wait for the owner.
func (c *Custody) AutoUnlock(ctx context.Context) error {
	rec, ok, err := c.record()
	if err != nil || !ok {
		return err
	}
	c.mu.Lock()
	unlocked := c.seed != nil
	c.mu.Unlock()
	if unlocked {
		return nil
	}
	if rec.Protection != seal.KindTPM {
		return ErrLocked
	}
	return c.Unlock(ctx, seal.Auth{})
}

// UnlockWithRecovery opens the wallet with its recovery passphrase and re-seals the primary
// copy for the current state (for a TPM: the current boot), with auth as its new PIN.
func (c *Custody) UnlockWithRecovery(ctx context.Context, recovery []byte, auth seal.Auth) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok, err := c.record()
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if !ok {
		return fmt.Errorf("recover: %w", ErrNoWallet)
	}
	if rec.Recovery == nil {
		return fmt.Errorf("recover: %w", ErrNotRecoverable)
	}
	seed, err := c.cfg.Sealers[seal.KindPassphrase].Unseal(ctx, *rec.Recovery, seal.Auth{Passphrase: recovery})
	if err != nil {
		c.appendAudit(audit.EventUnseal, fmt.Sprintf("recovery copy failed: %v", err))
		return fmt.Errorf("recover: %w", err)
	}
	if err := c.check(rec, seed); err != nil {
		seal.Zero(seed)
		return fmt.Errorf("recover: %w", err)
	}
	c.appendAudit(audit.EventUnseal, "with the recovery passphrase")
	if s, ok := c.cfg.Sealers[rec.Protection]; ok {
		blob, err := s.Seal(ctx, seed, auth)
		if err != nil {
			c.log.Warn("re-seal after recovery failed; the old sealed copy is kept", "protection", rec.Protection, "err", err)
		} else {
			rec.Sealed, rec.Changed = blob, c.now().UTC()
			if err := c.wallet.Put("current", rec); err != nil {
				seal.Zero(seed)
				return fmt.Errorf("recover: store: %w", err)
			}
			c.appendAudit(audit.EventSeal, "re-sealed with "+rec.Protection+" after recovery")
		}
	}
	c.seed, c.lastErr = seed, ""
	return nil
}

// Lock forgets the seed.
func (c *Custody) Lock() {
	c.mu.Lock()
	defer c.mu.Unlock()
	seal.Zero(c.seed)
	c.seed = nil
}

// ChangeProtection re-seals the unlocked wallet with another provider (or new credentials). The
// seed never leaves memory; the old blobs are replaced in one transaction.
func (c *Custody) ChangeProtection(ctx context.Context, kind string, auth seal.Auth, recovery []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seed == nil {
		return fmt.Errorf("change protection: %w", ErrLocked)
	}
	rec, ok, err := c.record()
	if err != nil || !ok {
		return fmt.Errorf("change protection: %w", errors.Join(err, ErrNoWallet))
	}
	old := rec.Protection
	if err := c.sealInto(ctx, &rec, c.seed, kind, auth, recovery); err != nil {
		return fmt.Errorf("change protection: %w", err)
	}
	if err := c.wallet.Put("current", rec); err != nil {
		return fmt.Errorf("change protection: store: %w", err)
	}
	c.appendAudit(audit.EventSeal, fmt.Sprintf("protection changed from %s to %s, recovery %v", old, kind, rec.Recovery != nil))
	return nil
}

// signer builds a signer from the unlocked seed; the caller must hold c.mu.
func (c *Custody) signer() (*sign.Signer, *hdkeychain.ExtendedKey, error) {
	if c.seed == nil {
		return nil, nil, ErrLocked
	}
	master, err := hdkeychain.NewMaster(c.seed, c.cfg.Network.Params())
	if err != nil {
		return nil, nil, err
	}
	s, err := sign.New(sign.Config{Master: master, Net: c.cfg.Network.Params(), Policy: c.cfg.Policy, History: c.hist, Now: c.now})
	if err != nil {
		master.Zero()
		return nil, nil, err
	}
	return s, master, nil
}

// Summarize describes what signing psbt would do, for the review screen.
func (c *Custody) Summarize(psbt []byte) (*sign.Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, master, err := c.signer()
	if err != nil {
		return nil, fmt.Errorf("summarize: %w", err)
	}
	defer master.Zero()
	return s.Summarize(psbt, sign.SignOptions{})
}

// SignPSBT signs psbt under the policy and records the signature (or the refusal) in the audit
// trail.
func (c *Custody) SignPSBT(ctx context.Context, psbt []byte, finalize bool) (*sign.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, master, err := c.signer()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	defer master.Zero()
	res, err := s.Sign(psbt, sign.SignOptions{Finalize: finalize})
	if err != nil {
		var pe *sign.PolicyError
		if errors.As(err, &pe) {
			c.appendAudit(audit.EventRefuse, pe.Error())
		}
		return nil, err
	}
	txid := res.Packet.UnsignedTx.TxHash()
	c.appendAudit(audit.EventSign, fmt.Sprintf("txid %s, inputs signed %v, complete %v", txid, res.Signed, res.Complete))
	return res, nil
}

func (c *Custody) appendAudit(event, detail string) {
	if _, err := c.audit.Append(event, detail); err != nil {
		c.log.Error("audit", "err", err)
	}
}

// history keeps the policy's spends in storage.
type history struct {
	tbl *storage.Table[sign.Spend]
}

func (h *history) Spends(since time.Time) ([]sign.Spend, error) {
	var out []sign.Spend
	err := h.tbl.ForEach(func(_ string, s sign.Spend) error {
		if !s.Time.Before(since) {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func (h *history) Record(s sign.Spend) error {
	return h.tbl.Put(s.TxID.String(), s)
}
