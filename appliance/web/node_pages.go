package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
)

// sendTimeout bounds signing and broadcasting a confirmed proposal. The send does not end
// when the browser goes away: a half-done send would leave the owner guessing.
const sendTimeout = time.Minute

// maxLabel bounds the label of a BIP21 URI.
const maxLabel = 100

type nodeData struct {
	layoutData
	Missing    string // no wallet service, and why
	NoBackend  bool   // no backend chosen yet
	Backend    string // the saved backend, in a line
	Sync       syncView
	Peers      []peerView
	ShowPeers  bool // the backend reports its own peers (the light client)
	Balance    balanceView
	BalanceErr string
	Fees       feeTable
	Locked     bool // the custody is locked: sending needs an unlock
}

type backendForm struct {
	Kind       string
	Host       string
	User       string
	CookieFile string
	Cert       string
	NoTLS      bool
	Peers      string // one per line
	PassSet    bool   // a password is saved for this host; an empty field keeps it
}

type backendData struct {
	layoutData
	Setup      bool // offered as a step of the first setup
	Form       backendForm
	Errors     fieldErrors
	Problem    string // the check failed: why, in a sentence
	ProblemAt  string // ... shown next to this field, named for the owner
	SaveAnyway bool   // offer to save what failed the check
	Current    string // the saved backend, in a line
}

type receiveData struct {
	layoutData
	Missing string
	Receive receiveView
	Amount  string // as typed, BTC
	Label   string
	Errors  fieldErrors
	Alert   string
}

type sendData struct {
	layoutData
	Missing   string
	In        sendInput
	Errors    fieldErrors
	Alert     string
	Targets   []targetView
	Suggested string // sat/vB for the chosen target, prefilled
	Advanced  bool   // open the advanced options
	Balance   string // confirmed, BTC
	Locked    bool
}

type nodeReviewData struct {
	layoutData
	P            proposalView
	NeedPassword bool // the session is not fresh: the admin password confirms
	Errors       fieldErrors
	Alert        string
	Violations   []violationView
	Locked       bool
	Back         string // where Cancel leads
}

type sentData struct {
	layoutData
	TxID    string
	Kind    string
	Leaving string
}

type historyData struct {
	layoutData
	Missing string
	Txs     []txView
	Err     string
}

type speedupData struct {
	layoutData
	Kind      string // bump or cpfp
	Tx        txView
	Current   string // the transaction's fee rate, sat/vB, "" when unknown
	Rate      string // prefilled or typed, sat/vB
	Suggested string
	Errors    fieldErrors
	Alert     string
}

// custodyLocked reports whether the box's keys are locked (sending then fails).
func (s *Server) custodyLocked() bool {
	if s.wallet == nil {
		return false
	}
	st, err := s.wallet.Status()
	return err == nil && st.State == hsm.StateLocked
}

func (s *Server) nodeDashboardPage(w http.ResponseWriter, r *http.Request) {
	d := nodeData{layoutData: s.layout(r, "Wallet", false)}
	if bs, ok, err := s.node.LoadBackend(); err != nil {
		s.log.Error("node: load backend settings", "err", err)
	} else {
		d.NoBackend, d.Backend = !ok, backendSummary(bs)
	}
	nw, missing := s.nodeWallet()
	if nw == nil {
		d.Missing = missing
		s.render(w, http.StatusOK, "node", d)
		return
	}
	st := nw.Sync()
	d.Sync = newSyncView(st, s.now())
	if peers := nw.Peers(); len(peers) > 0 { // a backend with peers of its own: the light client
		d.Peers, d.ShowPeers = newPeerViews(peers), true
	}
	if b, err := nw.Balance(); err != nil {
		s.log.Error("node: balance", "err", err)
		d.BalanceErr = "The balance could not be read: " + err.Error()
	} else {
		d.Balance = newBalanceView(b)
	}
	d.Fees = newFeeTable(dashboardTargets, feeSuggestions(r.Context(), nw, dashboardTargets))
	d.Locked = s.custodyLocked()
	s.render(w, http.StatusOK, "node", d)
}

