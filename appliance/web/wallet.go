package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
)

// Wallet is the key custody the pages and the API drive: the methods of *hsm.Custody they
// use. The server never sees the seed; it hands the owner's mnemonic, passphrases and PINs
// through and forgets them.
type Wallet interface {
	Status() (hsm.Status, error)
	NewMnemonic(words int) (string, error)
	Setup(ctx context.Context, req hsm.SetupRequest) error
	Unlock(ctx context.Context, auth seal.Auth) error
	UnlockWithRecovery(ctx context.Context, recovery []byte, auth seal.Auth) error
	Lock()
	ChangeProtection(ctx context.Context, kind string, auth seal.Auth, recovery []byte) error
	Summarize(psbt []byte) (*sign.Summary, error)
	SignPSBT(ctx context.Context, psbt []byte, finalize bool) (*sign.Result, error)
	Audit() *audit.Log
}

var _ Wallet = (*hsm.Custody)(nil)

// Limits of the wallet's passphrases and PINs.
const (
	// minWalletPassphrase applies to the passphrase protection and the recovery passphrase
	// alike: both seal a copy of the seed that whoever copies the disk can attack offline.
	minWalletPassphrase = hsm.MinRecoveryPassphrase
	maxSecretBytes      = 1024
	maxPIVPIN           = 8 // a YubiKey PIN has 6 to 8 characters
)

// protectionOrder is the order in which the protections are offered, strongest convenience
// first.
var protectionOrder = []string{seal.KindTPM, seal.KindPIV, seal.KindPassphrase}

// protectionLabel names a protection for the owner.
func protectionLabel(kind string) string {
	switch kind {
	case seal.KindTPM:
		return "This box's TPM — unlocks itself at boot"
	case seal.KindPIV:
		return "YubiKey — PIN at every unlock"
	case seal.KindPassphrase:
		return "Passphrase — typed after every boot"
	}
	return kind
}

// protectionName is the short name of a protection.
func protectionName(kind string) string {
	switch kind {
	case seal.KindTPM:
		return "TPM"
	case seal.KindPIV:
		return "YubiKey"
	case seal.KindPassphrase:
		return "Passphrase"
	}
	return kind
}

// protectInput is what the owner chose to protect the wallet with. The confirmations are
// only on the pages; the API passes each value as its own confirmation.
type protectInput struct {
	Kind            string
	Passphrase      string
	Confirm         string
	PIN             string
	Recovery        string
	RecoveryConfirm string
}

// validate checks the input for the protections available, field by field.
func (in protectInput) validate(available []string) fieldErrors {
	errs := fieldErrors{}
	switch {
	case in.Kind == "":
		errs["protection"] = "Choose how to protect the wallet."
		return errs
	case !slices.Contains(available, in.Kind):
		errs["protection"] = fmt.Sprintf("%q is not available on this box.", in.Kind)
		return errs
	}
	switch in.Kind {
	case seal.KindPassphrase:
		if msg := checkSecret("passphrase", in.Passphrase); msg != "" {
			errs["passphrase"] = msg
		} else if in.Confirm != in.Passphrase {
			errs["confirm"] = "The two passphrases do not match."
		}
	case seal.KindPIV:
		switch {
		case in.PIN == "":
			errs["pin"] = "Enter the YubiKey's PIN."
		case len(in.PIN) > maxPIVPIN:
			errs["pin"] = fmt.Sprintf("A YubiKey PIN has at most %d characters.", maxPIVPIN)
		}
	}
	if in.Kind != seal.KindPassphrase {
		if msg := checkSecret("recovery passphrase", in.Recovery); msg != "" {
			errs["recovery"] = msg
		} else if in.RecoveryConfirm != in.Recovery {
			errs["recovery_confirm"] = "The two recovery passphrases do not match."
		}
	}
	return errs
}

