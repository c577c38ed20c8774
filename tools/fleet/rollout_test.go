package fleet

import (
	"fmt"
	"math"
	"testing"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

func deviceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("d-%024x", i*7919+1)
	}
	return ids
}

// TestRolloutBuckets: membership is deterministic, monotone in the percentage, close to the
// percentage over many devices, and different for different releases.
func TestRolloutBuckets(t *testing.T) {
	ids := deviceIDs(20000)
	percents := []float64{0, 0.5, 1, 5, 20, 25, 50, 99.9, 100}
	for _, rel := range []string{"stable-2", "stable-3"} {
		prev := map[string]bool{}
		for _, p := range percents {
			n := 0
			for _, id := range ids {
				in := InRollout(rel, id, p)
				if in != InRollout(rel, id, p) {
					t.Fatal("not deterministic")
				}
				if prev[id] && !in {
					t.Fatalf("%s: device %s left the rollout when it widened to %v%%", rel, id, p)
				}
				if in {
					n++
				}
				prev[id] = in
			}
			share := 100 * float64(n) / float64(len(ids))
			if math.Abs(share-p) > 1 || (p == 0 && n != 0) || (p == 100 && n != len(ids)) {
				t.Errorf("%s at %v%%: %d devices (%.2f%%)", rel, p, n, share)
			}
		}
	}
	same := 0
	for _, id := range ids {
		if InRollout("stable-2", id, 20) && InRollout("stable-3", id, 20) {
			same++
		}
	}
	// Independent choices overlap in about 4 % (20 % of 20 %).
	if share := 100 * float64(same) / float64(len(ids)); share < 3 || share > 5 {
		t.Fatalf("two releases' 20%% overlap in %.1f%% of devices", share)
	}
	if b := Bucket("stable-2", ids[0]); b < 0 || b >= 1 {
		t.Fatalf("bucket %v", b)
	}
}

func rel(channel string, n uint64, percent float64, state string) Release {
	return Release{ID: ReleaseID(channel, n), Channel: channel, Version: fmt.Sprintf("1.%d.0", n), Counter: n,
		Archs: []string{"amd64"}, Rollout: Rollout{State: state, Percent: percent, Policy: DefaultPolicy()}}
}

// TestChooseOffer: the offer decision for one device among a channel's releases.
func TestChooseOffer(t *testing.T) {
	ids := deviceIDs(200)
	// in and out are devices inside and outside stable-3's 30 % rollout.
	var in, out string
	for _, id := range ids {
		if InRollout("stable-3", id, 30) && in == "" {
			in = id
		}
		if !InRollout("stable-3", id, 30) && out == "" {
			out = id
		}
	}
	base := func() []Release {
		return []Release{rel("stable", 3, 30, StateActive), rel("stable", 2, 100, StateActive), rel("stable", 1, 100, StateActive)}
	}
	type dstate struct {
		id      string
		counter uint64
		arch    string
		max     uint64
	}
	tests := []struct {
		name   string
		rels   func() []Release
		d      dstate
		failed string
		want   string
	}{
		{"in the rollout", base, dstate{in, 1, "amd64", 0}, "", "stable-3"},
		{"outside: the previous release", base, dstate{out, 1, "amd64", 0}, "", "stable-2"},
		{"outside, on the previous: none", base, dstate{out, 2, "amd64", 0}, "", ""},
		{"up to date", base, dstate{in, 3, "amd64", 0}, "", ""},
		{"newer than every release", base, dstate{in, 7, "amd64", 0}, "", ""},
		{"other architecture", base, dstate{in, 1, "arm64", 0}, "", ""},
		{"paused: the previous release", func() []Release {
			r := base()
			r[0].Rollout.State = StatePaused
			return r
		}, dstate{in, 1, "amd64", 0}, "", "stable-2"},
		{"failed the newest: nothing", base, dstate{in, 1, "amd64", 3}, "stable-3", ""},
		{"failed an older one, newer in rollout", base, dstate{in, 1, "amd64", 2}, "stable-2", "stable-3"},
		{"tried 3 (not failed yet): not 2", base, dstate{out, 1, "amd64", 3}, "", ""},
		{"min-from too new", func() []Release {
			r := base()
			r[0].MinFrom = 2
			return r
		}, dstate{in, 1, "amd64", 0}, "", "stable-2"},
		{"zero percent", func() []Release { return []Release{rel("stable", 3, 0, StateActive)} }, dstate{in, 1, "amd64", 0}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Device{ID: tc.d.id, MaxTarget: tc.d.max, Report: dev.Report{Counter: tc.d.counter, Arch: tc.d.arch}}
			got, err := chooseOffer(tc.rels(), d, func(id string) (bool, error) { return id == tc.failed, nil })
			if err != nil {
				t.Fatal(err)
			}
			gotID := ""
			if got != nil {
				gotID = got.ID
			}
			if gotID != tc.want {
				t.Fatalf("offered %q, want %q", gotID, tc.want)
			}
		})
	}
}

