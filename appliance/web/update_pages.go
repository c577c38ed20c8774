package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/checkin"
	"github.com/anya-edge/anya/appliance/update/slot"
)

// updateHistoryLen is how many attempts the page lists.
const updateHistoryLen = 20

// updateData is the update page.
type updateData struct {
	layoutData
	updateView
	// Notice and Problem say how the form posted before went.
	Notice, Problem string
}

// updateView is what the page and GET /api/update show.
type updateView struct {
	// Enrollment is the update server the box checks in with (nil: the box cannot use
	// one; Enrolled false: none yet).
	Enrollment *checkin.Status `json:"enrollment,omitempty"`

	// Unavailable says why the box cannot update itself here (no agent, a development run,
	// no trusted root); "" when it can.
	Unavailable string `json:"unavailable,omitempty"`
	// CanInstall: an install can start now; otherwise Why says why not.
	CanInstall bool   `json:"can_install"`
	Why        string `json:"why,omitempty"`

	Version string `json:"version"`
	Counter uint64 `json:"counter,omitempty"`
	Slot    string `json:"slot,omitempty"`
	// State of the running slot in words: "committed", "being checked after its update".
	State    string `json:"state,omitempty"`
	Previous string `json:"previous,omitempty"` // the version that ran before the last update

	OtherSlot    string `json:"other_slot,omitempty"`
	OtherVersion string `json:"other_version,omitempty"`
	OtherState   string `json:"other_state,omitempty"`
	// Pending: a release is installed in the other slot and starts at the next restart.
	Pending string `json:"pending,omitempty"`

	// Report is the last attempt in plain words; Fallback, when this boot fell back from a
	// failed update, what happened.
	Report      string `json:"report,omitempty"`
	ReportClass string `json:"-"`
	Fallback    string `json:"fallback,omitempty"`

	// Offer is the release the fleet server offers (nil: none); OfferText says what the page
	// says about it.
	Fleet     bool         `json:"fleet"`
	Offer     *UpdateOffer `json:"offer,omitempty"`
	OfferNew  bool         `json:"offer_new"` // the offer is not the running release
	OfferText string       `json:"offer_text,omitempty"`

	USB       bool   `json:"usb"`
	MaxUpload string `json:"max_upload"`

	History []attemptView `json:"history"`
	Err     string        `json:"error,omitempty"`
}

// attemptView is one line of the update history.
type attemptView struct {
	agent.Attempt
	Text     string `json:"text"`
	When     string `json:"-"`
	DateTime string `json:"-"`
	Class    string `json:"-"`
}

func newAttemptView(a agent.Attempt) attemptView {
	v := attemptView{Attempt: a, Text: sentence(a.Message())}
	if !a.Started.IsZero() {
		v.When, v.DateTime = a.Started.UTC().Format("2006-01-02 15:04"), a.Started.UTC().Format(time.RFC3339)
	}
	v.Class = resultClass(a.Result)
	return v
}

func resultClass(r agent.Result) string {
	switch r {
	case agent.Committed:
		return "ok"
	case agent.Installing, agent.Installed, agent.Trying:
		return "info"
	case agent.Refused:
		return "warn"
	}
	return "bad"
}

func slotStateText(s slot.State, trial bool) string {
	switch {
	case s == slot.Good && !trial:
		return "committed"
	case s == slot.Bad:
		return "failed"
	}
	return "being checked after its update"
}

// updateStatus builds the view: the agent's status and history, and the fleet's offer.
func (s *Server) updateStatus(ctx context.Context) updateView {
	u := s.update
	v := updateView{Version: s.version, Fleet: u.Offer != nil, USB: u.USB != nil,
		MaxUpload: humanBytes(uint64(u.maxUpload())), History: []attemptView{}}
	if u.Fleet != nil {
		st := u.Fleet.Status()
		v.Enrollment = &st
	}
	if ref := s.installable(); ref != nil {
		v.Why = ref.msg
	} else {
		v.CanInstall = true
	}
	if u.Agent == nil {
		v.Unavailable = v.Why
		return v
	}
	st, err := u.Agent.Status()
	if err != nil {
		v.Err = "The update records could not be read: " + err.Error()
		return v
	}
	if st.Boot.Unmanaged || !st.Enabled {
		v.Unavailable = v.Why
	}
	if st.Version != "" {
		v.Version, v.Counter = st.Version, st.Counter
	}
	v.Slot, v.Previous = st.Slot, st.Versions.Previous
	if !st.Boot.Unmanaged {
		v.State = slotStateText(st.Boot.State, st.Boot.Trial())
		if st.Boot.OtherEntry != "" {
			v.OtherSlot, v.OtherVersion = st.Boot.Other, st.Boot.OtherVersion
			v.OtherState = slotStateText(st.Boot.OtherState, st.Boot.OtherState != slot.Good)
			if st.Boot.Pending {
				v.OtherState = "installed, starts at the next restart"
				v.Pending = st.Boot.OtherVersion + " is installed and starts at the next restart."
			}
		}
	}
	if st.Last != nil {
		v.Report, v.ReportClass = sentence(st.Report), resultClass(st.Last.Result)
	}
	if fb := st.Boot.Fallback; fb != nil {
		v.Fallback = sentence(fb.Message()) + " The box went back to " + v.Version + " by itself; your data is as it was."
	}
	hist, err := u.Agent.History(updateHistoryLen)
	if err != nil {
		v.Err = "The update history could not be read: " + err.Error()
	}
	for _, a := range hist {
		v.History = append(v.History, newAttemptView(a))
	}
	if u.Offer != nil {
		switch o, err := s.offer(ctx); {
		case err != nil:
			v.OfferText = "The update server could not be asked: " + err.Error()
		case o == nil:
			v.OfferText = "No update is offered to this box: it is up to date."
		default:
			v.Offer = o
			v.OfferNew = o.Counter != st.Counter
			if v.OfferNew {
				v.OfferText = "Version " + o.Version + " is available."
			} else {
				v.OfferText = "This box runs the version the update server offers."
			}
		}
	}
	return v
}

