package web

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
)

// psbtMagic starts every binary PSBT.
var psbtMagic = []byte("psbt\xff")

type walletSetupData struct {
	layoutData
	Words   string // "12" or "24"
	Errors  fieldErrors
	Pending bool // a wallet is half set up in this session
}

type wordsData struct {
	layoutData
	Words []string
}

type confirmAsk struct {
	Position int
	Error    string
}

type confirmData struct {
	layoutData
	Asks []confirmAsk
}

type restoreData struct {
	layoutData
	Errors   fieldErrors
	Advanced bool // open the BIP39 passphrase disclosure
}

type protectOption struct {
	Kind       string
	Name, Hint string // "This box's TPM", "unlocks itself at boot"
	Checked    bool
}

type protectData struct {
	layoutData
	Change        bool   // changing the protection of the wallet, not setting it up
	Restored      bool   // the wallet being set up was restored from its words
	Current       string // the protection now, when changing it
	Options       []protectOption
	HasPassphrase bool
	HasPIV        bool
	HasRecovery   bool
	Errors        fieldErrors
	Alert         string
}

type signData struct {
	layoutData
	Unlocked bool
	State    string
	PSBT     string // what was pasted, kept after an error
	Error    string
}

type reviewData struct {
	layoutData
	Summary summaryView
	PSBT    string // base64, for the Sign form
	Refused string // the policy refused to sign
}

type signedData struct {
	layoutData
	Result signedView
}

// walletCard returns the Wallet card of the status page.
func (s *Server) walletCard(r *http.Request) walletView {
	st, err := s.wallet.Status()
	if err != nil {
		s.log.Error("status page: read wallet status", "err", err)
	}
	v := newWalletView(st, err)
	if err != nil {
		return v
	}
	if st.State == hsm.StateNone {
		if sess := sessionFrom(r.Context()); sess != nil {
			v.Pending = s.pending.with(sess.key, s.now(), func(*pendingWallet) {})
		}
		return v
	}
	recs, err := lastAudit(s.wallet.Audit(), statusAuditRecords)
	if err != nil {
		s.log.Error("status page: read audit log", "err", err)
		v.AuditErr = err.Error()
	}
	v.Audit = newAuditViews(recs)
	if r.Method == http.MethodGet && r.URL.Query().Get("verify") == "audit" {
		n, err := s.wallet.Audit().Verify()
		v.Verify = &verifyView{OK: err == nil, Records: n}
		if err != nil {
			v.Verify.Err = auditVerifyMessage(err)
		}
	}
	return v
}

// auditVerifyMessage is the sentence for a failed verification of the audit chain.
func auditVerifyMessage(err error) string {
	return sentence(strings.TrimPrefix(err.Error(), "verify audit log: "))
}

// pageWalletIn reads the wallet's status for a page that needs the wallet in state. It
// answers the request itself, with a redirect to the status page when the wallet is in
// another state, and returns false when it did.
func (s *Server) pageWalletIn(w http.ResponseWriter, r *http.Request, state string) (hsm.Status, bool) {
	st, ok := s.walletStatus(w, r, false)
	if ok && st.State != state {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return st, false
	}
	return st, ok
}

// pageWalletExists reads the wallet's status for a form that needs a wallet set up. It
// answers the request itself, with a redirect to the wallet setup when there is no wallet,
// and returns false when it did.
func (s *Server) pageWalletExists(w http.ResponseWriter, r *http.Request) (hsm.Status, bool) {
	st, ok := s.walletStatus(w, r, false)
	if ok && st.State == hsm.StateNone {
		http.Redirect(w, r, "/wallet/setup", http.StatusSeeOther)
		return st, false
	}
	return st, ok
}

// pendingState is what the pages need to know of the session's pending wallet.
type pendingState struct {
	found, restored, confirmed bool
	positions                  []int
}