// auth returns the credentials of the input as the custody takes them. The caller zeroes
// them with zeroAuth.
func (in protectInput) auth() (seal.Auth, []byte) {
	var a seal.Auth
	switch in.Kind {
	case seal.KindPassphrase:
		a.Passphrase = []byte(in.Passphrase)
	default:
		a.PIN = in.PIN
	}
	var recovery []byte
	if in.Kind != seal.KindPassphrase && in.Recovery != "" {
		recovery = []byte(in.Recovery)
	}
	return a, recovery
}

// zeroAuth overwrites the byte copies of secrets handed to the custody. Go strings (the form
// values and JSON fields they were copied from) cannot be overwritten; they are dropped.
func zeroAuth(a seal.Auth, more ...[]byte) {
	seal.Zero(a.Passphrase)
	for _, b := range more {
		seal.Zero(b)
	}
}

// checkSecret returns a message when a wallet passphrase is not acceptable.
func checkSecret(what, v string) string {
	n := utf8.RuneCountInString(v)
	switch {
	case strings.TrimSpace(v) == "":
		return "Choose a " + what + "."
	case n < minWalletPassphrase:
		return fmt.Sprintf("The %s is too short: use at least %d characters (this one has %d).", what, minWalletPassphrase, n)
	case len(v) > maxSecretBytes:
		return fmt.Sprintf("The %s is too long: use at most %d bytes.", what, maxSecretBytes)
	}
	return ""
}

// walletFailure is how an error of the custody is answered.
type walletFailure struct {
	status int    // HTTP status
	msg    string // a sentence for the owner; never holds a secret
	field  string // the form field it concerns, "" for the whole form
	// violations are the reasons of a policy refusal.
	violations []sign.Violation
}

var pivTriesLeft = regexp.MustCompile(`\d+ tr(?:y|ies) left before the YubiKey locks`)

// classifyWalletError maps an error of the custody to an answer. It returns false for an
// unexpected error, which is logged and answered 500. The messages are chosen here or taken
// from packages keys and sign, whose errors never carry a word of the mnemonic, a passphrase
// or a PIN.
func classifyWalletError(err error) (walletFailure, bool) {
	var (
		word   *keys.WordError
		policy *sign.PolicyError
		input  *sign.InputError
	)
	switch {
	case errors.As(err, &word):
		return walletFailure{http.StatusBadRequest, sentence(word.Error()), "mnemonic", nil}, true
	case errors.Is(err, keys.ErrWordCount), errors.Is(err, keys.ErrChecksum):
		return walletFailure{http.StatusBadRequest, sentence(keysMessage(err)), "mnemonic", nil}, true
	case errors.Is(err, keys.ErrPassphraseNotASCII):
		return walletFailure{http.StatusBadRequest, sentence(keys.ErrPassphraseNotASCII.Error()), "bip39_passphrase", nil}, true

	case errors.Is(err, seal.ErrWrongAuth):
		msg := "Wrong passphrase or PIN."
		if m := pivTriesLeft.FindString(err.Error()); m != "" {
			msg = "Wrong PIN: " + m + "."
		}
		return walletFailure{http.StatusUnauthorized, msg, "", nil}, true
	case errors.Is(err, seal.ErrLocked):
		return walletFailure{http.StatusLocked, "The YubiKey is locked after too many wrong PINs: unblock its PIN with the PUK, then try again.", "", nil}, true
	case errors.Is(err, seal.ErrDeviceMissing):
		return walletFailure{http.StatusServiceUnavailable, "The device that protects the wallet is not present: plug in the YubiKey (or check the TPM) and try again.", "", nil}, true
	case errors.Is(err, seal.ErrBootState):
		return walletFailure{http.StatusConflict, "This system booted differently than when the seed was sealed — enter the recovery passphrase.", "", nil}, true

	case errors.Is(err, hsm.ErrWalletExists):
		return walletFailure{http.StatusConflict, "A wallet is already set up on this box.", "", nil}, true
	case errors.Is(err, hsm.ErrNoWallet):
		return walletFailure{http.StatusConflict, "No wallet has been set up yet.", "", nil}, true
	case errors.Is(err, hsm.ErrLocked):
		return walletFailure{http.StatusConflict, "The wallet is locked: unlock it first.", "", nil}, true
	case errors.Is(err, hsm.ErrNotRecoverable):
		return walletFailure{http.StatusConflict, "This wallet has no recovery copy: restore it from its mnemonic.", "", nil}, true
	case errors.Is(err, hsm.ErrNoSuchSealer):
		return walletFailure{http.StatusBadRequest, "That protection is not available on this box.", "protection", nil}, true
	case errors.Is(err, hsm.ErrWeakRecovery):
		return walletFailure{http.StatusBadRequest, sentence(hsm.ErrWeakRecovery.Error()), "recovery", nil}, true
	case errors.Is(err, hsm.ErrNeedsRecovery):
		return walletFailure{http.StatusBadRequest, sentence(hsm.ErrNeedsRecovery.Error()), "recovery", nil}, true
	case errors.Is(err, seal.ErrEmptyPassphrase):
		return walletFailure{http.StatusBadRequest, "Choose a passphrase.", "passphrase", nil}, true

	case errors.As(err, &policy):
		return walletFailure{http.StatusUnprocessableEntity, sentence(policy.Error()), "", policy.Violations}, true
	case errors.As(err, &input), errors.Is(err, sign.ErrMalformed), errors.Is(err, sign.ErrVersion2),
		errors.Is(err, sign.ErrVersion), errors.Is(err, sign.ErrFeeNegative):
		return walletFailure{http.StatusBadRequest, sentence(err.Error()), "psbt", nil}, true
	}
	return walletFailure{}, false
}

