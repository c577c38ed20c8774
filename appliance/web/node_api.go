package web

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
)

// nodeReply is the answer of GET /api/node: what the dashboard shows.
type nodeReply struct {
	Sync    wallet.SyncStatus    `json:"sync"`
	Peers   []chain.Peer         `json:"peers"`
	Balance *balanceReply        `json:"balance,omitempty"`
	Fees    []wallet.FeeEstimate `json:"fees"`
	Backend *backendReply        `json:"backend,omitempty"`
	// Locked: the keys are locked, sending fails until they are unlocked.
	Locked bool `json:"locked"`
}

type balanceReply struct {
	Confirmed   int64 `json:"confirmed"`   // satoshis
	Unconfirmed int64 `json:"unconfirmed"` // satoshis
}

// backendReply is the saved backend, without its password.
type backendReply struct {
	BackendSettings
	PassSet bool `json:"pass_set"`
}

func newBackendReply(bs BackendSettings) *backendReply {
	r := &backendReply{BackendSettings: bs, PassSet: bs.Pass != ""}
	r.Pass = ""
	return r
}

// fieldsReply is a refusal with what is wrong, field by field.
type fieldsReply struct {
	Error  string      `json:"error"`
	Fields fieldErrors `json:"fields,omitempty"`
}

// apiNodeWallet returns the wallet service, or answers 409 and returns nil.
func (s *Server) apiNodeWallet(w http.ResponseWriter) NodeWallet {
	nw, missing := s.nodeWallet()
	if nw == nil {
		writeError(w, http.StatusConflict, missing)
	}
	return nw
}

// apiNodeFail answers an error of the wallet service.
func (s *Server) apiNodeFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	f, ok := s.knownNodeError(w, r, true, what, err)
	if !ok {
		return
	}
	var fields fieldErrors
	if f.field != "" {
		fields = fieldErrors{f.field: f.msg}
	}
	if f.violations != nil {
		writeJSON(w, f.status, struct {
			Error      string          `json:"error"`
			Violations []violationView `json:"violations"`
		}{f.msg, newViolationViews(f.violations)})
		return
	}
	writeJSON(w, f.status, fieldsReply{Error: f.msg, Fields: fields})
}