// backendFormFrom fills the form from saved settings.
func backendFormFrom(bs BackendSettings, ok bool) backendForm {
	f := backendForm{Kind: BackendP2P}
	if !ok {
		return f
	}
	f.Kind, f.Host, f.User, f.CookieFile, f.Cert, f.NoTLS = bs.Kind, bs.Host, bs.User, bs.CookieFile, bs.Cert, bs.NoTLS
	f.Peers = strings.Join(bs.Peers, "\n")
	f.PassSet = bs.Pass != ""
	return f
}

func (s *Server) backendPage(r *http.Request, setup bool) (backendData, error) {
	bs, ok, err := s.node.LoadBackend()
	if err != nil {
		return backendData{}, err
	}
	d := backendData{layoutData: s.layout(r, "Chain backend", true), Setup: setup, Form: backendFormFrom(bs, ok),
		Errors: fieldErrors{}}
	if ok {
		d.Current = backendSummary(bs)
	}
	return d, nil
}

func (s *Server) nodeBackendPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.backendPage(r, r.URL.Query().Get("setup") == "1")
	if err != nil {
		s.internalError(w, r, false, "load backend settings", err)
		return
	}
	s.render(w, http.StatusOK, "node-backend", d)
}

// backendInput reads the settings of the backend form.
func backendInput(r *http.Request) BackendSettings {
	bs := BackendSettings{
		Kind:       r.PostFormValue("kind"),
		Host:       strings.TrimSpace(r.PostFormValue("host")),
		User:       strings.TrimSpace(r.PostFormValue("user")),
		Pass:       r.PostFormValue("pass"),
		CookieFile: strings.TrimSpace(r.PostFormValue("cookie_file")),
		Cert:       strings.TrimSpace(r.PostFormValue("cert")),
		NoTLS:      r.PostFormValue("no_tls") == "1",
	}
	for _, line := range strings.FieldsFunc(r.PostFormValue("peers"), func(c rune) bool {
		return c == '\n' || c == '\r' || c == ',' || c == ' ' || c == '\t'
	}) {
		bs.Peers = append(bs.Peers, line)
	}
	if bs.Kind != BackendRPC {
		bs.Host, bs.User, bs.Pass, bs.CookieFile, bs.Cert, bs.NoTLS = "", "", "", "", "", false
	}
	if bs.Kind != BackendP2P {
		bs.Peers = nil
	}
	return bs
}

// keepPassword fills in the saved password when the owner left the field empty to keep it:
// only for the same kind, host and user, so that a changed host never receives the saved
// password without the owner typing it.
func keepPassword(in BackendSettings, saved BackendSettings, ok bool) BackendSettings {
	if ok && in.Kind == BackendRPC && in.Pass == "" && in.CookieFile == "" && saved.Kind == BackendRPC &&
		saved.Pass != "" && saved.Host == in.Host && saved.User == in.User {
		in.Pass = saved.Pass
	}
	return in
}

// backendOutcome is the result of trying settings: saved, or why not.
type backendOutcome struct {
	errs    fieldErrors // invalid settings
	problem string      // the check failed
	field   string      // ... at this field
	status  int
}