// keysMessage is the message of the keys error wrapped in err, without the context the
// custody adds before it.
func keysMessage(err error) string {
	for _, e := range []error{keys.ErrWordCount, keys.ErrChecksum} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

// sentence turns an error message into a sentence: without the package prefix, capitalized,
// with a full stop.
func sentence(msg string) string {
	msg = strings.TrimPrefix(msg, "keys: ")
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// checkAuth runs fn, which has the custody check a passphrase or PIN, within the guessing
// limits of r's client: the same count as for the admin password. It returns wait > 0,
// without running fn, when the client must wait.
func (s *Server) checkAuth(r *http.Request, what string, fn func() error) (time.Duration, error) {
	key := limitKey(r)
	if wait, ok := s.limiter.attempt(key, s.now()); !ok {
		s.log.Warn(what+" refused: too many wrong attempts", "client", clientAddr(r), "wait", wait.Round(time.Second))
		return wait, nil
	}
	err := fn()
	switch {
	case err == nil:
		s.limiter.succeeded(key)
	case errors.Is(err, seal.ErrWrongAuth):
		s.log.Warn(what+" failed: wrong passphrase or PIN", "client", clientAddr(r), "attempts", s.limiter.count(key))
	}
	return 0, err
}

// tooManyAttempts is the message for a client that must wait.
func tooManyAttempts(wait time.Duration) string {
	return fmt.Sprintf("Too many wrong attempts. Wait %s before trying again.",
		humanDuration(time.Duration(retrySeconds(wait))*time.Second))
}

// walletStatus reads the wallet's status, answering the request (a page or, with api, JSON)
// if that fails.
func (s *Server) walletStatus(w http.ResponseWriter, r *http.Request, api bool) (hsm.Status, bool) {
	st, err := s.wallet.Status()
	if err != nil {
		s.internalError(w, r, api, "read wallet status", err)
		return st, false
	}
	return st, true
}

// knownWalletError classifies an error of the custody. An unexpected one it logs and answers
// 500 itself (a page or, with api, JSON), and returns false.
func (s *Server) knownWalletError(w http.ResponseWriter, r *http.Request, api bool, what string, err error) (walletFailure, bool) {
	f, ok := classifyWalletError(err)
	if !ok {
		s.internalError(w, r, api, what, err)
	}
	return f, ok
}

// attemptFailed turns the outcome of an attempt made through checkAuth into the failure to
// answer: 429 with the Retry-After header set when the client must wait, or the error
// classified. It returns ok when there was neither, and a failure with status 0 when it has
// answered the request itself (a page or, with api, JSON).
func (s *Server) attemptFailed(w http.ResponseWriter, r *http.Request, api bool, what string, wait time.Duration, err error) (f walletFailure, ok bool) {
	switch {
	case wait > 0:
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
		return walletFailure{status: http.StatusTooManyRequests, msg: tooManyAttempts(wait)}, false
	case err == nil:
		return walletFailure{}, true
	}
	f, _ = s.knownWalletError(w, r, api, what, err)
	return f, false
}

// unlockMissing returns the field that an unlock of a wallet with the given protection needs
// and was left empty, with the message for it; "" when none is missing.
func unlockMissing(protection, passphrase, pin string) (field, msg string) {
	switch {
	case protection == seal.KindPassphrase && passphrase == "":
		return "passphrase", "Enter the wallet's passphrase."
	case protection == seal.KindPIV && pin == "":
		return "pin", "Enter the YubiKey's PIN."
	}
	return "", ""
}

// recoveryMissing is the message for an attempt at recovery without the recovery passphrase.
const recoveryMissing = "Enter the recovery passphrase."

// checkBIP39Length returns a message when a BIP39 passphrase is too long.
func checkBIP39Length(bip39 []byte) string {
	if len(bip39) > maxSecretBytes {
		return fmt.Sprintf("The BIP39 passphrase is too long: use at most %d bytes.", maxSecretBytes)
	}
	return ""
}

// pendingLifetime is how long a mnemonic being created or restored stays in memory.
const pendingLifetime = 15 * time.Minute

// confirmWords is how many words of a new mnemonic the owner types back.
const confirmWords = 3

// pendingWallet is a wallet being created or restored through the pages, between the page
// that shows (or takes) the mnemonic and the one that protects it. It lives only in memory,
// bound to one session, for at most pendingLifetime; it is never logged.
type pendingWallet struct {
	mnemonic  []byte
	bip39     []byte // the optional BIP39 passphrase of a restored wallet
	restored  bool
	confirmed bool  // the owner typed back the words asked (always true when restored)
	positions []int // 1-based positions of the words asked, ascending
	expires   time.Time
	timer     *time.Timer // forgets the wallet at expires even if nobody asks
}

func (p *pendingWallet) zero() {
	seal.Zero(p.mnemonic)
	seal.Zero(p.bip39)
	p.mnemonic, p.bip39 = nil, nil
	if p.timer != nil {
		p.timer.Stop()
	}
}

// pendingStore holds the pending wallets by session key. It is safe for concurrent use.
type pendingStore struct {
	mu sync.Mutex
	m  map[string]*pendingWallet
}

func newPendingStore() *pendingStore {
	return &pendingStore{m: make(map[string]*pendingWallet)}
}

// put stores p for the session key, replacing (and zeroing) what was there.
func (ps *pendingStore) put(key string, p *pendingWallet, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if old := ps.m[key]; old != nil {
		old.zero()
	}
	p.expires = now.Add(pendingLifetime)
	p.timer = time.AfterFunc(pendingLifetime, func() { ps.forget(key, p) })
	ps.m[key] = p
}

// forget drops p if it is still the session's pending wallet.
func (ps *pendingStore) forget(key string, p *pendingWallet) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m[key] == p {
		delete(ps.m, key)
	}
	p.zero()
}

// drop forgets the session's pending wallet.
func (ps *pendingStore) drop(key string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.m[key]; p != nil {
		delete(ps.m, key)
		p.zero()
	}
}

// with calls fn with the session's pending wallet under the store's lock, and reports
// whether there was one. An expired one is forgotten.
func (ps *pendingStore) with(key string, now time.Time, fn func(p *pendingWallet)) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[key]
	if p == nil {
		return false
	}
	if !now.Before(p.expires) {
		delete(ps.m, key)
		p.zero()
		return false
	}
	fn(p)
	return true
}

// len returns the number of pending wallets.
func (ps *pendingStore) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.m)
}