func (s *Server) updatePage(w http.ResponseWriter, r *http.Request) {
	s.renderUpdate(w, r, http.StatusOK, "", "")
}

func (s *Server) renderUpdate(w http.ResponseWriter, r *http.Request, status int, notice, problem string) {
	s.render(w, status, "update", updateData{layoutData: s.layout(r, "Updates", false),
		updateView: s.updateStatus(r.Context()), Notice: notice, Problem: problem})
}

// afterInstall answers a page's install form: the reboot wait page, or the update page
// with what went wrong.
func (s *Server) afterInstall(w http.ResponseWriter, r *http.Request, res installed, ref *updateRefusal) {
	switch {
	case ref != nil:
		s.renderUpdate(w, r, ref.status, "", ref.msg)
	case !res.Rebooting:
		s.renderUpdate(w, r, http.StatusOK, sentence(res.Attempt.Message())+
			" The box could not restart by itself ("+res.RebootErr+"): restart it to start the new version.", "")
	default:
		s.render(w, http.StatusOK, "wait", s.waitData(r, "Rebooting", "reboot"))
	}
}

func (s *Server) updateNowForm(w http.ResponseWriter, r *http.Request) {
	res, ref := s.installOffer(r, r.PostFormValue("force") != "")
	s.afterInstall(w, r, res, ref)
}

func (s *Server) updateUploadForm(w http.ResponseWriter, r *http.Request) {
	res, ref := s.installUpload(w, r, false)
	if ref != nil && ref.status == http.StatusForbidden {
		s.errorPage(w, r, ref.status, http.StatusText(ref.status), ref.msg)
		return
	}
	s.afterInstall(w, r, res, ref)
}

func (s *Server) updateUSBForm(w http.ResponseWriter, r *http.Request) {
	res, ref := s.installUSB(r, r.PostFormValue("force") != "")
	s.afterInstall(w, r, res, ref)
}

// GET /api/update: the same as the page.
func (s *Server) apiUpdate(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.updateStatus(r.Context()))
}

// GET /api/update/history?max=N: the latest attempts, newest first.
func (s *Server) apiUpdateHistory(w http.ResponseWriter, r *http.Request) {
	max := updateHistoryLen
	if v := r.URL.Query().Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "max must be an integer from 1 to 100, not "+strconv.Quote(v))
			return
		}
		max = n
	}
	if s.update.Agent == nil {
		writeJSON(w, http.StatusOK, []attemptView{})
		return
	}
	hist, err := s.update.Agent.History(max)
	if err != nil {
		s.internalError(w, r, true, "read the update history", err)
		return
	}
	out := []attemptView{}
	for _, a := range hist {
		out = append(out, newAttemptView(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiInstallReply(w http.ResponseWriter, res installed, ref *updateRefusal) {
	if ref != nil {
		writeJSON(w, ref.status, struct {
			Error   string         `json:"error"`
			Attempt *agent.Attempt `json:"attempt,omitempty"`
		}{ref.msg, res.Attempt})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// POST /api/update/now {"force": false}: install the release the fleet server offers.
func (s *Server) apiUpdateNow(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Force bool `json:"force"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &in) {
		return
	}
	res, ref := s.installOffer(r, in.Force)
	s.apiInstallReply(w, res, ref)
}

// POST /api/update/upload[?force=1]: install the bundle in the body (a tar, or a multipart
// form with the file in the field "bundle").
func (s *Server) apiUpdateUpload(w http.ResponseWriter, r *http.Request) {
	res, ref := s.installUpload(w, r, true)
	s.apiInstallReply(w, res, ref)
}

// POST /api/update/usb {"force": false}: install the bundle on a USB stick.
func (s *Server) apiUpdateUSB(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Force bool `json:"force"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &in) {
		return
	}
	res, ref := s.installUSB(r, in.Force)
	s.apiInstallReply(w, res, ref)
}
