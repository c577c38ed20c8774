package fleet

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// TokenRequest asks for an enrollment token.
type TokenRequest struct {
	Label   string   `json:"label,omitempty"`
	Channel string   `json:"channel,omitempty"` // "stable" when empty
	Uses    int      `json:"uses,omitempty"`    // 1 when zero
	TTL     Duration `json:"ttl,omitempty"`     // 24 h when zero
}

// NewToken is a created token: Secret is shown once and never stored.
type NewToken struct {
	Secret string `json:"secret"`
	Token  Token  `json:"token"`
}

// CreateToken creates an enrollment token.
func (s *Server) CreateToken(ctx context.Context, req TokenRequest) (NewToken, error) {
	if req.Channel == "" {
		req.Channel = "stable"
	}
	if !ValidChannel(req.Channel) {
		return NewToken{}, errf(http.StatusBadRequest, "bad_request", "invalid channel %q", req.Channel)
	}
	if req.Uses == 0 {
		req.Uses = 1
	}
	if req.TTL == 0 {
		req.TTL = Duration(24 * time.Hour)
	}
	if req.Uses < 0 || req.Uses > 1_000_000 || req.TTL < 0 || len(req.Label) > 200 {
		return NewToken{}, errf(http.StatusBadRequest, "bad_request", "uses must be 1..1000000, ttl positive, label short")
	}
	raw := make([]byte, 24)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return NewToken{}, fmt.Errorf("token: random: %w", err)
	}
	secret := "anya-enroll-" + base64.RawURLEncoding.EncodeToString(raw)
	now := s.now().UTC()
	h := tokenHash(secret)
	t := Token{ID: h[:12], Hash: h, Label: req.Label, Channel: req.Channel, Uses: req.Uses, Created: now,
		Expires: now.Add(time.Duration(req.TTL))}
	if err := s.store.Update(ctx, func(tx Tx) error { return tx.PutToken(t) }); err != nil {
		return NewToken{}, err
	}
	s.log.Info("fleet: enrollment token created", "token", t.ID, "label", t.Label, "channel", t.Channel, "uses", t.Uses, "expires", t.Expires)
	return NewToken{Secret: secret, Token: t}, nil
}

// Tokens lists the enrollment tokens, newest first.
func (s *Server) Tokens(ctx context.Context) ([]Token, error) {
	var ts []Token
	err := s.store.View(ctx, func(tx Tx) (err error) {
		ts, err = tx.Tokens()
		return err
	})
	slices.SortFunc(ts, func(a, b Token) int { return b.Created.Compare(a.Created) })
	return ts, err
}

// RevokeToken deletes a token by its id.
func (s *Server) RevokeToken(ctx context.Context, id string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		ts, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.ID == id {
				return tx.DeleteToken(t.Hash)
			}
		}
		return errf(http.StatusNotFound, "not_found", "no token %q", id)
	})
}

// Devices lists the devices (without their replay state).
func (s *Server) Devices(ctx context.Context) ([]Device, error) {
	var ds []Device
	err := s.store.View(ctx, func(tx Tx) (err error) {
		ds, err = tx.Devices()
		return err
	})
	for i := range ds {
		ds[i].Seen, ds[i].Floor = nil, 0
	}
	return ds, err
}

// Device returns one device.
func (s *Server) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	var ok bool
	err := s.store.View(ctx, func(tx Tx) (err error) {
		d, ok, err = tx.Device(id)
		return err
	})
	if err == nil && !ok {
		err = errf(http.StatusNotFound, "not_found", "no device %q", id)
	}
	d.Seen, d.Floor = nil, 0
	return d, err
}

// RemoveDevice deletes a device: its key is no longer accepted (it may enroll again with a
// new token).
func (s *Server) RemoveDevice(ctx context.Context, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		if _, ok, err := tx.Device(id); err != nil {
			return err
		} else if !ok {
			return errf(http.StatusNotFound, "not_found", "no device %q", id)
		}
		return tx.DeleteDevice(id)
	})
	s.forgetKey(id)
	if err == nil {
		s.log.Info("fleet: device removed", "device", id)
	}
	return err
}

// Releases lists the releases: by channel, newest first.
func (s *Server) Releases(ctx context.Context) ([]Release, error) {
	var rs []Release
	err := s.store.View(ctx, func(tx Tx) (err error) {
		rs, err = tx.Releases("", 0)
		return err
	})
	return rs, err
}

// ReleaseDetail is a release with what each device did with it.
type ReleaseDetail struct {
	Release  Release   `json:"release"`
	Outcomes []Outcome `json:"outcomes"`
}

// Release returns a release and its outcomes.
func (s *Server) Release(ctx context.Context, id string) (ReleaseDetail, error) {
	var d ReleaseDetail
	var ok bool
	err := s.store.View(ctx, func(tx Tx) (err error) {
		if d.Release, ok, err = tx.Release(id); err != nil || !ok {
			return err
		}
		d.Outcomes, err = tx.Outcomes(id)
		return err
	})
	if err == nil && !ok {
		err = errf(http.StatusNotFound, "not_found", "no release %q", id)
	}
	return d, err
}