func (s *Server) pendingState(r *http.Request) pendingState {
	var ps pendingState
	s.pending.with(sessionFrom(r.Context()).key, s.now(), func(p *pendingWallet) {
		ps = pendingState{found: true, restored: p.restored, confirmed: p.confirmed,
			positions: slices.Clone(p.positions)}
	})
	return ps
}

// setupGone answers a step of the wallet setup that finds nothing pending.
func (s *Server) setupGone(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusGone, "Wallet setup expired",
		fmt.Sprintf("No wallet is being set up in this session: the words are forgotten %s after they were "+
			"shown or entered, and at logout. Nothing was saved. Start again from the status page.",
			humanDuration(pendingLifetime)))
}

func (s *Server) walletSetupPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pageWalletIn(w, r, hsm.StateNone); !ok {
		return
	}
	s.render(w, http.StatusOK, "wallet-setup", walletSetupData{
		layoutData: s.layout(r, "Set up the wallet", true), Words: "12", Pending: s.pendingState(r).found,
	})
}

func (s *Server) walletCreateForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pageWalletIn(w, r, hsm.StateNone); !ok {
		return
	}
	n, err := strconv.Atoi(r.PostFormValue("words"))
	if err != nil || (n != 12 && n != 24) {
		s.render(w, http.StatusBadRequest, "wallet-setup", walletSetupData{
			layoutData: s.layout(r, "Set up the wallet", true), Words: "12",
			Errors: fieldErrors{"words": "Choose 12 or 24 words."},
		})
		return
	}
	m, err := s.wallet.NewMnemonic(n)
	if err != nil {
		s.internalError(w, r, false, "generate mnemonic", err)
		return
	}
	positions := rand.Perm(n)[:confirmWords]
	for i := range positions {
		positions[i]++
	}
	slices.Sort(positions)
	s.pending.put(sessionFrom(r.Context()).key, &pendingWallet{mnemonic: []byte(m), positions: positions}, s.now())
	s.log.Info("wallet: new mnemonic generated, waiting for confirmation", "words", n, "client", clientAddr(r))
	http.Redirect(w, r, "/wallet/words", http.StatusSeeOther)
}

func (s *Server) walletWordsPage(w http.ResponseWriter, r *http.Request) {
	var words []string
	s.pending.with(sessionFrom(r.Context()).key, s.now(), func(p *pendingWallet) {
		if !p.restored && !p.confirmed {
			words = strings.Fields(string(p.mnemonic))
		}
	})
	if words == nil {
		http.Redirect(w, r, "/wallet/setup", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "wallet-words", wordsData{layoutData: s.layout(r, "Write down your words", true), Words: words})
}

func (s *Server) walletConfirmPage(w http.ResponseWriter, r *http.Request) {
	ps := s.pendingState(r)
	if !ps.found || ps.restored || ps.confirmed {
		http.Redirect(w, r, "/wallet/setup", http.StatusSeeOther)
		return
	}
	var asks []confirmAsk
	for _, pos := range ps.positions {
		asks = append(asks, confirmAsk{Position: pos})
	}
	s.render(w, http.StatusOK, "wallet-confirm", confirmData{layoutData: s.layout(r, "Confirm your words", true), Asks: asks})
}

func (s *Server) walletConfirmForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read: "+err.Error())
		return
	}
	var asks []confirmAsk
	found, done := false, false
	s.pending.with(sessionFrom(r.Context()).key, s.now(), func(p *pendingWallet) {
		if p.restored || p.confirmed {
			found, done = true, true
			return
		}
		found = true
		words := strings.Fields(string(p.mnemonic))
		ok := true
		for _, pos := range p.positions {
			a := confirmAsk{Position: pos}
			typed := strings.ToLower(strings.TrimSpace(r.PostForm.Get(fmt.Sprintf("word-%d", pos))))
			switch {
			case typed == "":
				a.Error = fmt.Sprintf("Enter word %d.", pos)
			case pos > len(words) || subtle.ConstantTimeCompare([]byte(typed), []byte(words[pos-1])) != 1:
				a.Error = fmt.Sprintf("This is not word %d of your mnemonic.", pos)
			}
			ok = ok && a.Error == ""
			asks = append(asks, a)
		}
		p.confirmed = ok
		done = ok
	})
	switch {
	case !found:
		s.setupGone(w, r)
	case done:
		s.log.Info("wallet: mnemonic confirmed", "client", clientAddr(r))
		http.Redirect(w, r, "/wallet/protect", http.StatusSeeOther)
	default:
		s.render(w, http.StatusBadRequest, "wallet-confirm", confirmData{layoutData: s.layout(r, "Confirm your words", true), Asks: asks})
	}
}