func report(counter uint64, target uint64, state dev.TargetState, health dev.Health) dev.Report {
	r := dev.Report{Version: "x", Counter: counter, Arch: "amd64", Health: health}
	if target > 0 {
		r.Target = &dev.Target{Version: "y", Counter: target, State: state}
	}
	return r
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		rep  dev.Report
		want OutcomeState
	}{
		{"no target", report(1, 0, "", dev.HealthOK), ""},
		{"runs it, no target", report(3, 0, "", dev.HealthOK), ""},
		{"other target", report(1, 2, dev.TargetInstalling, dev.HealthOK), ""},
		{"installing", report(1, 3, dev.TargetInstalling, dev.HealthOK), OutcomeAttempted},
		{"trying", report(3, 3, dev.TargetTrying, dev.HealthUnknown), OutcomeAttempted},
		{"committed, healthy", report(3, 3, dev.TargetCommitted, dev.HealthOK), OutcomeSucceeded},
		{"committed, unhealthy", report(3, 3, dev.TargetCommitted, dev.HealthFailed), OutcomeAttempted},
		{"rolled back", report(1, 3, dev.TargetRolledBack, dev.HealthOK), OutcomeFailed},
		{"refused", report(1, 3, dev.TargetRefused, dev.HealthOK), OutcomeFailed},
		{"stopped before the switch: retried", report(1, 3, dev.TargetFailed, dev.HealthOK), OutcomeAttempted},
		{"refused", report(1, 3, dev.TargetRefused, dev.HealthOK), OutcomeFailed},
	}
	for _, tc := range tests {
		got, ok := classify(tc.rep, 3)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: %q %v, want %q", tc.name, got, ok, tc.want)
		}
	}
}

// TestPauseThreshold: the rollout pauses when the failure rate passes the threshold (not at
// it), only with enough attempts, counts devices not reports, and resume starts a new window.
func TestPauseThreshold(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := rel("stable", 3, 100, StateActive)
	r.Rollout.Policy = Policy{FailureThreshold: 0.2, MinAttempts: 5}
	outcomes := map[string]Outcome{}
	see := func(id string, s OutcomeState) bool {
		prev, found := outcomes[id]
		o, changed := observe(&r, prev, found, id, s, "boom", now)
		outcomes[id] = o
		if changed && s == OutcomeFailed {
			return maybePause(&r, now)
		}
		return false
	}
	ids := deviceIDs(13)
	// Two failures among the first two attempts: below MinAttempts, no pause.
	if see(ids[0], OutcomeFailed) || see(ids[1], OutcomeFailed) {
		t.Fatal("paused with fewer than MinAttempts attempts")
	}
	for _, id := range ids[2:10] {
		see(id, OutcomeAttempted)
	}
	// The same failure reported again is not a second failure.
	see(ids[0], OutcomeFailed)
	if ro := r.Rollout; ro.Attempted != 10 || ro.Failed != 2 || ro.State != StateActive {
		t.Fatalf("rollout %+v", ro)
	}
	// 2 of 10 = 20 % is at the threshold, not above: still active. A success does not pause.
	see(ids[2], OutcomeSucceeded)
	if r.Rollout.State != StateActive {
		t.Fatal("paused at the threshold")
	}
	// The third failure: 30 % > 20 %.
	if !see(ids[3], OutcomeFailed) || r.Rollout.State != StatePaused || r.Rollout.PausedReason == "" {
		t.Fatalf("not paused at 3/10: %+v", r.Rollout)
	}
	if o := outcomes[ids[3]]; o.Error != "boom" {
		t.Fatalf("outcome %+v", o)
	}
	// A success is never undone; a failure can turn into a success.
	see(ids[2], OutcomeFailed)
	see(ids[0], OutcomeSucceeded)
	if ro := r.Rollout; ro.Succeeded != 2 || ro.Failed != 2 || ro.Attempted != 10 {
		t.Fatalf("after success/failure changes: %+v", ro)
	}

	resume(&r, now)
	if ro := r.Rollout; ro.State != StateActive || ro.WinAttempted != 0 || ro.WinFailed != 0 || ro.Window != 1 {
		t.Fatalf("after resume: %+v", ro)
	}
	// An attempt from before the resume that fails now counts in the new window, as an
	// attempt and a failure; a single one does not reach MinAttempts.
	if see(ids[4], OutcomeFailed) {
		t.Fatal("paused by one failure after resume")
	}
	if ro := r.Rollout; ro.WinAttempted != 1 || ro.WinFailed != 1 || ro.Attempted != 10 {
		t.Fatalf("window after resume: %+v", ro)
	}
	see(ids[10], OutcomeAttempted)
	see(ids[11], OutcomeAttempted)
	see(ids[12], OutcomeAttempted)
	see(ids[5], OutcomeSucceeded)
	see(ids[6], OutcomeSucceeded)
	// 1 of 4 failed (old attempts that succeed are not counted in the window): fewer than
	// MinAttempts anyway.
	if r.Rollout.State != StateActive || r.Rollout.WinAttempted != 4 {
		t.Fatalf("window: %+v", r.Rollout)
	}
	// An old attempt fails: 2 of 5 → paused again.
	if !see(ids[7], OutcomeFailed) {
		t.Fatalf("not paused again: %+v", r.Rollout)
	}
}

