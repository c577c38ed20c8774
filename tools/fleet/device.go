package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// replayKeep is how many recent requests the server remembers per device. A device makes one
// request an hour; 16 leaves room for retries and bursts. When a 17th arrives within the
// window the oldest is forgotten and its timestamp becomes the device's floor.
const replayKeep = 16

// authenticate parses a device request's Authorization header and checks its timestamp
// against the clock. The signature is checked by the caller, which knows the key.
func (s *Server) authenticate(r *http.Request) (dev.Auth, error) {
	a, err := dev.ParseAuth(r.Header.Get("Authorization"))
	if err != nil {
		return a, errf(http.StatusUnauthorized, dev.CodeUnauthorized, "%v", err)
	}
	now := s.now()
	if d := now.Sub(a.Time()); d > s.window || d < -s.window {
		e := errf(http.StatusUnauthorized, dev.CodeClockSkew, "request time %s is %v from the server's clock (window %v)",
			a.Time().UTC().Format(time.RFC3339), d.Round(time.Second), s.window)
		e.serverTime = now.UnixMilli()
		return a, e
	}
	return a, nil
}

// checkReplay refuses a request whose nonce the device used before or whose timestamp is at
// or below its floor, then remembers it. Remembered requests older than the window are
// forgotten (a replay of them is stale anyway); the floor rises to the newest timestamp
// forgotten, so that neither a full list nor the server's clock going back reopens a gap.
func checkReplay(d *Device, a dev.Auth, now time.Time, window time.Duration) error {
	if a.Timestamp <= d.Floor {
		return errf(http.StatusUnauthorized, dev.CodeReplay, "request time is not after an earlier request's")
	}
	nonce := a.NonceString()
	for _, s := range d.Seen {
		if s.Nonce == nonce {
			return errf(http.StatusUnauthorized, dev.CodeReplay, "request replayed")
		}
	}
	cutoff := now.Add(-window).UnixMilli()
	seen := d.Seen[:0]
	for _, s := range d.Seen {
		if s.TS < cutoff {
			d.Floor = max(d.Floor, s.TS)
			continue
		}
		seen = append(seen, s)
	}
	i, _ := slices.BinarySearchFunc(seen, a.Timestamp, func(s Seen, t int64) int { return int(min(max(s.TS-t, -1), 1)) })
	seen = slices.Insert(seen, i, Seen{TS: a.Timestamp, Nonce: nonce})
	for len(seen) > replayKeep {
		d.Floor = max(d.Floor, seen[0].TS)
		seen = seen[1:]
	}
	d.Seen = slices.Clip(seen)
	return nil
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	e, err := s.serveEnroll(r.Context(), w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) serveEnroll(ctx context.Context, w http.ResponseWriter, r *http.Request) (dev.Enrollment, error) {
	body, err := readBody(w, r, dev.MaxBodySize)
	if err != nil {
		return dev.Enrollment{}, err
	}
	a, err := s.authenticate(r)
	if err != nil {
		return dev.Enrollment{}, err
	}
	var req dev.EnrollRequest
	if err := decodeJSON(body, &req); err != nil {
		return dev.Enrollment{}, err
	}
	pub, err := dev.ParsePublicKey(req.PublicKey)
	if err != nil {
		return dev.Enrollment{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "%v", err)
	}
	id := dev.DeviceIDFromPKIX(req.PublicKey)
	if a.ID != id {
		return dev.Enrollment{}, errf(http.StatusUnauthorized, dev.CodeUnauthorized, "the request is signed for another device id")
	}
	if err := a.Verify(pub, r.Method, r.URL.EscapedPath(), body); err != nil {
		return dev.Enrollment{}, errf(http.StatusUnauthorized, dev.CodeUnauthorized, "%v", err)
	}
	return s.enroll(ctx, a, req)
}

// validHardware checks the sizes of the hardware description.
func validHardware(h dev.Hardware) error {
	for name, v := range map[string]string{"arch": h.Arch, "model": h.Model, "serial": h.Serial, "tpm": h.TPM} {
		if len(v) > dev.MaxFieldLen {
			return fmt.Errorf("hardware %s longer than %d bytes", name, dev.MaxFieldLen)
		}
	}
	if h.CPUs < 0 || h.MemoryMB < 0 {
		return fmt.Errorf("hardware: negative counts")
	}
	return nil
}

// enroll enrolls the device whose signed request a carries (the signature verified).
func (s *Server) enroll(ctx context.Context, a dev.Auth, req dev.EnrollRequest) (dev.Enrollment, error) {
	if !req.Attestation.Valid() {
		return dev.Enrollment{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "unknown attestation %q", req.Attestation)
	}
	if err := validHardware(req.Hardware); err != nil {
		return dev.Enrollment{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "%v", err)
	}
	if req.Channel != "" && !ValidChannel(req.Channel) {
		return dev.Enrollment{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "invalid channel %q", req.Channel)
	}
	hash := tokenHash(req.Token)
	now := s.now().UTC()
	// judge refuses the enrollment, or returns the token to consume.
	judge := func(tx Tx) (Token, error) {
		t, ok, err := tx.Token(hash)
		if err != nil {
			return t, err
		}
		if !ok {
			return t, errf(http.StatusUnauthorized, dev.CodeBadToken, "unknown enrollment token")
		}
		// A known token with a key enrolled already: say so before judging the token, so a
		// device whose first answer was lost learns it is enrolled.
		if _, dup, err := tx.Device(a.ID); err != nil {
			return t, err
		} else if dup {
			return t, errf(http.StatusConflict, dev.CodeDuplicateKey, "this key is enrolled already as %s", a.ID)
		}
		if !now.Before(t.Expires) {
			return t, errf(http.StatusUnauthorized, dev.CodeTokenExpired, "enrollment token %s expired at %s", t.ID, t.Expires.Format(time.RFC3339))
		}
		if t.Left() <= 0 {
			return t, errf(http.StatusUnauthorized, dev.CodeTokenUsed, "enrollment token %s has no uses left", t.ID)
		}
		return t, nil
	}
	// Refuse in a read transaction first, so that a flood of bad enrollments never reaches
	// the writer; then judge again where the token is consumed.
	if err := s.store.View(ctx, func(tx Tx) error { _, err := judge(tx); return err }); err != nil {
		return dev.Enrollment{}, err
	}
	var (
		d       Device
		refused error
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		var t Token
		t, refused = judge(tx)
		if _, ok := refused.(*httpError); ok {
			return nil // nothing written; an error would re-run the updates grouped with this one
		} else if refused != nil {
			return refused
		}
		t.Used++
		if err := tx.PutToken(t); err != nil {
			return err
		}
		d = Device{ID: a.ID, PublicKey: req.PublicKey, Attestation: req.Attestation, Hardware: req.Hardware,
			Channel: t.Channel, TokenID: t.ID, Enrolled: now}
		if req.Channel != "" {
			d.Channel = req.Channel
		}
		d.Report.Arch = req.Hardware.Arch
		if err := checkReplay(&d, a, now, s.window); err != nil {
			return err
		}
		return tx.PutDevice(d)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return dev.Enrollment{}, err
	}
	s.log.Info("fleet: device enrolled", "device", d.ID, "channel", d.Channel, "attestation", d.Attestation,
		"token", d.TokenID, "arch", d.Hardware.Arch, "model", d.Hardware.Model)
	return dev.Enrollment{DeviceID: d.ID, Channel: d.Channel, PollSeconds: int(s.poll / time.Second)}, nil
}

func tokenHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *Server) handleCheckIn(w http.ResponseWriter, r *http.Request) {
	resp, err := s.serveCheckIn(r.Context(), w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) serveCheckIn(ctx context.Context, w http.ResponseWriter, r *http.Request) (dev.CheckInResponse, error) {
	body, err := readBody(w, r, dev.MaxBodySize)
	if err != nil {
		return dev.CheckInResponse{}, err
	}
	a, err := s.authenticate(r)
	if err != nil {
		return dev.CheckInResponse{}, err
	}
	pub, err := s.deviceKey(ctx, a.ID)
	if err != nil {
		return dev.CheckInResponse{}, err
	}
	if err := a.Verify(pub, r.Method, r.URL.EscapedPath(), body); err != nil {
		return dev.CheckInResponse{}, errf(http.StatusUnauthorized, dev.CodeUnauthorized, "%v", err)
	}
	var rep dev.Report
	if err := decodeJSON(body, &rep); err != nil {
		return dev.CheckInResponse{}, err
	}
	if err := rep.Validate(); err != nil {
		return dev.CheckInResponse{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "%v", err)
	}
	if rep.Channel != "" && !ValidChannel(rep.Channel) {
		return dev.CheckInResponse{}, errf(http.StatusBadRequest, dev.CodeBadRequest, "invalid channel %q", rep.Channel)
	}
	offer, err := s.checkIn(ctx, a, rep)
	if err != nil {
		return dev.CheckInResponse{}, err
	}
	return dev.CheckInResponse{Offer: offer, PollSeconds: int(s.poll / time.Second)}, nil
}

// deviceKey returns the public key of an enrolled device (cached once parsed).
func (s *Server) deviceKey(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	s.keysMu.RLock()
	pub := s.keys[id]
	s.keysMu.RUnlock()
	if pub != nil {
		return pub, nil
	}
	var d Device
	var ok bool
	if err := s.store.View(ctx, func(tx Tx) (err error) {
		d, ok, err = tx.Device(id)
		return err
	}); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(http.StatusUnauthorized, dev.CodeUnknownDevice, "device %s is not enrolled", id)
	}
	pub, err := dev.ParsePublicKey(d.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device %s: stored %w", id, err)
	}
	s.keysMu.Lock()
	s.keys[id] = pub
	s.keysMu.Unlock()
	return pub, nil
}

