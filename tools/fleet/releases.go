package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
)

// AddRelease asks for a bundle to be offered in a channel.
type AddRelease struct {
	Channel string `json:"channel"`
	// Dir is the bundle's directory below the releases base ("stable-1.4.0").
	Dir string `json:"dir"`
	// Percent is the initial rollout; nil means the policy's first step (0 without steps).
	Percent *float64 `json:"percent,omitempty"`
	// Policy is the rollout policy; nil means DefaultPolicy.
	Policy *Policy `json:"policy,omitempty"`
	// Paused adds the release paused.
	Paused bool `json:"paused,omitempty"`
}

var dirRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

func validDir(d string) bool {
	return len(d) <= 200 && dirRE.MatchString(d) && fs.ValidPath(d) && !slices.Contains(strings.Split(d, "/"), "..")
}

// source opens the bundle dir from the releases base.
func (s *Server) source(dir string) (release.Fetcher, func(), error) {
	switch {
	case s.relURL != nil:
		h, err := release.NewHTTP(s.relURL.JoinPath(dir).String()+"/", s.http)
		return h, func() {}, err
	case s.relDir != nil:
		sub, err := s.relDir.OpenRoot(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("open bundle %s: %w", dir, err)
		}
		d, err := release.OpenDir(sub.Name())
		sub.Close()
		if err != nil {
			return nil, nil, err
		}
		return d, func() { d.Close() }, nil
	}
	return nil, nil, errors.New("the server has no releases directory or URL")
}

// baseURL is the URL devices fetch the bundle dir from: the CDN's, or a path on this server
// that the device client resolves against the server's URL.
func (s *Server) baseURL(dir string) string {
	if s.relURL != nil {
		return s.relURL.JoinPath(dir).String() + "/"
	}
	return "/releases/" + dir + "/"
}

// bundleArch is what an unverified look at a bundle says about one architecture.
type bundleArch struct {
	arch    string
	minFrom uint64
}