func (s *Server) walletRestorePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pageWalletIn(w, r, hsm.StateNone); !ok {
		return
	}
	s.render(w, http.StatusOK, "wallet-restore", restoreData{layoutData: s.layout(r, "Restore a wallet", true)})
}

func (s *Server) walletRestoreForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pageWalletIn(w, r, hsm.StateNone); !ok {
		return
	}
	phrase := strings.Join(strings.Fields(strings.ToLower(r.PostFormValue("mnemonic"))), " ")
	bip39 := []byte(r.PostFormValue("bip39_passphrase"))
	errs := fieldErrors{}
	words := 0
	if phrase == "" {
		errs["mnemonic"] = "Enter the words of your mnemonic."
	} else if m, err := keys.ParseMnemonic(phrase); err != nil {
		f, ok := s.knownWalletError(w, r, false, "check mnemonic", err)
		if !ok {
			return
		}
		errs["mnemonic"] = f.msg
	} else {
		words = m.WordCount()
		if msg := checkBIP39Length(bip39); msg != "" {
			errs["bip39_passphrase"] = msg
		} else if seed, err := m.Seed(bip39); err != nil {
			f, _ := classifyWalletError(err)
			errs["bip39_passphrase"] = f.msg
		} else {
			seal.Zero(seed)
		}
		m.Zero()
	}
	if len(errs) > 0 {
		seal.Zero(bip39)
		s.render(w, http.StatusBadRequest, "wallet-restore", restoreData{
			layoutData: s.layout(r, "Restore a wallet", true), Errors: errs, Advanced: errs["bip39_passphrase"] != "",
		})
		return
	}
	s.pending.put(sessionFrom(r.Context()).key, &pendingWallet{mnemonic: []byte(phrase), bip39: bip39, restored: true, confirmed: true}, s.now())
	s.log.Info("wallet: mnemonic entered for restore", "words", words, "client", clientAddr(r))
	http.Redirect(w, r, "/wallet/protect", http.StatusSeeOther)
}

// protectForm returns the protection form for the protections available, with selected
// checked (the first one offered when it is not available).
func protectForm(available []string, selected string) protectData {
	d := protectData{Errors: fieldErrors{}}
	if !slices.Contains(available, selected) {
		selected = ""
	}
	for _, kind := range append(slices.Clone(protectionOrder), available...) {
		if !slices.Contains(available, kind) || slices.ContainsFunc(d.Options, func(o protectOption) bool { return o.Kind == kind }) {
			continue
		}
		if selected == "" {
			selected = kind
		}
		name, hint, _ := strings.Cut(protectionLabel(kind), " — ")
		d.Options = append(d.Options, protectOption{Kind: kind, Name: name, Hint: hint, Checked: kind == selected})
		switch kind {
		case seal.KindPassphrase:
			d.HasPassphrase = true
		case seal.KindPIV:
			d.HasPIV, d.HasRecovery = true, true
		default:
			d.HasRecovery = true
		}
	}
	return d
}

// protectInputFrom reads the protection form.
func protectInputFrom(r *http.Request) protectInput {
	return protectInput{
		Kind:            r.PostFormValue("protection"),
		Passphrase:      r.PostFormValue("passphrase"),
		Confirm:         r.PostFormValue("confirm"),
		PIN:             r.PostFormValue("pin"),
		Recovery:        r.PostFormValue("recovery"),
		RecoveryConfirm: r.PostFormValue("recovery_confirm"),
	}
}