// tryBackend validates, opens and checks bs and, when it works (or anyway), saves it and
// hands it to the wallet. A node that is still syncing counts as working: the settings are
// right and the wallet waits for it.
func (s *Server) tryBackend(ctx context.Context, r *http.Request, bs BackendSettings, anyway bool) (backendOutcome, error) {
	if errs := fieldErrors(s.node.ValidateBackend(bs)); len(errs) > 0 {
		return backendOutcome{errs: errs, status: http.StatusBadRequest}, nil
	}
	b, err := s.node.OpenBackend(bs)
	var fe BackendFieldErrors
	switch {
	case errors.As(err, &fe):
		return backendOutcome{errs: fieldErrors(fe), status: http.StatusBadRequest}, nil
	case err != nil:
		return backendOutcome{problem: backendSentence(err), status: http.StatusBadRequest}, nil
	}
	if !anyway {
		limit := checkTimeout
		if bs.Kind == BackendP2P {
			// A light client is checked until it has a peer and caught up, which a new one
			// never has: a short check tells a dead network from a syncing one.
			limit = checkTimeoutP2P
		}
		cctx, cancel := context.WithTimeout(ctx, limit)
		err := s.node.CheckBackend(cctx, b)
		cancel()
		if err != nil && !errors.Is(err, chain.ErrSyncing) {
			b.Close()
			s.log.Warn("node: backend check failed", "kind", bs.Kind, "host", bs.Host, "err", err, "client", clientAddr(r))
			return backendOutcome{problem: backendSentence(err), field: backendField(bs.Kind, err),
				status: http.StatusUnprocessableEntity}, nil
		}
	}
	if err := s.node.SaveBackend(bs); err != nil {
		b.Close()
		return backendOutcome{}, err
	}
	s.node.UseBackend(b)
	s.log.Info("node: chain backend saved", "kind", bs.Kind, "host", bs.Host, "peers", len(bs.Peers),
		"checked", !anyway, "client", clientAddr(r))
	return backendOutcome{}, nil
}

func (s *Server) nodeBackendForm(w http.ResponseWriter, r *http.Request) {
	setup := r.PostFormValue("setup") == "1"
	d, err := s.backendPage(r, setup)
	if err != nil {
		s.internalError(w, r, false, "load backend settings", err)
		return
	}
	key := sessionFrom(r.Context()).key
	saved, ok, _ := s.node.LoadBackend()
	var bs BackendSettings
	anyway := r.PostFormValue("action") == "save_anyway"
	if anyway {
		var found bool
		if bs, found = s.backendStash.get(key, s.now()); !found {
			d.Problem = "There is nothing to save anymore: fill in the form again."
			s.render(w, http.StatusGone, "node-backend", d)
			return
		}
	} else {
		bs = keepPassword(backendInput(r), saved, ok)
	}
	out, err := s.tryBackend(r.Context(), r, bs, anyway)
	if err != nil {
		s.internalError(w, r, false, "save backend settings", err)
		return
	}
	if out.status == 0 {
		s.backendStash.drop(key)
		http.Redirect(w, r, "/node", http.StatusSeeOther)
		return
	}
	d.Form = backendFormFrom(bs, true)
	d.Form.PassSet = keepPassword(BackendSettings{Kind: bs.Kind, Host: bs.Host, User: bs.User}, saved, ok).Pass != ""
	if out.errs != nil {
		d.Errors = out.errs
	}
	d.Problem = out.problem
	if out.problem != "" && out.field != "" {
		d.Errors[out.field] = out.problem
		d.ProblemAt = map[string]string{"host": "host and port", "pass": "password", "cert": "certificate",
			"peers": "peers"}[out.field]
	}
	if out.status == http.StatusUnprocessableEntity {
		s.backendStash.put(key, bs, s.now(), stashLifetime)
		d.SaveAnyway = true
	}
	s.render(w, out.status, "node-backend", d)
}

// receiveAddress returns the address handed to this session, or a new one.
func (s *Server) receiveAddress(r *http.Request, nw NodeWallet, fresh bool) (wallet.Address, error) {
	key := sessionFrom(r.Context()).key
	if !fresh {
		if a, ok := s.addresses.get(key, s.now()); ok {
			return a, nil
		}
	}
	a, err := nw.NewAddress()
	if err != nil {
		return wallet.Address{}, err
	}
	s.addresses.put(key, a, s.now(), stashLifetime)
	return a, nil
}

// parseReceive reads the optional amount (BTC) and label of a receive request.
func parseReceive(amount, label string) (int64, string, fieldErrors) {
	errs := fieldErrors{}
	var sats int64
	if strings.TrimSpace(amount) != "" {
		var msg string
		if sats, msg = parseAmount(amount, "btc"); msg != "" {
			errs["amount"] = msg
		}
	}
	label = strings.TrimSpace(label)
	if utf8.RuneCountInString(label) > maxLabel {
		errs["label"] = "Keep the label under " + strconv.Itoa(maxLabel) + " characters."
	}
	return sats, label, errs
}