func (s *Server) forgetKey(id string) {
	s.keysMu.Lock()
	delete(s.keys, id)
	s.keysMu.Unlock()
}

// checkIn records an authenticated report and decides the offer, in one transaction: the
// replay check, the device's new state, the outcomes of the releases the report speaks of
// (which may pause a rollout or let it widen), and the choice of the release to offer.
func (s *Server) checkIn(ctx context.Context, a dev.Auth, rep dev.Report) (*dev.Offer, error) {
	now := s.now().UTC()
	var (
		offer   *dev.Offer
		events  []string
		refused error
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		offer, events, refused = nil, nil, nil
		d, ok, err := tx.Device(a.ID)
		if err != nil {
			return err
		}
		// Refusals return nil, having written nothing: an error would make the store roll
		// back and re-run the other check-ins committed with this one.
		if !ok {
			refused = errf(http.StatusUnauthorized, dev.CodeUnknownDevice, "device %s is not enrolled", a.ID)
			return nil
		}
		if refused = checkReplay(&d, a, now, s.window); refused != nil {
			return nil
		}
		d.LastSeen = now
		d.CheckIns++
		d.Report = rep
		if rep.Channel != "" {
			d.Channel = rep.Channel
		}
		if t := rep.Target; t != nil && t.Counter > d.MaxTarget {
			d.MaxTarget = t.Counter
		}
		// Releases below both the offer floor and the reported target matter neither to
		// the offer nor to the outcomes.
		from := max(d.Report.Counter+1, d.MaxTarget)
		if t := rep.Target; t != nil {
			from = min(from, t.Counter)
		}
		rels, err := tx.Releases(d.Channel, from)
		if err != nil {
			return err
		}
		for i := range rels {
			r := &rels[i]
			st, ok := classify(rep, r.Counter)
			if !ok {
				continue
			}
			prev, found, err := tx.Outcome(r.ID, d.ID)
			if err != nil {
				return err
			}
			errText := ""
			if st == OutcomeFailed {
				errText = rep.LastError
			}
			o, changed := observe(r, prev, found, d.ID, st, errText, now)
			if !changed {
				continue
			}
			if err := tx.PutOutcome(o); err != nil {
				return err
			}
			if st == OutcomeFailed && maybePause(r, now) {
				events = append(events, r.ID+" "+r.Rollout.History[len(r.Rollout.History)-1].What)
			}
			if st == OutcomeSucceeded && advance(r, now) {
				events = append(events, r.ID+" "+r.Rollout.History[len(r.Rollout.History)-1].What)
			}
			if err := tx.PutRelease(*r); err != nil {
				return err
			}
		}
		chosen, err := chooseOffer(rels, d, func(id string) (bool, error) {
			o, found, err := tx.Outcome(id, d.ID)
			return found && o.State == OutcomeFailed, err
		})
		if err != nil {
			return err
		}
		d.Offered = ""
		if chosen != nil {
			d.Offered = chosen.ID
			offer = &dev.Offer{Release: chosen.ID, Channel: chosen.Channel, Version: chosen.Version,
				Counter: chosen.Counter, BaseURL: s.baseURL(chosen.Dir), Size: chosen.Sizes[rep.Arch]}
		}
		return tx.PutDevice(d)
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	for _, e := range events {
		s.log.Warn("fleet: rollout "+e, "device", a.ID)
	}
	return offer, nil
}