// setupProtectForm is the protection step of the wallet being set up in the session, with
// selected checked. It answers the request itself and returns false when there is no such
// step: a wallet exists (the pending one is dropped), nothing is pending (gone answers), or
// the words are not confirmed yet.
func (s *Server) setupProtectForm(w http.ResponseWriter, r *http.Request, selected string, gone http.HandlerFunc) (hsm.Status, protectData, bool) {
	st, ok := s.walletStatus(w, r, false)
	if !ok {
		return st, protectData{}, false
	}
	if st.State != hsm.StateNone {
		s.pending.drop(sessionFrom(r.Context()).key)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return st, protectData{}, false
	}
	ps := s.pendingState(r)
	switch {
	case !ps.found:
		gone(w, r)
		return st, protectData{}, false
	case !ps.confirmed:
		http.Redirect(w, r, "/wallet/confirm", http.StatusSeeOther)
		return st, protectData{}, false
	}
	d := protectForm(st.Available, selected)
	d.layoutData, d.Restored = s.layout(r, "Protect your wallet", true), ps.restored
	return st, d, true
}

func (s *Server) walletProtectPage(w http.ResponseWriter, r *http.Request) {
	toSetup := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/wallet/setup", http.StatusSeeOther)
	}
	if _, d, ok := s.setupProtectForm(w, r, "", toSetup); ok {
		s.render(w, http.StatusOK, "wallet-protect", d)
	}
}

