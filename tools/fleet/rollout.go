package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// rolloutScale is the resolution of rollout percentages: a device's bucket is in
// [0, rolloutScale), and percent p admits buckets below p·rolloutScale/100.
const rolloutScale = 1_000_000

// Bucket is the device's fixed position in the release's rollout, in [0, 1): the first 8 bytes
// of SHA-256("anya-fleet-rollout", release id, device id) scaled down. A device is in a
// rollout of p percent if Bucket < p/100, so the same devices are chosen every time, widening
// only adds devices, and each release picks a different first few percent (a fleet's unlucky
// boxes are not always the canaries).
func Bucket(releaseID, deviceID string) float64 {
	return float64(bucketOf(releaseID, deviceID)) / rolloutScale
}

func bucketOf(releaseID, deviceID string) uint64 {
	h := sha256.New()
	h.Write([]byte("anya-fleet-rollout\x00"))
	h.Write([]byte(releaseID))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % rolloutScale
}

// InRollout reports whether the device is among the percent of devices the release is
// offered to.
func InRollout(releaseID, deviceID string, percent float64) bool {
	limit := uint64(math.Round(min(max(percent, 0), 100) * rolloutScale / 100))
	return bucketOf(releaseID, deviceID) < limit
}

// chooseOffer picks the release to offer a device among its channel's releases (newest first):
// the newest release that is newer than what the device runs and than every release it has
// tried, built for its architecture, installable from its release (MinFrom), active, and
// whose rollout includes the device. If the device failed with a release that would be next
// in line, it gets nothing: older releases are pointless (it has accepted the failed one's
// metadata and refuses anything older), and retrying the same one is the admin's decision.
func chooseOffer(rels []Release, d Device, failed func(releaseID string) (bool, error)) (*Release, error) {
	floor := max(d.Report.Counter+1, d.MaxTarget)
	for i := range rels {
		r := &rels[i]
		if r.Counter < floor {
			break
		}
		f, err := failed(r.ID)
		if err != nil {
			return nil, err
		}
		if f {
			return nil, nil
		}
		if !hasArch(r, d.Report.Arch) || d.Report.Counter < r.MinFrom || r.Rollout.State != StateActive ||
			!InRollout(r.ID, d.ID, r.Rollout.Percent) {
			continue
		}
		return r, nil
	}
	return nil, nil
}

func hasArch(r *Release, arch string) bool {
	for _, a := range r.Archs {
		if a == arch {
			return true
		}
	}
	return false
}

// classify says where a report puts the device with the release whose counter is n. Only a
// report whose target (latest attempt) is n speaks of it: the device attempted the release;
// it failed when the attempt was refused or rolled back (an attempt that stopped before the
// switch, interrupted say, is still an attempt: the box retries it); it succeeded when the attempt
// is committed and the device runs the release, healthy. A box that merely runs n (flashed
// with it, say) is not counted. ok is false when the report says nothing about n.
func classify(rep dev.Report, n uint64) (s OutcomeState, ok bool) {
	t := rep.Target
	switch {
	case t == nil || t.Counter != n:
		return "", false
	case t.State.Broken():
		return OutcomeFailed, true
	case t.State == dev.TargetCommitted && rep.Counter == n && rep.Health == dev.HealthOK:
		return OutcomeSucceeded, true
	}
	return OutcomeAttempted, true
}

// observe records that device id is in state s with release r (prev is its earlier outcome,
// if found) and updates r's counts. It returns the new outcome and whether anything changed.
// Outcomes only move forward: attempted → succeeded or failed, failed → succeeded (a retry
// that worked); a success is never undone by a later report.
func observe(r *Release, prev Outcome, found bool, id string, s OutcomeState, errText string, now time.Time) (Outcome, bool) {
	ro := &r.Rollout
	o := prev
	if !found {
		o = Outcome{Release: r.ID, Device: id, Window: ro.Window}
		ro.Attempted++
		ro.WinAttempted++
	} else if o.State == s || o.State == OutcomeSucceeded || s == OutcomeAttempted {
		return prev, false
	}
	// An attempt counted in an earlier failure window that ends now is counted in this one.
	if found && o.Window != ro.Window && s == OutcomeFailed {
		ro.WinAttempted++
		o.Window = ro.Window
	}
	if found && o.State == OutcomeFailed {
		ro.Failed--
		if o.Window == ro.Window {
			ro.WinFailed--
		}
	}
	switch s {
	case OutcomeSucceeded:
		ro.Succeeded++
		o.Error = ""
	case OutcomeFailed:
		ro.Failed++
		ro.WinFailed++
		o.Error = errText
	}
	o.State, o.At = s, now
	return o, true
}