func (s *Server) nodeReceivePage(w http.ResponseWriter, r *http.Request) {
	d := receiveData{layoutData: s.layout(r, "Receive", true), Errors: fieldErrors{}}
	nw, missing := s.nodeWallet()
	if nw == nil {
		d.Missing = missing
		s.render(w, http.StatusOK, "node-receive", d)
		return
	}
	q := r.URL.Query()
	d.Amount, d.Label = q.Get("amount"), q.Get("label")
	sats, label, errs := parseReceive(d.Amount, d.Label)
	a, err := s.receiveAddress(r, nw, false)
	if err != nil {
		f, ok := s.knownNodeError(w, r, false, "new address", err)
		if !ok {
			return
		}
		d.Alert = f.msg
		s.render(w, f.status, "node-receive", d)
		return
	}
	code := http.StatusOK
	if len(errs) > 0 {
		d.Errors, code = errs, http.StatusBadRequest
		sats, label = 0, ""
	}
	if d.Receive, err = newReceiveView(a, sats, label); err != nil {
		s.internalError(w, r, false, "draw QR code", err)
		return
	}
	s.render(w, code, "node-receive", d)
}

// nodeReceiveNew hands the session a new address.
func (s *Server) nodeReceiveNew(w http.ResponseWriter, r *http.Request) {
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.errorPage(w, r, http.StatusConflict, "No wallet", missing)
		return
	}
	if _, err := s.receiveAddress(r, nw, true); err != nil {
		if f, ok := s.knownNodeError(w, r, false, "new address", err); ok {
			s.errorPage(w, r, f.status, "No new address", f.msg)
		}
		return
	}
	http.Redirect(w, r, "/node/receive", http.StatusSeeOther)
}

// knownNodeError classifies an error of the wallet service. An unexpected one it logs and
// answers 500 itself, and returns false.
func (s *Server) knownNodeError(w http.ResponseWriter, r *http.Request, api bool, what string, err error) (nodeFailure, bool) {
	f, ok := classifyNodeError(err)
	if !ok {
		s.internalError(w, r, api, what, err)
	}
	return f, ok
}

// sendForm returns the send form for in.
func (s *Server) sendForm(r *http.Request, nw NodeWallet, in sendInput) sendData {
	d := sendData{layoutData: s.layout(r, "Send", true), In: in, Errors: fieldErrors{}}
	if d.In.Unit == "" {
		d.In.Unit = "btc"
	}
	target := uint32(defaultTarget)
	if t, err := strconv.ParseUint(in.Target, 10, 32); err == nil && t > 0 {
		target = uint32(t)
	}
	d.In.Target = strconv.FormatUint(uint64(target), 10)
	var blocks []uint32
	for _, t := range feeTargets {
		blocks = append(blocks, t.Blocks)
	}
	ests := feeSuggestions(r.Context(), nw, blocks)
	d.Targets = newTargetViews(ests, target)
	if est, ok := ests[target]; ok && est.Rate > 0 {
		d.Suggested = formatRate(est.Rate)
	}
	if d.In.FeeRate == "" {
		d.In.FeeRate = d.Suggested
	}
	d.Advanced = in.LockTime != "" || in.RelativeLock != ""
	if b, err := nw.Balance(); err == nil {
		d.Balance = formatBTC(b.Confirmed)
	}
	d.Locked = s.custodyLocked()
	return d
}

func (s *Server) nodeSendPage(w http.ResponseWriter, r *http.Request) {
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.render(w, http.StatusOK, "node-send", sendData{layoutData: s.layout(r, "Send", true), Missing: missing})
		return
	}
	// Nothing is prefilled from the URL: a link must not be able to put an address in the form.
	s.render(w, http.StatusOK, "node-send", s.sendForm(r, nw, sendInput{}))
}