// Summary is the fleet at a glance.
type Summary struct {
	Devices   int            `json:"devices"`
	ByVersion map[string]int `json:"by_version"`
	ByHealth  map[string]int `json:"by_health"`
	ByChannel map[string]int `json:"by_channel"`
	// Silent devices have not checked in for three poll intervals.
	Silent   int       `json:"silent"`
	Releases []Release `json:"releases"`
}

// Summarize computes the Summary.
func (s *Server) Summarize(ctx context.Context) (Summary, error) {
	sum := Summary{ByVersion: map[string]int{}, ByHealth: map[string]int{}, ByChannel: map[string]int{}}
	now := s.now()
	err := s.store.View(ctx, func(tx Tx) error {
		ds, err := tx.Devices()
		if err != nil {
			return err
		}
		for _, d := range ds {
			sum.Devices++
			v := d.Report.Version
			if v == "" {
				v = "(not checked in)"
			}
			sum.ByVersion[v]++
			h := string(d.Report.Health)
			if h == "" {
				h = "unknown"
			}
			sum.ByHealth[h]++
			sum.ByChannel[d.Channel]++
			if now.Sub(d.LastSeen) > 3*s.poll {
				sum.Silent++
			}
		}
		sum.Releases, err = tx.Releases("", 0)
		return err
	})
	return sum, err
}

// checkAdmin reports whether r carries the admin bearer token.
func (s *Server) checkAdmin(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1
}

// admin wraps an admin API handler: bearer token, small JSON bodies, JSON answers.
func (s *Server) admin(fn func(r *http.Request, body []byte) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.checkAdmin(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="anya-fleet"`)
			s.writeError(w, r, errf(http.StatusUnauthorized, "unauthorized", "admin bearer token required"))
			return
		}
		body, err := readBody(w, r, 1<<20)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status, v, err := fn(r, body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, v)
	}
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	ok := http.StatusOK
	mux.HandleFunc("GET /api/v1/summary", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Summarize(r.Context())
		return ok, v, err
	}))
	mux.HandleFunc("GET /api/v1/devices", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Devices(r.Context())
		return ok, v, err
	}))
	mux.HandleFunc("GET /api/v1/devices/{id}", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Device(r.Context(), r.PathValue("id"))
		return ok, v, err
	}))
	mux.HandleFunc("DELETE /api/v1/devices/{id}", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		return ok, map[string]string{"removed": r.PathValue("id")}, s.RemoveDevice(r.Context(), r.PathValue("id"))
	}))
	mux.HandleFunc("GET /api/v1/tokens", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Tokens(r.Context())
		return ok, v, err
	}))
	mux.HandleFunc("POST /api/v1/tokens", s.admin(func(r *http.Request, body []byte) (int, any, error) {
		var req TokenRequest
		if err := decodeBody(body, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.CreateToken(r.Context(), req)
		return http.StatusCreated, v, err
	}))
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		return ok, map[string]string{"revoked": r.PathValue("id")}, s.RevokeToken(r.Context(), r.PathValue("id"))
	}))
	mux.HandleFunc("GET /api/v1/releases", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Releases(r.Context())
		return ok, v, err
	}))
	mux.HandleFunc("POST /api/v1/releases", s.admin(func(r *http.Request, body []byte) (int, any, error) {
		var req AddRelease
		if err := decodeBody(body, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.AddRelease(r.Context(), req)
		return http.StatusCreated, v, err
	}))
	mux.HandleFunc("GET /api/v1/releases/{id}", s.admin(func(r *http.Request, _ []byte) (int, any, error) {
		v, err := s.Release(r.Context(), r.PathValue("id"))
		return ok, v, err
	}))
	mux.HandleFunc("POST /api/v1/releases/{id}/{action}", s.admin(func(r *http.Request, body []byte) (int, any, error) {
		var req struct {
			Reason  string   `json:"reason"`
			Percent *float64 `json:"percent"`
		}
		if len(body) > 0 {
			if err := decodeBody(body, &req); err != nil {
				return 0, nil, err
			}
		}
		id := r.PathValue("id")
		var v Release
		var err error
		switch r.PathValue("action") {
		case "pause":
			v, err = s.Pause(r.Context(), id, req.Reason)
		case "resume":
			v, err = s.Resume(r.Context(), id)
		case "widen":
			v, err = s.Widen(r.Context(), id, req.Percent)
		default:
			return 0, nil, errf(http.StatusNotFound, "not_found", "no action %q (pause, resume, widen)", r.PathValue("action"))
		}
		return ok, v, err
	}))
}

// decodeBody decodes an admin request body strictly: unknown fields are mistakes here.
func decodeBody(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "bad_request", "malformed JSON: %v", err)
	}
	return nil
}