// inspect follows a bundle's timestamp, snapshot and targets metadata without verifying
// anything, only to learn which architectures to verify and from which counter (the verifier
// then checks all of it against the trusted root).
func inspect(ctx context.Context, src release.Fetcher) ([]bundleArch, error) {
	read := func(name string, v any) error {
		rc, err := src.Fetch(ctx, name)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, 8<<20))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		return nil
	}
	type meta struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
			Targets map[string]struct {
				Custom release.Custom `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	var ts, snap, targets meta
	if err := read(release.TimestampFile, &ts); err != nil {
		return nil, err
	}
	if err := read(release.SnapshotFile(ts.Signed.Meta["snapshot.json"].Version), &snap); err != nil {
		return nil, err
	}
	if err := read(release.TargetsFile(snap.Signed.Meta["targets.json"].Version), &targets); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []bundleArch
	for _, t := range targets.Signed.Targets {
		c := t.Custom
		if c.Arch == "" || seen[c.Arch] {
			continue
		}
		seen[c.Arch] = true
		out = append(out, bundleArch{arch: c.Arch, minFrom: c.MinFrom})
	}
	if len(out) == 0 {
		return nil, errors.New("the bundle's targets name no architecture")
	}
	slices.SortFunc(out, func(a, b bundleArch) int { return strings.Compare(a.arch, b.arch) })
	return out, nil
}

// verifyBundle verifies the bundle dir against the fleet's trusted root for each of its
// architectures, as a box would (with a fresh trust state), and describes the release.
func (s *Server) verifyBundle(ctx context.Context, dir string) (Release, error) {
	if len(s.root) == 0 {
		return Release{}, errf(http.StatusConflict, "no_root", "the server has no trusted root to verify releases with (serve -root)")
	}
	src, closeSrc, err := s.source(dir)
	if err != nil {
		return Release{}, errf(http.StatusBadRequest, "bad_bundle", "%v", err)
	}
	defer closeSrc()
	archs, err := inspect(ctx, src)
	if err != nil {
		return Release{}, errf(http.StatusBadRequest, "bad_bundle", "bundle %s: %v", dir, err)
	}
	out := Release{Dir: dir, Sizes: map[string]int64{}}
	for _, a := range archs {
		st, err := release.NewState(s.root)
		if err != nil {
			return Release{}, err
		}
		v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: a.arch, Now: s.now})
		if err != nil {
			return Release{}, err
		}
		rel, err := v.Update(ctx, src, release.Installed{Counter: a.minFrom})
		if err != nil {
			if r := release.ReasonOf(err); r != 0 {
				return Release{}, errf(http.StatusBadRequest, "bad_bundle", "bundle %s (%s) does not verify against the fleet's root: %s: %v", dir, a.arch, r.Text(), err)
			}
			return Release{}, fmt.Errorf("verify bundle %s (%s): %w", dir, a.arch, err)
		}
		if len(out.Archs) == 0 {
			out.Version, out.Counter, out.MinFrom, out.Expires = rel.Version, rel.Counter, rel.MinFrom, rel.Expires
		} else if rel.Version != out.Version || rel.Counter != out.Counter || rel.MinFrom != out.MinFrom {
			return Release{}, errf(http.StatusBadRequest, "bad_bundle", "bundle %s: architectures disagree on the release (%s vs %s)", dir, rel, out.Version)
		}
		if rel.Expires.Before(out.Expires) {
			out.Expires = rel.Expires
		}
		var size int64
		for _, p := range rel.Payloads {
			size += p.Length
		}
		out.Archs = append(out.Archs, a.arch)
		out.Sizes[a.arch] = size
	}
	return out, nil
}

// AddRelease verifies a bundle against the fleet's root and offers it in a channel under a
// staged rollout. A channel's releases must come in increasing release counters.
func (s *Server) AddRelease(ctx context.Context, req AddRelease) (Release, error) {
	if !ValidChannel(req.Channel) {
		return Release{}, errf(http.StatusBadRequest, "bad_request", "invalid channel %q", req.Channel)
	}
	req.Dir = strings.Trim(req.Dir, "/")
	if !validDir(req.Dir) {
		return Release{}, errf(http.StatusBadRequest, "bad_request", "invalid bundle directory %q (a relative path of letters, digits, '.', '_', '-')", req.Dir)
	}
	p := DefaultPolicy()
	if req.Policy != nil {
		p = *req.Policy
	}
	if err := validatePolicy(p); err != nil {
		return Release{}, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	r, err := s.verifyBundle(ctx, req.Dir)
	if err != nil {
		return Release{}, err
	}
	now := s.now().UTC()
	r.ID, r.Channel, r.Added = ReleaseID(req.Channel, r.Counter), req.Channel, now
	r.Rollout = Rollout{State: StateActive, Policy: p, Step: -1, StepStarted: now}
	percent := 0.0
	if len(p.Steps) > 0 {
		percent = p.Steps[0]
	}
	if req.Percent != nil {
		percent = *req.Percent
	}
	if err := widen(&r, percent, now); err != nil {
		return Release{}, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	r.Rollout.History = []Event{{At: now, What: fmt.Sprintf("added %s (#%d) from %s at %s", r.Version, r.Counter, r.Dir, formatPercent(percent))}}
	if req.Paused {
		pause(&r, "added paused", now)
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		rels, err := tx.Releases(r.Channel, 0)
		if err != nil {
			return err
		}
		if len(rels) > 0 && rels[0].Counter >= r.Counter {
			if rels[0].Counter == r.Counter {
				return errf(http.StatusConflict, "duplicate", "release %s exists already", r.ID)
			}
			return errf(http.StatusConflict, "older", "%s (#%d) is not newer than %s (#%d) in channel %s",
				r.Version, r.Counter, rels[0].Version, rels[0].Counter, r.Channel)
		}
		return tx.PutRelease(r)
	})
	if err != nil {
		return Release{}, err
	}
	s.log.Info("fleet: release added", "release", r.ID, "version", r.Version, "archs", r.Archs, "percent", r.Rollout.Percent)
	return r, nil
}

// changeRelease applies fn to a stored release.
func (s *Server) changeRelease(ctx context.Context, id string, fn func(r *Release, now time.Time) error) (Release, error) {
	now := s.now().UTC()
	var r Release
	err := s.store.Update(ctx, func(tx Tx) error {
		var ok bool
		var err error
		r, ok, err = tx.Release(id)
		if err != nil {
			return err
		}
		if !ok {
			return errf(http.StatusNotFound, "not_found", "no release %q", id)
		}
		if err := fn(&r, now); err != nil {
			return err
		}
		return tx.PutRelease(r)
	})
	if err == nil {
		s.log.Info("fleet: rollout "+r.Rollout.History[len(r.Rollout.History)-1].What, "release", r.ID)
	}
	return r, err
}

// Pause stops offering a release to devices that have not started it.
func (s *Server) Pause(ctx context.Context, id, reason string) (Release, error) {
	if reason == "" {
		reason = "by the admin"
	}
	return s.changeRelease(ctx, id, func(r *Release, now time.Time) error {
		if r.Rollout.State == StatePaused {
			return errf(http.StatusConflict, "state", "release %s is paused already", id)
		}
		pause(r, reason, now)
		return nil
	})
}

// Resume resumes a paused rollout with a fresh failure window.
func (s *Server) Resume(ctx context.Context, id string) (Release, error) {
	return s.changeRelease(ctx, id, func(r *Release, now time.Time) error {
		if r.Rollout.State != StatePaused {
			return errf(http.StatusConflict, "state", "release %s is not paused", id)
		}
		resume(r, now)
		return nil
	})
}

// Widen widens a rollout to percent, or to the policy's next step when percent is nil.
func (s *Server) Widen(ctx context.Context, id string, percent *float64) (Release, error) {
	return s.changeRelease(ctx, id, func(r *Release, now time.Time) error {
		p, ok := 0.0, false
		if percent != nil {
			p, ok = *percent, true
		} else {
			p, ok = nextStep(r)
		}
		if !ok {
			return errf(http.StatusConflict, "state", "release %s has no further step; give a percentage", id)
		}
		if err := widen(r, p, now); err != nil {
			return errf(http.StatusBadRequest, "bad_request", "%v", err)
		}
		return nil
	})
}

// Maintain runs the automatic schedules: every active rollout whose step has enough
// successes and has soaked widens to its next step. The server calls it periodically (Run);
// check-ins that record a success do the same for their release.
func (s *Server) Maintain(ctx context.Context) error {
	now := s.now().UTC()
	var widened []string
	err := s.store.Update(ctx, func(tx Tx) error {
		widened = nil
		rels, err := tx.Releases("", 0)
		if err != nil {
			return err
		}
		for i := range rels {
			if advance(&rels[i], now) {
				widened = append(widened, rels[i].ID+" "+rels[i].Rollout.History[len(rels[i].Rollout.History)-1].What)
				if err := tx.PutRelease(rels[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, w := range widened {
		s.log.Info("fleet: rollout " + w)
	}
	return err
}

// Run calls Maintain every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("fleet: maintain rollouts", "err", err)
			}
		}
	}
}

// releasesHandler serves the local releases directory under /releases/: regular files only
// (no listings), timestamp.json marked for revalidation, every other file (versioned or
// content-addressed) cacheable for good.
func (s *Server) releasesHandler() http.Handler {
	fsys := s.relDir.FS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/releases/")
		if !fs.ValidPath(name) || name == "." || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		f, err := fsys.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		rs, ok := f.(io.ReadSeeker)
		if err != nil || !fi.Mode().IsRegular() || !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(name, "/"+release.TimestampFile) || name == release.TimestampFile {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), rs)
	})
}