// sendInputFrom reads the send form.
func sendInputFrom(r *http.Request) sendInput {
	return sendInput{
		Address:      strings.TrimSpace(r.PostFormValue("address")),
		Amount:       r.PostFormValue("amount"),
		Unit:         r.PostFormValue("unit"),
		SendAll:      r.PostFormValue("send_all") == "1",
		FeeRate:      r.PostFormValue("fee_rate"),
		Target:       r.PostFormValue("target"),
		LockTime:     r.PostFormValue("lock_time"),
		RelativeLock: r.PostFormValue("relative_lock"),
	}
}

// putFailure places f in the form's errors (at its field when the form has it) or alert.
func putFailure(f nodeFailure, errs fieldErrors, alert *string, fields ...string) {
	for _, name := range fields {
		if f.field == name {
			errs[name] = f.msg
			return
		}
	}
	*alert = f.msg
}

func (s *Server) nodeSendForm(w http.ResponseWriter, r *http.Request) {
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.render(w, http.StatusConflict, "node-send", sendData{layoutData: s.layout(r, "Send", true), Missing: missing})
		return
	}
	in := sendInputFrom(r)
	req, errs := in.request()
	if len(errs) > 0 {
		d := s.sendForm(r, nw, in)
		d.Errors = errs
		d.Advanced = d.Advanced || errs["lock_time"] != "" || errs["relative_lock"] != ""
		s.render(w, http.StatusBadRequest, "node-send", d)
		return
	}
	p, err := nw.Propose(r.Context(), req)
	if err != nil {
		f, ok := s.knownNodeError(w, r, false, "propose payment", err)
		if !ok {
			return
		}
		d := s.sendForm(r, nw, in)
		putFailure(f, d.Errors, &d.Alert, "address", "amount", "fee_rate", "lock_time", "relative_lock")
		d.Advanced = d.Advanced || d.Errors["lock_time"] != ""
		s.render(w, f.status, "node-send", d)
		return
	}
	s.showReview(w, r, reviewed{p: p, send: in})
}

// showReview remembers the proposal for the session and shows it.
func (s *Server) showReview(w http.ResponseWriter, r *http.Request, rv reviewed) {
	sess := sessionFrom(r.Context())
	s.proposals.add(sess.key, rv, s.now())
	s.log.Info("node: proposal shown for review", "kind", rv.p.Kind, "id", rv.p.ID, "fee", rv.p.Fee,
		"client", clientAddr(r))
	s.render(w, http.StatusOK, "node-review", s.reviewData(r, rv))
}

func (s *Server) reviewData(r *http.Request, rv reviewed) nodeReviewData {
	var tip int32
	if nw, _ := s.node.Wallet(); nw != nil {
		tip = nw.Sync().Wallet.Height
	}
	d := nodeReviewData{layoutData: s.layout(r, "Review", false), P: newProposalView(rv.p, tip, s.now()),
		NeedPassword: !s.sessionFresh(sessionFrom(r.Context())), Errors: fieldErrors{}, Locked: s.custodyLocked(),
		Back: "/node/send"}
	if rv.p.Kind != "send" {
		d.Back = "/node/history"
	}
	return d
}

