package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
)

// Bounds of GET /api/wallet/audit.
const (
	defaultAuditRecords = 100
	maxAuditRecords     = 1000
)

// apiWalletFail answers an error of the custody: a clear message with the status of its
// kind, or 500 for an unexpected one.
func (s *Server) apiWalletFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if f, ok := s.knownWalletError(w, r, true, what, err); ok {
		writeWalletFailure(w, f)
	}
}

// writeWalletFailure answers f, with the reasons of a policy refusal.
func writeWalletFailure(w http.ResponseWriter, f walletFailure) {
	if f.violations != nil {
		writeJSON(w, f.status, struct {
			Error      string          `json:"error"`
			Violations []violationView `json:"violations"`
		}{f.msg, newViolationViews(f.violations)})
		return
	}
	writeError(w, f.status, f.msg)
}

// apiAttemptReply answers an attempt made through checkAuth: its refusal or failure, or else
// the wallet's new status.
func (s *Server) apiAttemptReply(w http.ResponseWriter, r *http.Request, what string, wait time.Duration, err error) {
	f, ok := s.attemptFailed(w, r, true, what, wait, err)
	switch {
	case ok:
		s.replyWalletStatus(w, r)
	case f.status != 0:
		writeWalletFailure(w, f)
	}
}

// apiWalletInput decodes the request's JSON body into in (unless in is nil) and reads the
// wallet's status for the operation what, which needs a wallet set up (needWallet) or none
// yet. It answers the request and returns false when either fails or the wallet is not as
// needed.
func (s *Server) apiWalletInput(w http.ResponseWriter, r *http.Request, what string, in any, needWallet bool) (hsm.Status, bool) {
	if in != nil && !decodeJSON(w, r, in) {
		return hsm.Status{}, false
	}
	st, ok := s.walletStatus(w, r, true)
	switch {
	case !ok:
		return st, false
	case needWallet && st.State == hsm.StateNone:
		s.apiWalletFail(w, r, what, hsm.ErrNoWallet)
		return st, false
	case !needWallet && st.State != hsm.StateNone:
		s.apiWalletFail(w, r, what, hsm.ErrWalletExists)
		return st, false
	}
	return st, true
}