func (s *Server) walletProtectForm(w http.ResponseWriter, r *http.Request) {
	pi := protectInputFrom(r)
	st, d, ok := s.setupProtectForm(w, r, pi.Kind, s.setupGone)
	if !ok {
		return
	}
	key := sessionFrom(r.Context()).key
	if d.Errors = pi.validate(st.Available); len(d.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "wallet-protect", d)
		return
	}
	var mnemonic string
	var bip39 []byte
	s.pending.with(key, s.now(), func(p *pendingWallet) {
		mnemonic, bip39 = string(p.mnemonic), slices.Clone(p.bip39)
	})
	if mnemonic == "" {
		s.setupGone(w, r)
		return
	}
	wait, err := s.setupWallet(r, mnemonic, bip39, pi)
	if code, ok := s.protectFailed(w, r, &d, "set up wallet", wait, err); !ok {
		if code != 0 {
			s.render(w, code, "wallet-protect", d)
		}
		return
	}
	s.pending.drop(key)
	if s.node != nil { // step 3: how the box reaches the Bitcoin network
		http.Redirect(w, r, "/node/backend?setup=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// protectFailed puts a refused or failed protection (setup or change) into d. It returns
// ok when there was neither, and code 0 when it has answered the request itself.
func (s *Server) protectFailed(w http.ResponseWriter, r *http.Request, d *protectData, what string, wait time.Duration, err error) (code int, ok bool) {
	f, ok := s.attemptFailed(w, r, false, what, wait, err)
	if ok || f.status == 0 {
		return f.status, ok
	}
	switch f.field {
	case "protection", "passphrase", "pin", "recovery":
		d.Errors[f.field] = f.msg
	default:
		d.Alert = f.msg
	}
	if f.status == http.StatusUnauthorized && d.Errors["pin"] == "" && slices.ContainsFunc(d.Options, func(o protectOption) bool {
		return o.Checked && o.Kind == seal.KindPIV
	}) {
		d.Errors["pin"], d.Alert = f.msg, ""
	}
	return f.status, false
}

func (s *Server) walletCancelForm(w http.ResponseWriter, r *http.Request) {
	s.pending.drop(sessionFrom(r.Context()).key)
	s.log.Info("wallet: setup cancelled", "client", clientAddr(r))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) walletUnlockForm(w http.ResponseWriter, r *http.Request) {
	st, ok := s.pageWalletExists(w, r)
	if !ok {
		return
	}
	if st.State == hsm.StateUnlocked {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	passphrase, pin := r.PostFormValue("passphrase"), r.PostFormValue("pin")
	if _, missing := unlockMissing(st.Protection, passphrase, pin); missing != "" {
		s.renderStatus(w, r, http.StatusBadRequest, func(v *walletView) { v.UnlockError = missing })
		return
	}
	wait, err := s.unlockWallet(r, passphrase, pin)
	if f, ok := s.attemptFailed(w, r, false, "unlock wallet", wait, err); !ok {
		if f.status != 0 {
			s.renderStatus(w, r, f.status, func(v *walletView) {
				if !v.BootChanged {
					v.UnlockError = f.msg
				}
			})
		}
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) walletRecoverForm(w http.ResponseWriter, r *http.Request) {
	st, ok := s.pageWalletExists(w, r)
	if !ok {
		return
	}
	recovery, pin := r.PostFormValue("recovery"), r.PostFormValue("pin")
	fail := func(code int, msg string) {
		s.renderStatus(w, r, code, func(v *walletView) {
			v.RecoverErrors, v.RecoverOpen = fieldErrors{"recovery": msg}, true
		})
	}
	switch {
	case !st.Recovery:
		f, _ := classifyWalletError(hsm.ErrNotRecoverable)
		fail(f.status, f.msg)
		return
	case recovery == "":
		fail(http.StatusBadRequest, recoveryMissing)
		return
	}
	wait, err := s.recoverWallet(r, recovery, pin)
	if f, ok := s.attemptFailed(w, r, false, "recover wallet", wait, err); !ok {
		if f.status != 0 {
			fail(f.status, f.msg)
		}
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) walletLockForm(w http.ResponseWriter, r *http.Request) {
	st, ok := s.walletStatus(w, r, false)
	if !ok {
		return
	}
	if st.State != hsm.StateNone {
		s.lockWallet(r)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// changeProtectionForm is the page that changes the protection of the wallet of status st,
// with selected checked.
func (s *Server) changeProtectionForm(r *http.Request, st hsm.Status, selected string) protectData {
	d := protectForm(st.Available, selected)
	d.layoutData, d.Change, d.Current = s.layout(r, "Change protection", true), true, protectionName(st.Protection)
	return d
}

func (s *Server) walletProtectionPage(w http.ResponseWriter, r *http.Request) {
	st, ok := s.pageWalletIn(w, r, hsm.StateUnlocked)
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "wallet-protect", s.changeProtectionForm(r, st, st.Protection))
}

func (s *Server) walletProtectionForm(w http.ResponseWriter, r *http.Request) {
	st, ok := s.pageWalletIn(w, r, hsm.StateUnlocked)
	if !ok {
		return
	}
	pi := protectInputFrom(r)
	d := s.changeProtectionForm(r, st, pi.Kind)
	if d.Errors = pi.validate(st.Available); len(d.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "wallet-protect", d)
		return
	}
	wait, err := s.changeProtection(r, st.Protection, pi)
	if code, ok := s.protectFailed(w, r, &d, "change protection", wait, err); !ok {
		if code != 0 {
			s.render(w, code, "wallet-protect", d)
		}
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signPage answers with the page that takes a PSBT, saying why when something went wrong.
func (s *Server) signPage(w http.ResponseWriter, r *http.Request, code int, st hsm.Status, psbt, msg string) {
	s.render(w, code, "wallet-sign", signData{
		layoutData: s.layout(r, "Sign a PSBT", false),
		Unlocked:   st.State == hsm.StateUnlocked, State: st.State, PSBT: psbt, Error: msg,
	})
}

// signFormWallet reads the wallet's status for a form of the signing, which needs the wallet
// unlocked. It answers the request itself, with the sign page keeping psbt when the wallet is
// not unlocked, and returns false when it did.
func (s *Server) signFormWallet(w http.ResponseWriter, r *http.Request, psbt string) (hsm.Status, bool) {
	st, ok := s.walletStatus(w, r, false)
	if ok && st.State != hsm.StateUnlocked {
		s.signPage(w, r, http.StatusConflict, st, psbt, "")
		return st, false
	}
	return st, ok
}

func (s *Server) walletSignPage(w http.ResponseWriter, r *http.Request) {
	st, ok := s.walletStatus(w, r, false)
	if !ok {
		return
	}
	s.signPage(w, r, http.StatusOK, st, "", "")
}

// uploadedPSBT returns the PSBT of the file field, if one was sent: binary, or base64 text.
func uploadedPSBT(r *http.Request) ([]byte, error) {
	f, _, err := r.FormFile("file")
	if errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPSBTBody))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, psbtMagic) {
		return data, nil
	}
	return psbtText(string(data)), nil
}

func (s *Server) walletReviewForm(w http.ResponseWriter, r *http.Request) {
	text := r.PostFormValue("psbt")
	st, ok := s.signFormWallet(w, r, text)
	if !ok {
		return
	}
	data, err := uploadedPSBT(r)
	if err != nil {
		s.signPage(w, r, http.StatusBadRequest, st, text, "The file could not be read: "+err.Error())
		return
	}
	if len(data) == 0 {
		data = psbtText(text)
	}
	if len(data) == 0 {
		s.signPage(w, r, http.StatusBadRequest, st, text, "Paste a PSBT or choose a file.")
		return
	}
	sum, err := s.wallet.Summarize(data)
	if err != nil {
		f, known := s.knownWalletError(w, r, false, "summarize PSBT", err)
		if !known {
			return
		}
		s.signPage(w, r, f.status, st, text, f.msg)
		return
	}
	b64 := string(data)
	if bytes.HasPrefix(data, psbtMagic) {
		b64 = base64.StdEncoding.EncodeToString(data)
	}
	s.render(w, http.StatusOK, "wallet-review", reviewData{
		layoutData: s.layout(r, "Review the transaction", false), Summary: newSummaryView(sum), PSBT: b64,
	})
}

func (s *Server) walletSignForm(w http.ResponseWriter, r *http.Request) {
	b64 := r.PostFormValue("psbt")
	st, ok := s.signFormWallet(w, r, b64)
	if !ok {
		return
	}
	data := psbtText(b64)
	if len(data) == 0 {
		s.signPage(w, r, http.StatusBadRequest, st, "", "Paste a PSBT or choose a file.")
		return
	}
	v, err := s.signPSBT(r, data, r.PostFormValue("finalize") == "1")
	if err != nil {
		f, known := s.knownWalletError(w, r, false, "sign PSBT", err)
		if !known {
			return
		}
		if f.violations != nil {
			if sum, err := s.wallet.Summarize(data); err == nil {
				s.render(w, f.status, "wallet-review", reviewData{
					layoutData: s.layout(r, "Review the transaction", false), Summary: newSummaryView(sum),
					PSBT: b64, Refused: f.msg,
				})
				return
			}
		}
		s.signPage(w, r, f.status, st, b64, f.msg)
		return
	}
	s.render(w, http.StatusOK, "wallet-signed", signedData{layoutData: s.layout(r, "Signed", false), Result: v})
}

// walletDownloadForm turns the signed PSBT of the result page into a .psbt file.
func (s *Server) walletDownloadForm(w http.ResponseWriter, r *http.Request) {
	raw, err := base64.StdEncoding.DecodeString(string(psbtText(r.PostFormValue("psbt"))))
	if err != nil || !bytes.HasPrefix(raw, psbtMagic) {
		s.errorPage(w, r, http.StatusBadRequest, "Not a PSBT", "The download needs a PSBT in base64.")
		return
	}
	name := "signed.psbt"
	if p, err := sign.Parse(raw); err == nil {
		name = "signed-" + p.UnsignedTx.TxHash().String()[:12] + ".psbt"
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Write(raw)
}