// TestSchedule: a rollout widens through its steps after enough successes and the soak time,
// not while paused, and never narrows.
func TestSchedule(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := rel("stable", 3, 0, StateActive)
	r.Rollout.Policy = Policy{Steps: []float64{5, 25, 100}, MinSuccesses: 2, Soak: Duration(time.Hour), FailureThreshold: 0.5, MinAttempts: 1}
	if err := widen(&r, 5, now); err != nil {
		t.Fatal(err)
	}
	if r.Rollout.Step != 0 {
		t.Fatalf("step %d", r.Rollout.Step)
	}
	ids := deviceIDs(10)
	succeed := func(id string) {
		o, _ := observe(&r, Outcome{}, false, id, OutcomeSucceeded, "", now)
		_ = o
	}
	succeed(ids[0])
	if advance(&r, now.Add(2*time.Hour)) {
		t.Fatal("widened with one success")
	}
	succeed(ids[1])
	if advance(&r, now.Add(30*time.Minute)) {
		t.Fatal("widened before the soak time")
	}
	if !advance(&r, now.Add(time.Hour)) || r.Rollout.Percent != 25 || r.Rollout.Step != 1 {
		t.Fatalf("not widened to 25: %+v", r.Rollout)
	}
	// Successes of the earlier step do not count for the next one.
	now = now.Add(time.Hour)
	if advance(&r, now.Add(2*time.Hour)) {
		t.Fatal("widened without successes in the step")
	}
	succeed(ids[2])
	succeed(ids[3])
	pause(&r, "test", now)
	if advance(&r, now.Add(2*time.Hour)) {
		t.Fatal("widened while paused")
	}
	resume(&r, now.Add(2*time.Hour))
	succeed(ids[4])
	succeed(ids[5])
	if !advance(&r, now.Add(3*time.Hour)) || r.Rollout.Percent != 100 {
		t.Fatalf("not widened to 100: %+v", r.Rollout)
	}
	if advance(&r, now.Add(10*time.Hour)) {
		t.Fatal("widened past the last step")
	}
	if err := widen(&r, 50, now); err == nil {
		t.Fatal("narrowed")
	}
	if _, ok := nextStep(&r); ok {
		t.Fatal("a next step after 100 %")
	}
	// Widening by hand past a step skips it.
	r2 := rel("stable", 4, 5, StateActive)
	r2.Rollout.Policy.Steps = []float64{5, 25, 100}
	r2.Rollout.Step = 0
	if err := widen(&r2, 30, now); err != nil || r2.Rollout.Step != 1 {
		t.Fatalf("widen to 30: %v, step %d", err, r2.Rollout.Step)
	}
	if p, ok := nextStep(&r2); !ok || p != 100 {
		t.Fatalf("next step %v %v", p, ok)
	}
	for _, bad := range []Policy{{Steps: []float64{5, 5}}, {Steps: []float64{0}}, {Steps: []float64{101}}, {FailureThreshold: 2}, {MinAttempts: -1}} {
		if validatePolicy(bad) == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
}

// TestChannelsAndAdmin over HTTP: releases of one channel are offered only to its devices;
// pause, resume and widen through the admin API; the device's channel follows its report.
func TestChannelsAndAdmin(t *testing.T) {
	h := newHarness(t, 2, 3)
	stable := h.token(TokenRequest{Uses: 20})
	beta := h.token(TokenRequest{Uses: 20, Channel: "beta"})
	manual := &Policy{FailureThreshold: 0.5, MinAttempts: 3}
	h.addRelease("stable", 2, 100, manual)
	h.addRelease("beta", 3, 100, manual)
	var sd, bd []*simDevice
	for range 5 {
		sd = append(sd, h.enrolled(stable, nil))
		bd = append(bd, h.enrolled(beta, nil))
	}
	for _, d := range sd {
		if o := d.checkIn(t); o.Release != "stable-2" || o.BaseURL != h.ts.URL+"/releases/stable-2/" || o.Poll != time.Hour {
			t.Fatalf("stable device offered %+v", o)
		}
	}
	for _, d := range bd {
		if o := d.checkIn(t); o.Release != "beta-3" || o.Counter != 3 || o.Size == 0 {
			t.Fatalf("beta device offered %+v", o)
		}
	}
	// A box whose owner switches it to beta follows.
	sd[0].report.Channel = "beta"
	if o := sd[0].checkIn(t); o.Release != "beta-3" {
		t.Fatalf("switched device offered %+v", o)
	}
	if _, err := h.admin.Pause(h.ctx(), "beta-3", "looking into it"); err != nil {
		t.Fatal(err)
	}
	if o := bd[0].checkIn(t); o.Available() {
		t.Fatalf("offered a paused release: %+v", o)
	}
	if _, err := h.admin.Pause(h.ctx(), "beta-3", ""); err == nil {
		t.Fatal("paused twice")
	}
	if _, err := h.admin.Resume(h.ctx(), "beta-3"); err != nil {
		t.Fatal(err)
	}
	if o := bd[0].checkIn(t); o.Release != "beta-3" {
		t.Fatalf("after resume: %+v", o)
	}
	// Widening below the current percentage is refused; a missing release is 404.
	p := 50.0
	if _, err := h.admin.Widen(h.ctx(), "beta-3", &p); err == nil {
		t.Fatal("narrowed from 100 to 50")
	}
	if _, err := h.admin.Widen(h.ctx(), "beta-9", nil); err == nil {
		t.Fatal("widened a missing release")
	}
	// Adding an older or the same release to a channel is refused.
	if _, err := h.admin.AddRelease(h.ctx(), AddRelease{Channel: "beta", Dir: "stable-2"}); err == nil {
		t.Fatal("added an older release")
	}
	if _, err := h.admin.AddRelease(h.ctx(), AddRelease{Channel: "beta", Dir: "stable-3"}); err == nil {
		t.Fatal("added the same release twice")
	}
	sum, err := h.admin.Summary(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Devices != 10 || sum.ByChannel["beta"] != 6 || len(sum.Releases) != 2 {
		t.Fatalf("summary %+v", sum)
	}
}

// TestAddReleaseVerifies: a bundle that does not verify against the fleet's root is refused.
func TestAddReleaseVerifies(t *testing.T) {
	h := newHarness(t, 2)
	// A bundle signed by other keys.
	if _, err := SignDemo(h.dir+"/otherkeys", h.relDir+"/foreign", "amd64", 5); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dir string }{
		{"foreign keys", "foreign/stable-5"},
		{"missing", "nothing-here"},
		{"escape", "../keys"},
		{"absolute", "/etc"},
	}
	for _, tc := range tests {
		if _, err := h.admin.AddRelease(h.ctx(), AddRelease{Channel: "stable", Dir: tc.dir}); err == nil {
			t.Errorf("%s: added", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	r := h.addRelease("stable", 2, 10, nil)
	if r.Version != "1.2.0" || r.Counter != 2 || len(r.Archs) != 1 || r.Sizes["amd64"] == 0 || r.Rollout.Percent != 10 {
		t.Fatalf("release %+v", r)
	}
}
