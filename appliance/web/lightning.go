package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/node/lightning/route"
)

// Lightning is the box's Lightning gossip node as the page drives it (package
// node/lightning, run by appliance/services).
type Lightning interface {
	// LightningStatus is the node's state; running is false while it cannot run (no
	// wallet, or the wallet is locked: the node key comes from the seed), why says why.
	LightningStatus() (st lightning.Status, running bool, why string)
	// AddLightningPeer keeps the peer "pubkey@host:port" connected.
	AddLightningPeer(uri string) error
	// QueryRoute computes a route on the node's graph.
	QueryRoute(q lightning.RouteQuery) (lightning.RouteAnswer, error)
}

// lightningReply is GET /api/lightning.
type lightningReply struct {
	Running bool             `json:"running"`
	Why     string           `json:"why,omitempty"`
	Status  lightning.Status `json:"status"`
}

func (s *Server) apiLightning(w http.ResponseWriter, r *http.Request) {
	st, running, why := s.ln.LightningStatus()
	writeJSON(w, http.StatusOK, lightningReply{Running: running, Why: why, Status: st})
}

func (s *Server) apiLightningPeer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URI string `json:"uri"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if err := s.ln.AddLightningPeer(in.URI); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, doneReply{Status: "connecting"})
}

// routeQuery reads source, target, amt_sat and mpp from the URL query.
func routeQuery(r *http.Request) (lightning.RouteQuery, string) {
	q := r.URL.Query()
	amt, err := strconv.ParseUint(strings.TrimSpace(q.Get("amt_sat")), 10, 64)
	if err != nil || amt == 0 {
		return lightning.RouteQuery{}, "amt_sat must be a positive number of satoshis"
	}
	return lightning.RouteQuery{Source: q.Get("source"), Target: q.Get("target"), AmountSat: amt, MPP: q.Get("mpp") != ""}, ""
}

// routeStatus maps a route error to an HTTP status.
func routeStatus(err error) int {
	switch {
	case errors.Is(err, lightning.ErrBadQuery):
		return http.StatusBadRequest
	case errors.Is(err, route.ErrNoRoute):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (s *Server) apiLightningRoute(w http.ResponseWriter, r *http.Request) {
	q, problem := routeQuery(r)
	if problem != "" {
		writeError(w, http.StatusBadRequest, problem)
		return
	}
	a, err := s.ln.QueryRoute(q)
	if err != nil {
		writeError(w, routeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a)
}

type lightningData struct {
	layoutData
	lightningReply
	Notice, Problem string
	// The route form and its answer.
	Source, Target, Amount string
	MPP                    bool
	Answer                 *lightning.RouteAnswer
	RouteProblem           string
}

func (s *Server) renderLightning(w http.ResponseWriter, r *http.Request, status int, edit func(*lightningData)) {
	st, running, why := s.ln.LightningStatus()
	d := lightningData{layoutData: s.layout(r, "Lightning", false), lightningReply: lightningReply{Running: running, Why: why, Status: st}}
	if edit != nil {
		edit(&d)
	}
	s.render(w, status, "lightning", d)
}

func (s *Server) lightningPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("amt_sat") == "" {
		s.renderLightning(w, r, http.StatusOK, nil)
		return
	}
	rq, problem := routeQuery(r)
	var ans *lightning.RouteAnswer
	status := http.StatusOK
	if problem == "" {
		a, err := s.ln.QueryRoute(rq)
		if err != nil {
			problem, status = sentence(err.Error()), routeStatus(err)
		} else {
			ans = &a
		}
	}
	s.renderLightning(w, r, status, func(d *lightningData) {
		d.Source, d.Target, d.Amount, d.MPP = q.Get("source"), q.Get("target"), q.Get("amt_sat"), q.Get("mpp") != ""
		d.Answer, d.RouteProblem = ans, problem
	})
}

func (s *Server) lightningPeerForm(w http.ResponseWriter, r *http.Request) {
	uri := r.PostFormValue("uri")
	if err := s.ln.AddLightningPeer(uri); err != nil {
		s.renderLightning(w, r, http.StatusBadRequest, func(d *lightningData) { d.Problem = sentence(err.Error()) })
		return
	}
	s.renderLightning(w, r, http.StatusOK, func(d *lightningData) { d.Notice = "Connecting to the peer." })
}