func (s *Server) apiNode(w http.ResponseWriter, r *http.Request) {
	var out nodeReply
	if bs, ok, err := s.node.LoadBackend(); err != nil {
		s.internalError(w, r, true, "load backend settings", err)
		return
	} else if ok {
		out.Backend = newBackendReply(bs)
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	out.Sync, out.Peers, out.Locked = nw.Sync(), nw.Peers(), s.custodyLocked()
	if out.Peers == nil {
		out.Peers = []chain.Peer{}
	}
	b, err := nw.Balance()
	if err != nil {
		s.internalError(w, r, true, "read balance", err)
		return
	}
	out.Balance = &balanceReply{Confirmed: b.Confirmed, Unconfirmed: b.Unconfirmed}
	ests := feeSuggestions(r.Context(), nw, dashboardTargets)
	out.Fees = []wallet.FeeEstimate{}
	for _, t := range dashboardTargets {
		if e, ok := ests[t]; ok {
			out.Fees = append(out.Fees, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiNodeBackend(w http.ResponseWriter, r *http.Request) {
	bs, ok, err := s.node.LoadBackend()
	if err != nil {
		s.internalError(w, r, true, "load backend settings", err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no chain backend is chosen yet")
		return
	}
	writeJSON(w, http.StatusOK, newBackendReply(bs))
}

// apiNodeBackendSave validates, checks, saves and uses the settings in the body. An empty
// "pass" keeps the saved password for the same host and user. With "save_anyway" the check
// is skipped.
func (s *Server) apiNodeBackendSave(w http.ResponseWriter, r *http.Request) {
	var in struct {
		BackendSettings
		SaveAnyway bool `json:"save_anyway"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	saved, ok, err := s.node.LoadBackend()
	if err != nil {
		s.internalError(w, r, true, "load backend settings", err)
		return
	}
	bs := keepPassword(in.BackendSettings, saved, ok)
	out, err := s.tryBackend(r.Context(), r, bs, in.SaveAnyway)
	switch {
	case err != nil:
		s.internalError(w, r, true, "save backend settings", err)
	case out.errs != nil:
		writeJSON(w, out.status, fieldsReply{Error: out.errs.String(), Fields: out.errs})
	case out.problem != "":
		var fields fieldErrors
		if out.field != "" {
			fields = fieldErrors{out.field: out.problem}
		}
		writeJSON(w, out.status, fieldsReply{Error: out.problem, Fields: fields})
	default:
		writeJSON(w, http.StatusOK, newBackendReply(bs))
	}
}

// apiNodeAddress hands out a new receive address with its BIP21 URI; the body may give an
// amount (satoshis) and a label for the URI.
func (s *Server) apiNodeAddress(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Amount int64  `json:"amount"`
		Label  string `json:"label"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	errs := fieldErrors{}
	if in.Amount < 0 || in.Amount > maxBTC*satsPerBTC {
		errs["amount"] = "The amount must be from 0 to 21,000,000 BTC, in satoshis."
	}
	_, label, lerrs := parseReceive("", in.Label)
	for k, v := range lerrs {
		errs[k] = v
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, fieldsReply{Error: errs.String(), Fields: errs})
		return
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	a, err := s.receiveAddress(r, nw, true)
	if err != nil {
		s.apiNodeFail(w, r, "new address", err)
		return
	}
	if in.Amount > 0 || label != "" {
		a.URI = wallet.BIP21(a.Address, in.Amount, label)
	} else if a.URI == "" {
		a.URI = wallet.BIP21(a.Address, 0, "")
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) apiNodeFees(w http.ResponseWriter, r *http.Request) {
	target := uint64(defaultTarget)
	if v := r.URL.Query().Get("target"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n < 1 || n > 1008 {
			writeError(w, http.StatusBadRequest, "target must be a number of blocks from 1 to 1008, not "+strconv.Quote(v))
			return
		}
		target = n
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	est, ok := feeSuggestions(r.Context(), nw, []uint32{uint32(target)})[uint32(target)]
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "no fee estimate is available now")
		return
	}
	writeJSON(w, http.StatusOK, est)
}

func (s *Server) apiNodeHistory(w http.ResponseWriter, r *http.Request) {
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	entries, err := nw.History()
	if err != nil {
		s.internalError(w, r, true, "read history", err)
		return
	}
	if entries == nil {
		entries = []wallet.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, entries)
}

// proposalReply is a proposal with its unsigned PSBT, for clients that check it themselves.
type proposalReply struct {
	*wallet.Proposal
	PSBT string `json:"psbt"` // base64
	// NeedPassword: the session is not fresh, POST /api/node/send needs the admin password.
	NeedPassword bool `json:"need_password"`
}

// apiProposed remembers p for the session and answers it.
func (s *Server) apiProposed(w http.ResponseWriter, r *http.Request, rv reviewed) {
	sess := sessionFrom(r.Context())
	s.proposals.add(sess.key, rv, s.now())
	s.log.Info("node: proposal made through the API", "kind", rv.p.Kind, "id", rv.p.ID, "fee", rv.p.Fee,
		"client", clientAddr(r))
	writeJSON(w, http.StatusOK, proposalReply{Proposal: rv.p, PSBT: base64.StdEncoding.EncodeToString(rv.p.PSBT),
		NeedPassword: !s.sessionFresh(sess)})
}

// apiNodePropose takes a wallet.SendRequest: amounts in satoshis, fee_rate in sat/kvB
// (0: the suggestion for target blocks).
func (s *Server) apiNodePropose(w http.ResponseWriter, r *http.Request) {
	var req wallet.SendRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	errs := fieldErrors{}
	switch {
	case len(req.Payments) == 0:
		errs["address"] = "Give at least one payment."
	case req.SendAll && len(req.Payments) != 1:
		errs["send_all"] = "Sending everything takes exactly one payment."
	}
	for _, p := range req.Payments {
		if strings.TrimSpace(p.Address) == "" {
			errs["address"] = "Every payment needs an address."
		}
		if !req.SendAll && (p.Amount <= 0 || p.Amount > maxBTC*satsPerBTC) {
			errs["amount"] = "Every amount must be more than zero satoshis (and less than 21 million BTC)."
		}
	}
	if req.FeeRate < 0 || req.FeeRate > chain.MaxSaneFeeRate {
		errs["fee_rate"] = "The fee rate is in sat/kvB, from 1 to 10,000,000 (0: the suggestion)."
	}
	if req.Target > 1008 {
		errs["target"] = "The target is a number of blocks up to 1008."
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, fieldsReply{Error: errs.String(), Fields: errs})
		return
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	p, err := nw.Propose(r.Context(), req)
	if err != nil {
		s.apiNodeFail(w, r, "propose payment", err)
		return
	}
	in := sendInput{Address: req.Payments[0].Address, Amount: strconv.FormatInt(req.Payments[0].Amount, 10), Unit: "sat",
		SendAll: req.SendAll}
	s.apiProposed(w, r, reviewed{p: p, send: in})
}

// speedupRequest is the body of POST /api/node/bump and /api/node/cpfp: fee_rate in
// sat/kvB (for a CPFP the rate of parent and child together).
type speedupRequest struct {
	TxID    string        `json:"txid"`
	FeeRate chain.FeeRate `json:"fee_rate"`
}

func (s *Server) apiNodeSpeedup(w http.ResponseWriter, r *http.Request, kind string) {
	var in speedupRequest
	if !decodeJSON(w, r, &in) {
		return
	}
	errs := fieldErrors{}
	h, ok := parseTxID(in.TxID)
	if !ok {
		errs["txid"] = "Give the txid of one of the wallet's transactions, in hex."
	}
	if in.FeeRate <= 0 || in.FeeRate > chain.MaxSaneFeeRate {
		errs["fee_rate"] = "The fee rate is in sat/kvB, from 1 to 10,000,000."
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, fieldsReply{Error: errs.String(), Fields: errs})
		return
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	var p *wallet.Proposal
	var err error
	if kind == "cpfp" {
		p, err = nw.ProposeCPFP(r.Context(), h, in.FeeRate)
	} else {
		p, err = nw.ProposeBump(r.Context(), h, in.FeeRate)
	}
	if err != nil {
		s.apiNodeFail(w, r, "propose "+kind, err)
		return
	}
	s.apiProposed(w, r, reviewed{p: p, txid: in.TxID, rate: formatRate(in.FeeRate)})
}

func (s *Server) apiNodeBump(w http.ResponseWriter, r *http.Request) { s.apiNodeSpeedup(w, r, "bump") }
func (s *Server) apiNodeCPFP(w http.ResponseWriter, r *http.Request) { s.apiNodeSpeedup(w, r, "cpfp") }

// apiNodeSend confirms a proposal made in this session: the wallet signs, finalizes and
// broadcasts it. A session older than freshSession must give the admin password.
func (s *Server) apiNodeSend(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Proposal string `json:"proposal"`
		Password string `json:"password"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	sess := sessionFrom(r.Context())
	rv, found := s.proposals.get(sess.key, in.Proposal)
	if !found {
		writeJSON(w, http.StatusGone, fieldsReply{Error: "no such proposal in this session: propose again",
			Fields: fieldErrors{"proposal": "Unknown, sent or expired."}})
		return
	}
	if !s.sessionFresh(sess) {
		if in.Password == "" {
			writeJSON(w, http.StatusUnauthorized, fieldsReply{Error: "this session is older than " +
				humanDuration(freshSession) + ": give the admin password", Fields: fieldErrors{"password": "Type the admin password to confirm."}})
			return
		}
		res, err := s.checkAdmin(r, in.Password, "send confirmation")
		if err != nil {
			s.internalError(w, r, true, "check password", err)
			return
		}
		if !res.ok {
			status := http.StatusUnauthorized
			if res.wait > 0 {
				status = http.StatusTooManyRequests
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(res.wait)))
			}
			writeJSON(w, status, fieldsReply{Error: res.message(), Fields: fieldErrors{"password": res.message()}})
			return
		}
	}
	nw := s.apiNodeWallet(w)
	if nw == nil {
		return
	}
	txid, err := s.sendProposal(r, nw, rv)
	if err != nil {
		s.apiNodeFail(w, r, "send", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		TxID string `json:"txid"`
	}{txid})
}