func (s *Server) nodeConfirmForm(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	id := r.PostFormValue("proposal")
	rv, found := s.proposals.get(sess.key, id)
	if !found {
		s.errorPage(w, r, http.StatusGone, "Nothing to confirm",
			"This review is not known in this session (it was sent already, or expired, or the box restarted). Nothing was sent.")
		return
	}
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.errorPage(w, r, http.StatusConflict, "No wallet", missing)
		return
	}
	if !s.sessionFresh(sess) {
		d := s.reviewData(r, rv)
		password := r.PostFormValue("password")
		if password == "" {
			d.Errors["password"] = "Type the admin password to confirm."
			s.render(w, http.StatusUnauthorized, "node-review", d)
			return
		}
		res, err := s.checkAdmin(r, password, "send confirmation")
		if err != nil {
			s.internalError(w, r, false, "check password", err)
			return
		}
		if !res.ok {
			status := http.StatusUnauthorized
			if res.wait > 0 {
				status = http.StatusTooManyRequests
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(res.wait)))
			}
			d.Errors["password"] = res.message()
			s.render(w, status, "node-review", d)
			return
		}
	}
	txid, err := s.sendProposal(r, nw, rv)
	if err != nil {
		f, ok := s.knownNodeError(w, r, false, "send", err)
		if !ok {
			return
		}
		s.confirmFailed(w, r, nw, rv, f)
		return
	}
	s.render(w, http.StatusOK, "node-sent", sentData{layoutData: s.layout(r, "Sent", true), TxID: txid,
		Kind: rv.p.Kind, Leaving: formatBTC(rv.p.Sent + rv.p.Fee)})
}

// sendProposal signs, finalizes and broadcasts a reviewed proposal.
func (s *Server) sendProposal(r *http.Request, nw NodeWallet, rv reviewed) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendTimeout)
	defer cancel()
	h, err := nw.Send(ctx, rv.p.ID)
	if err != nil {
		s.log.Warn("node: send failed", "kind", rv.p.Kind, "id", rv.p.ID, "err", err, "client", clientAddr(r))
		return "", err
	}
	s.proposals.remove(sessionFrom(r.Context()).key, rv.p.ID)
	s.log.Info("node: transaction sent", "kind", rv.p.Kind, "txid", h.String(), "fee", rv.p.Fee,
		"client", clientAddr(r))
	return h.String(), nil
}

// confirmFailed answers a confirmation the wallet refused: back to the form that made the
// proposal when it must be made again, else the review with the reason.
func (s *Server) confirmFailed(w http.ResponseWriter, r *http.Request, nw NodeWallet, rv reviewed, f nodeFailure) {
	if f.expired || f.field == "lock_time" {
		if f.field == "lock_time" && strings.TrimSpace(rv.send.LockTime) == "" && strings.TrimSpace(rv.send.RelativeLock) != "" {
			f.field = "relative_lock" // the coins are not old enough yet
		}
		switch rv.p.Kind {
		case "send":
			d := s.sendForm(r, nw, rv.send)
			putFailure(f, d.Errors, &d.Alert, "lock_time", "relative_lock")
			d.Advanced = d.Advanced || d.Errors["lock_time"] != "" || d.Errors["relative_lock"] != ""
			s.render(w, f.status, "node-send", d)
		default:
			s.renderSpeedup(w, r, nw, f.status, rv.p.Kind, rv.txid, rv.rate, func(d *speedupData) { d.Alert = f.msg })
		}
		return
	}
	d := s.reviewData(r, rv)
	d.Alert = f.msg
	if f.violations != nil {
		d.Violations = newViolationViews(f.violations)
	}
	s.render(w, f.status, "node-review", d)
}

func (s *Server) nodeHistoryPage(w http.ResponseWriter, r *http.Request) {
	d := historyData{layoutData: s.layout(r, "History", false)}
	nw, missing := s.nodeWallet()
	if nw == nil {
		d.Missing = missing
		s.render(w, http.StatusOK, "node-history", d)
		return
	}
	entries, err := nw.History()
	if err != nil {
		s.log.Error("node: history", "err", err)
		d.Err = "The history could not be read: " + err.Error()
	}
	d.Txs = newTxViews(entries)
	s.render(w, http.StatusOK, "node-history", d)
}

// historyEntry finds txid in the wallet's history.
func historyEntry(nw NodeWallet, txid string) (wallet.HistoryEntry, bool, error) {
	entries, err := nw.History()
	if err != nil {
		return wallet.HistoryEntry{}, false, err
	}
	for _, e := range entries {
		if e.TxID == txid {
			return e, true, nil
		}
	}
	return wallet.HistoryEntry{}, false, nil
}