// maybePause pauses an active rollout whose failure rate in the current window is above the
// policy's threshold with at least MinAttempts attempts. It reports whether it paused.
func maybePause(r *Release, now time.Time) bool {
	ro := &r.Rollout
	p := ro.Policy
	if ro.State != StateActive || ro.WinAttempted == 0 || ro.WinAttempted < max(p.MinAttempts, 1) {
		return false
	}
	rate := float64(ro.WinFailed) / float64(ro.WinAttempted)
	if rate <= p.FailureThreshold {
		return false
	}
	reason := fmt.Sprintf("failure rate %d/%d (%.0f%%) is above %.0f%%", ro.WinFailed, ro.WinAttempted, 100*rate, 100*p.FailureThreshold)
	pause(r, reason, now)
	return true
}

func pause(r *Release, reason string, now time.Time) {
	ro := &r.Rollout
	ro.State, ro.PausedAt, ro.PausedReason = StatePaused, now, reason
	addEvent(r, now, "paused: "+reason)
}

// resume restarts a paused rollout with a new failure window: the pause rule looks only at
// attempts from now on (and at earlier attempts that fail from now on).
func resume(r *Release, now time.Time) {
	ro := &r.Rollout
	ro.State, ro.PausedAt, ro.PausedReason = StateActive, time.Time{}, ""
	ro.Window++
	ro.WinAttempted, ro.WinFailed = 0, 0
	ro.StepStarted, ro.StepBase = now, ro.Succeeded
	addEvent(r, now, fmt.Sprintf("resumed at %s", formatPercent(ro.Percent)))
}

// widen sets the rollout to percent (which may not be lower than now: a device once offered a
// release stays offered) and moves the automatic schedule to the step it reached.
func widen(r *Release, percent float64, now time.Time) error {
	ro := &r.Rollout
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("percent %v outside 0..100", percent)
	}
	if percent < ro.Percent {
		return fmt.Errorf("a rollout only widens: %s is below the current %s (pause it instead)",
			formatPercent(percent), formatPercent(ro.Percent))
	}
	ro.Percent = percent
	ro.Step = -1
	for i, s := range ro.Policy.Steps {
		if s <= percent {
			ro.Step = i
		}
	}
	ro.StepStarted, ro.StepBase = now, ro.Succeeded
	addEvent(r, now, "widened to "+formatPercent(percent))
	return nil
}

// nextStep is the percentage the automatic schedule goes to next (false: none).
func nextStep(r *Release) (float64, bool) {
	ro := &r.Rollout
	for i := ro.Step + 1; i < len(ro.Policy.Steps); i++ {
		if s := ro.Policy.Steps[i]; s > ro.Percent {
			return s, true
		}
	}
	return 0, false
}

// advance widens an active rollout to its next step when the current one has MinSuccesses
// successes and has soaked for Soak. It reports whether it widened.
func advance(r *Release, now time.Time) bool {
	ro := &r.Rollout
	if ro.State != StateActive {
		return false
	}
	next, ok := nextStep(r)
	if !ok || ro.Succeeded-ro.StepBase < ro.Policy.MinSuccesses || now.Sub(ro.StepStarted) < time.Duration(ro.Policy.Soak) {
		return false
	}
	n := ro.Succeeded - ro.StepBase
	if err := widen(r, next, now); err != nil {
		return false
	}
	ro.History[len(ro.History)-1].What += fmt.Sprintf(" (automatic: %d successes, soaked %v)", n, time.Duration(ro.Policy.Soak))
	return true
}

func addEvent(r *Release, now time.Time, what string) {
	h := append(r.Rollout.History, Event{At: now, What: what})
	if len(h) > maxHistory {
		h = h[len(h)-maxHistory:]
	}
	r.Rollout.History = h
}

func formatPercent(p float64) string {
	return fmt.Sprintf("%g%%", math.Round(p*10000)/10000)
}

// validatePolicy checks a rollout policy.
func validatePolicy(p Policy) error {
	prev := 0.0
	for _, s := range p.Steps {
		if math.IsNaN(s) || s <= prev || s > 100 {
			return fmt.Errorf("rollout steps %v: want ascending percentages in (0, 100]", p.Steps)
		}
		prev = s
	}
	if p.MinSuccesses < 0 || p.MinAttempts < 0 || p.Soak < 0 {
		return fmt.Errorf("rollout policy: negative counts or soak")
	}
	if math.IsNaN(p.FailureThreshold) || p.FailureThreshold < 0 || p.FailureThreshold > 1 {
		return fmt.Errorf("failure threshold %v outside 0..1", p.FailureThreshold)
	}
	return nil
}
