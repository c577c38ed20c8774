package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/anya-edge/anya/appliance/update/checkin"
)

// The update server (package appliance/update/checkin): the owner enrolls the box with a
// fleet server by its address and an enrollment token from its operator, and can leave it.
// The box then checks in on the server's schedule and installs what the server offers.

// Fleet is what the pages need of the check-in loop (*checkin.Runner).
type Fleet interface {
	Status() checkin.Status
	Enroll(ctx context.Context, serverURL, token, channel string, auto bool) (checkin.Settings, error)
	Leave() error
}

// enrollment is the body of POST /api/update/fleet and the form's fields.
type enrollment struct {
	URL     string `json:"url"`
	Token   string `json:"token"`
	Channel string `json:"channel"`
	// Manual, when set, turns automatic installs off: offers wait for "update now".
	Manual bool `json:"manual"`
}

func (s *Server) enroll(r *http.Request, in enrollment) (checkin.Settings, *updateRefusal) {
	if s.update.Fleet == nil {
		return checkin.Settings{}, &updateRefusal{http.StatusNotImplemented, "This box cannot use an update server."}
	}
	st, err := s.update.Fleet.Enroll(r.Context(), in.URL, in.Token, in.Channel, !in.Manual)
	if errors.Is(err, checkin.ErrBusy) {
		return checkin.Settings{}, &updateRefusal{http.StatusConflict, err.Error()}
	}
	if err != nil {
		s.log.Warn("enrollment with the update server failed", "url", in.URL, "err", err)
		return checkin.Settings{}, &updateRefusal{http.StatusBadRequest, "The box could not enroll: " + err.Error()}
	}
	s.log.Info("enrolled with the update server", "url", st.URL, "device", st.DeviceID, "client", clientAddr(r))
	return st, nil
}

func (s *Server) updateFleetForm(w http.ResponseWriter, r *http.Request) {
	st, ref := s.enroll(r, enrollment{URL: r.PostFormValue("url"), Token: r.PostFormValue("token"),
		Channel: r.PostFormValue("channel"), Manual: r.PostFormValue("auto") == ""})
	if ref != nil {
		s.renderUpdate(w, r, ref.status, "", ref.msg)
		return
	}
	s.renderUpdate(w, r, http.StatusOK, "The box is enrolled with "+st.URL+" as device "+st.DeviceID+".", "")
}

func (s *Server) updateFleetLeaveForm(w http.ResponseWriter, r *http.Request) {
	if s.update.Fleet == nil {
		s.renderUpdate(w, r, http.StatusNotImplemented, "", "This box cannot use an update server.")
		return
	}
	if err := s.update.Fleet.Leave(); errors.Is(err, checkin.ErrBusy) {
		s.renderUpdate(w, r, http.StatusConflict, "", err.Error())
		return
	} else if err != nil {
		s.internalError(w, r, false, "leave the update server", err)
		return
	}
	s.renderUpdate(w, r, http.StatusOK, "The box no longer checks in with its update server.", "")
}

// GET /api/update/fleet: the enrollment and the latest check-in.
func (s *Server) apiUpdateFleet(w http.ResponseWriter, r *http.Request) {
	if s.update.Fleet == nil {
		writeError(w, http.StatusNotImplemented, "this box cannot use an update server")
		return
	}
	writeJSON(w, http.StatusOK, s.update.Fleet.Status())
}

// POST /api/update/fleet {"url", "token", "channel", "manual"}: enroll.
func (s *Server) apiUpdateFleetEnroll(w http.ResponseWriter, r *http.Request) {
	var in enrollment
	if !decodeJSON(w, r, &in) {
		return
	}
	st, ref := s.enroll(r, in)
	if ref != nil {
		writeError(w, ref.status, ref.msg)
		return
	}
	st.KeyBlob = nil
	writeJSON(w, http.StatusOK, st)
}

// POST /api/update/fleet/leave: forget the enrollment.
func (s *Server) apiUpdateFleetLeave(w http.ResponseWriter, r *http.Request) {
	if s.update.Fleet == nil {
		writeError(w, http.StatusNotImplemented, "this box cannot use an update server")
		return
	}
	if err := s.update.Fleet.Leave(); errors.Is(err, checkin.ErrBusy) {
		writeError(w, http.StatusConflict, err.Error())
		return
	} else if err != nil {
		s.internalError(w, r, true, "leave the update server", err)
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "left"})
}