// replyWalletStatus answers with the wallet's current status.
func (s *Server) replyWalletStatus(w http.ResponseWriter, r *http.Request) {
	if st, ok := s.walletStatus(w, r, true); ok {
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) apiWallet(w http.ResponseWriter, r *http.Request) {
	s.replyWalletStatus(w, r)
}

// apiWalletMnemonic returns a new mnemonic. The server keeps nothing: the API client shows it
// to the owner, makes sure it was written down and sends it back to POST /api/wallet/setup.
func (s *Server) apiWalletMnemonic(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Words int `json:"words"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Words != 12 && in.Words != 24 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("words must be 12 or 24, not %d", in.Words))
		return
	}
	if _, ok := s.apiWalletInput(w, r, "new mnemonic", nil, false); !ok {
		return
	}
	m, err := s.wallet.NewMnemonic(in.Words)
	if err != nil {
		s.internalError(w, r, true, "generate mnemonic", err)
		return
	}
	s.log.Info("wallet: new mnemonic handed to an API client", "words", in.Words, "client", clientAddr(r))
	writeJSON(w, http.StatusOK, struct {
		Mnemonic string `json:"mnemonic"`
	}{m})
}

// protectJSON is the protection of a wallet as the API takes it, each value its own
// confirmation.
type protectJSON struct {
	Protection string `json:"protection"`
	Passphrase string `json:"passphrase"`
	PIN        string `json:"pin"`
	Recovery   string `json:"recovery"`
}

func (p protectJSON) input() protectInput {
	return protectInput{Kind: p.Protection, Passphrase: p.Passphrase, Confirm: p.Passphrase, PIN: p.PIN,
		Recovery: p.Recovery, RecoveryConfirm: p.Recovery}
}

func (s *Server) apiWalletSetup(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Mnemonic        string `json:"mnemonic"`
		BIP39Passphrase string `json:"bip39_passphrase"`
		protectJSON
	}
	st, ok := s.apiWalletInput(w, r, "set up wallet", &in, false)
	if !ok {
		return
	}
	pi := in.input()
	errs := pi.validate(st.Available)
	if strings.TrimSpace(in.Mnemonic) == "" {
		errs["mnemonic"] = "Enter the words of the mnemonic."
	}
	if msg := checkBIP39Length([]byte(in.BIP39Passphrase)); msg != "" {
		errs["bip39_passphrase"] = msg
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, errs.String())
		return
	}
	wait, err := s.setupWallet(r, in.Mnemonic, []byte(in.BIP39Passphrase), pi)
	s.apiAttemptReply(w, r, "set up wallet", wait, err)
}

func (s *Server) apiWalletUnlock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Passphrase string `json:"passphrase"`
		PIN        string `json:"pin"`
	}
	st, ok := s.apiWalletInput(w, r, "unlock wallet", &in, true)
	if !ok {
		return
	}
	if st.State == hsm.StateUnlocked {
		writeJSON(w, http.StatusOK, st)
		return
	}
	if field, msg := unlockMissing(st.Protection, in.Passphrase, in.PIN); field != "" {
		writeError(w, http.StatusBadRequest, fieldErrors{field: msg}.String())
		return
	}
	wait, err := s.unlockWallet(r, in.Passphrase, in.PIN)
	s.apiAttemptReply(w, r, "unlock wallet", wait, err)
}

func (s *Server) apiWalletRecover(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Recovery string `json:"recovery"`
		PIN      string `json:"pin"`
	}
	st, ok := s.apiWalletInput(w, r, "recover wallet", &in, true)
	if !ok {
		return
	}
	switch {
	case !st.Recovery:
		s.apiWalletFail(w, r, "recover wallet", hsm.ErrNotRecoverable)
		return
	case in.Recovery == "":
		writeError(w, http.StatusBadRequest, fieldErrors{"recovery": recoveryMissing}.String())
		return
	}
	wait, err := s.recoverWallet(r, in.Recovery, in.PIN)
	s.apiAttemptReply(w, r, "recover wallet", wait, err)
}

func (s *Server) apiWalletLock(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.apiWalletInput(w, r, "lock wallet", nil, true); !ok {
		return
	}
	s.lockWallet(r)
	s.replyWalletStatus(w, r)
}

func (s *Server) apiWalletProtection(w http.ResponseWriter, r *http.Request) {
	var in protectJSON
	st, ok := s.apiWalletInput(w, r, "change protection", &in, true)
	if !ok {
		return
	}
	if st.State == hsm.StateLocked {
		s.apiWalletFail(w, r, "change protection", hsm.ErrLocked)
		return
	}
	pi := in.input()
	if errs := pi.validate(st.Available); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, errs.String())
		return
	}
	wait, err := s.changeProtection(r, st.Protection, pi)
	s.apiAttemptReply(w, r, "change protection", wait, err)
}

func (s *Server) apiWalletSummary(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PSBT string `json:"psbt"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	data := psbtText(in.PSBT)
	if len(data) == 0 {
		writeError(w, http.StatusBadRequest, "psbt: Give the PSBT in base64.")
		return
	}
	sum, err := s.wallet.Summarize(data)
	if err != nil {
		s.apiWalletFail(w, r, "summarize PSBT", err)
		return
	}
	writeJSON(w, http.StatusOK, newSummaryView(sum))
}

func (s *Server) apiWalletSign(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PSBT     string `json:"psbt"`
		Finalize bool   `json:"finalize"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	data := psbtText(in.PSBT)
	if len(data) == 0 {
		writeError(w, http.StatusBadRequest, "psbt: Give the PSBT in base64.")
		return
	}
	v, err := s.signPSBT(r, data, in.Finalize)
	if err != nil {
		s.apiWalletFail(w, r, "sign PSBT", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiWalletAudit(w http.ResponseWriter, r *http.Request) {
	after, max, ok := listQuery(w, r, defaultAuditRecords, maxAuditRecords)
	if !ok {
		return
	}
	recs, err := s.wallet.Audit().List(after, max)
	if err != nil {
		s.internalError(w, r, true, "read audit log", err)
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (s *Server) apiWalletAuditVerify(w http.ResponseWriter, r *http.Request) {
	n, err := s.wallet.Audit().Verify()
	switch {
	case errors.Is(err, audit.ErrBroken):
		s.log.Warn("wallet: audit chain does not verify", "err", err, "client", clientAddr(r))
		writeJSON(w, http.StatusConflict, struct {
			Error   string `json:"error"`
			Records int    `json:"records"`
		}{auditVerifyMessage(err), n})
	case err != nil:
		s.internalError(w, r, true, "verify audit log", err)
	default:
		writeJSON(w, http.StatusOK, struct {
			Records int `json:"records"`
		}{n})
	}
}

// The operations shared by the pages and the API. Each logs what happened, never a secret.

// setupWallet creates or restores the wallet. It zeroes bip39.
func (s *Server) setupWallet(r *http.Request, mnemonic string, bip39 []byte, pi protectInput) (time.Duration, error) {
	auth, recovery := pi.auth()
	defer zeroAuth(auth, recovery, bip39)
	req := hsm.SetupRequest{Mnemonic: mnemonic, BIP39Passphrase: bip39, Protection: pi.Kind, Auth: auth, Recovery: recovery}
	run := func() error { return s.wallet.Setup(r.Context(), req) }
	var wait time.Duration
	var err error
	if pi.Kind == seal.KindPIV { // the YubiKey checks its PIN
		wait, err = s.checkAuth(r, "wallet setup", run)
	} else {
		err = run()
	}
	if err == nil && wait == 0 {
		s.log.Info("wallet set up", "protection", pi.Kind, "client", clientAddr(r))
	}
	return wait, err
}

// unlockWallet opens the wallet with a passphrase or PIN, within the guessing limits.
func (s *Server) unlockWallet(r *http.Request, passphrase, pin string) (time.Duration, error) {
	auth := seal.Auth{Passphrase: []byte(passphrase), PIN: pin}
	defer zeroAuth(auth)
	wait, err := s.checkAuth(r, "wallet unlock", func() error { return s.wallet.Unlock(r.Context(), auth) })
	if err == nil && wait == 0 {
		s.log.Info("wallet unlocked", "client", clientAddr(r))
	}
	return wait, err
}

// recoverWallet opens the wallet with its recovery passphrase, within the guessing limits.
func (s *Server) recoverWallet(r *http.Request, recovery, pin string) (time.Duration, error) {
	rec := []byte(recovery)
	defer zeroAuth(seal.Auth{}, rec)
	wait, err := s.checkAuth(r, "wallet recovery", func() error {
		return s.wallet.UnlockWithRecovery(r.Context(), rec, seal.Auth{PIN: pin})
	})
	if err == nil && wait == 0 {
		s.log.Info("wallet unlocked with the recovery passphrase", "client", clientAddr(r))
	}
	return wait, err
}

func (s *Server) lockWallet(r *http.Request) {
	s.wallet.Lock()
	s.log.Info("wallet locked", "client", clientAddr(r))
}

// changeProtection re-seals the unlocked wallet as pi says.
func (s *Server) changeProtection(r *http.Request, old string, pi protectInput) (time.Duration, error) {
	auth, recovery := pi.auth()
	defer zeroAuth(auth, recovery)
	run := func() error { return s.wallet.ChangeProtection(r.Context(), pi.Kind, auth, recovery) }
	var wait time.Duration
	var err error
	if pi.Kind == seal.KindPIV {
		wait, err = s.checkAuth(r, "wallet protection change", run)
	} else {
		err = run()
	}
	if err == nil && wait == 0 {
		s.log.Info("wallet protection changed", "from", old, "to", pi.Kind, "client", clientAddr(r))
	}
	return wait, err
}

// signPSBT signs data (binary or base64) and formats the result.
func (s *Server) signPSBT(r *http.Request, data []byte, finalize bool) (signedView, error) {
	res, err := s.wallet.SignPSBT(r.Context(), data, finalize)
	if err != nil {
		var pe *sign.PolicyError
		if errors.As(err, &pe) {
			s.log.Warn("wallet: signing refused by policy", "reasons", len(pe.Violations), "client", clientAddr(r))
		}
		return signedView{}, err
	}
	v, err := newSignedView(res)
	if err != nil {
		return signedView{}, err
	}
	s.log.Info("wallet: PSBT signed", "txid", v.TxID, "complete", v.Complete, "client", clientAddr(r))
	return v, nil
}

// psbtText is a PSBT given as base64 text, without the white space of line wrapping.
func psbtText(text string) []byte {
	return []byte(strings.Join(strings.Fields(text), ""))
}