// speedupSuggestion is the rate prefilled to speed up e: the estimate for the next few
// blocks, and at least 1 sat/vB above the transaction's own rate (a replacement must pay
// more, and a child below its parent's rate does not help).
func speedupSuggestion(ctx context.Context, nw NodeWallet, e wallet.HistoryEntry) chain.FeeRate {
	rate := e.FeeRate + chain.MinRelayFeeRate
	if est, ok := feeSuggestions(ctx, nw, []uint32{3})[3]; ok && est.Rate > rate {
		rate = est.Rate
	}
	return rate
}

// renderSpeedup answers with the form that bumps (kind "bump") or speeds up with a child
// (kind "cpfp") the transaction txid; rate is what the owner typed ("": the suggestion).
func (s *Server) renderSpeedup(w http.ResponseWriter, r *http.Request, nw NodeWallet, code int, kind, txid, rate string, edit func(*speedupData)) {
	title := "Bump the fee"
	if kind == "cpfp" {
		title = "Speed up with a child"
	}
	e, found, err := historyEntry(nw, txid)
	if err != nil {
		s.internalError(w, r, false, "read history", err)
		return
	}
	if !found {
		s.errorPage(w, r, http.StatusNotFound, "No such transaction", "The wallet has no transaction "+txid+".")
		return
	}
	d := speedupData{layoutData: s.layout(r, title, true), Kind: kind, Tx: newTxViews([]wallet.HistoryEntry{e})[0],
		Rate: rate, Errors: fieldErrors{}}
	if e.FeeRate > 0 {
		d.Current = formatRate(e.FeeRate)
	}
	d.Suggested = formatRate(speedupSuggestion(r.Context(), nw, e))
	if d.Rate == "" {
		d.Rate = d.Suggested
	}
	if edit != nil {
		edit(&d)
	}
	s.render(w, code, "node-speedup", d)
}

// speedupKind is "bump" or "cpfp", from the route.
func speedupKind(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/cpfp") {
		return "cpfp"
	}
	return "bump"
}

func (s *Server) nodeSpeedupPage(w http.ResponseWriter, r *http.Request) {
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.errorPage(w, r, http.StatusConflict, "No wallet", missing)
		return
	}
	txid := r.URL.Query().Get("txid")
	if _, ok := parseTxID(txid); !ok {
		s.errorPage(w, r, http.StatusBadRequest, "No such transaction", "Choose a transaction on the history page.")
		return
	}
	s.renderSpeedup(w, r, nw, http.StatusOK, speedupKind(r), txid, "", nil)
}

func (s *Server) nodeSpeedupForm(w http.ResponseWriter, r *http.Request) {
	nw, missing := s.nodeWallet()
	if nw == nil {
		s.errorPage(w, r, http.StatusConflict, "No wallet", missing)
		return
	}
	kind, txid, rateText := speedupKind(r), r.PostFormValue("txid"), r.PostFormValue("fee_rate")
	h, ok := parseTxID(txid)
	if !ok {
		s.errorPage(w, r, http.StatusBadRequest, "No such transaction", "Choose a transaction on the history page.")
		return
	}
	rate, msg := parseFeeRate(rateText)
	if msg != "" {
		s.renderSpeedup(w, r, nw, http.StatusBadRequest, kind, txid, rateText, func(d *speedupData) { d.Errors["fee_rate"] = msg })
		return
	}
	var p *wallet.Proposal
	var err error
	if kind == "cpfp" {
		p, err = nw.ProposeCPFP(r.Context(), h, rate)
	} else {
		p, err = nw.ProposeBump(r.Context(), h, rate)
	}
	if err != nil {
		f, ok := s.knownNodeError(w, r, false, "propose "+kind, err)
		if !ok {
			return
		}
		if f.field == "amount" { // not enough coins for the higher fee
			f.field = "fee_rate"
		}
		s.renderSpeedup(w, r, nw, f.status, kind, txid, rateText, func(d *speedupData) {
			putFailure(f, d.Errors, &d.Alert, "fee_rate")
		})
		return
	}
	s.showReview(w, r, reviewed{p: p, txid: txid, rate: rateText})
}
