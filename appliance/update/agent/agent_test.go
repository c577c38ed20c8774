package agent_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
)

var ctx = context.Background()

// installV2 boots v1 in slot a and installs v2 from a bundle directory.
func installV2(t *testing.T, b *box, v2 rel) *agent.Attempt {
	t.Helper()
	s, entry := b.sdBoot()
	if s != "a" {
		t.Fatalf("factory image booted slot %s", s)
	}
	run := b.start("a", b.v1, entry)
	defer run.stop()
	bs, err := run.Boot(ctx)
	if err != nil || bs.Trial() || !run.MigrationsAllowed() {
		t.Fatalf("v1 boot: %+v, %v", bs, err)
	}
	at, err := run.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{Source: "usb"})
	if err != nil {
		t.Fatal(err)
	}
	if at.Result != agent.Installed || at.Slot != "b" || at.FromVersion != "1.0.0" || at.Source != "usb" {
		t.Fatalf("attempt %+v", at)
	}
	return at
}

func TestInstallCommit(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, 3*mib)
	entryA := b.espFile("loader/entries/anya-a.conf")
	sysA := b.partition("a", 64<<10)
	data := b.regionSums()["data"]
	installV2(t, b, v2)

	// The slot's partition holds the new squashfs, the ESP its boot files.
	if got := b.partition("b", len(v2.system)); !bytes.Equal(got, v2.system) {
		t.Fatal("slot b's partition does not hold the v2 system image")
	}
	for name, want := range map[string][]byte{"anya/b/vmlinuz": v2.kernel, "anya/b/initrd.img": v2.initrd, "anya/b/release.json": v2.manifest} {
		if !bytes.Equal(b.espFile(name), want) {
			t.Fatalf("%s differs", name)
		}
	}
	// Slot a, its entry and the data partition are untouched.
	if !bytes.Equal(b.partition("a", len(sysA)), sysA) || !bytes.Equal(b.espFile("loader/entries/anya-a.conf"), entryA) {
		t.Fatal("the running slot changed")
	}
	if b.regionSums()["data"] != data {
		t.Fatal("the data partition changed")
	}
	// The new entry: three tries, a version above a's, the same command line with the slot.
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf"}) {
		t.Fatalf("entries %v", got)
	}
	e := slot.ParseEntry(b.espFile("loader/entries/anya-b+3.conf"))
	if e.Order() != 20 || e.Linux != "/anya/b/vmlinuz" || e.Initrd != "/anya/b/initrd.img" ||
		!strings.Contains(e.Options, "anya.slot=b") || strings.Contains(e.Options, "anya.slot=a") ||
		!strings.Contains(e.Options, "anya.network=regtest") || !strings.Contains(e.Title, "2.0.0") {
		t.Fatalf("new entry %+v", e)
	}

	// Restart: systemd-boot tries b and counts it down.
	s, entry := b.sdBoot()
	if s != "b" || entry != "anya-b+3.conf" {
		t.Fatalf("booted %s %s", s, entry)
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+2-1.conf"}) {
		t.Fatalf("entries after the first try %v", got)
	}
	run := b.start("b", v2, entry)
	bs, err := run.Boot(ctx)
	if err != nil || !bs.Trial() || bs.TriesLeft != 2 || bs.TriesDone != 1 || run.MigrationsAllowed() {
		t.Fatalf("trial boot: %+v, %v, migrations %v", bs, err, run.MigrationsAllowed())
	}
	if _, err := run.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{}); !errors.Is(err, agent.ErrOnTrial) {
		t.Fatalf("install during a trial: %v", err)
	}
	if st, _ := run.Status(); st.Last == nil || st.Last.Result != agent.Trying {
		t.Fatalf("status during the trial %+v", st)
	}
	checked := 0
	err = run.Confirm(ctx, []agent.Check{{Name: "storage", Run: func(context.Context) error { checked++; return nil }}}, agent.ConfirmOptions{})
	if err != nil || checked != 1 {
		t.Fatalf("confirm: %v (%d checks)", err, checked)
	}
	select {
	case <-run.Committed():
	default:
		t.Fatal("not committed")
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("entries after commit %v", got)
	}
	st, err := run.Status()
	if err != nil || st.Last.Result != agent.Committed || st.Report != "updated to 2.0.0" ||
		st.Versions.Current != "2.0.0" || st.Versions.Previous != "1.0.0" || st.Versions.CurrentSlot != "b" || !st.MigrationsAllowed {
		t.Fatalf("status after commit %+v, %v", st, err)
	}
	run.stop()

	// From now on b boots, without counting.
	for range 2 {
		if s, entry := b.sdBoot(); s != "b" || entry != "anya-b.conf" {
			t.Fatalf("after commit booted %s %s", s, entry)
		}
	}
	run = b.start("b", v2, "anya-b.conf")
	defer run.stop()
	if bs, err := run.Boot(ctx); err != nil || bs.Trial() || bs.Fallback != nil || !run.MigrationsAllowed() {
		t.Fatalf("committed boot %+v, %v", bs, err)
	}
	if b.regionSums()["data"] != data {
		t.Fatal("the data partition changed")
	}
}

func TestHealthFailureFallsBack(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, mib)
	installV2(t, b, v2)
	s, entry := b.sdBoot()
	run := b.start(s, v2, entry)
	if _, err := run.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	err := run.Confirm(ctx, []agent.Check{
		{Name: "storage", Run: func(context.Context) error { return nil }},
		{Name: "signer", Run: func(context.Context) error { return agent.Permanent(errors.New("unlock: boot state changed")) }},
	}, agent.ConfirmOptions{})
	if !errors.Is(err, agent.ErrHealth) || b.reboots != 1 {
		t.Fatalf("confirm: %v, %d reboots", err, b.reboots)
	}
	if run.MigrationsAllowed() {
		t.Fatal("breaking migrations allowed on a failed slot")
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+0-1.conf"}) {
		t.Fatalf("entries after the failed check %v", got)
	}
	run.stop()

	// systemd-boot now boots a; its agent reports why.
	s, entry = b.sdBoot()
	if s != "a" || entry != "anya-a.conf" {
		t.Fatalf("fallback booted %s %s", s, entry)
	}
	run = b.start("a", b.v1, entry)
	defer run.stop()
	bs, err := run.Boot(ctx)
	if err != nil || bs.Trial() || bs.Fallback == nil || bs.OtherState != slot.Bad || bs.OtherVersion != "2.0.0" {
		t.Fatalf("fallback boot %+v, %v", bs, err)
	}
	want := "update to 2.0.0 failed: the new version failed its health check: signer: unlock: boot state changed"
	if got := bs.Fallback.Message(); got != want {
		t.Fatalf("report %q, want %q", got, want)
	}
	if st, _ := run.Status(); st.Report != want || st.Last.Code != "health" || st.Versions.Current != "1.0.0" {
		t.Fatalf("status %+v", st)
	}
	// The same release is not installed again unless forced.
	bundle := b.sign(v2)
	if _, err := run.Update(ctx, b.src(bundle), agent.InstallOptions{Source: "fleet"}); !errors.Is(err, agent.ErrFailedBefore) {
		t.Fatalf("reinstall of a failed release: %v", err)
	}
	at, err := run.Update(ctx, b.src(bundle), agent.InstallOptions{Source: "upload", Force: true})
	if err != nil || at.Result != agent.Installed {
		t.Fatalf("forced retry: %+v, %v", at, err)
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf"}) {
		t.Fatalf("entries after the retry %v", got)
	}
}

// TestConfirmDeadlineFromBoot: a services process restarted late in the trial gets one
// round of checks, not a fresh deadline.
func TestConfirmDeadlineFromBoot(t *testing.T) {
	for _, pass := range []bool{true, false} {
		b := newBox(t)
		v2 := rel{version: "2.0.0", counter: 20}
		installV2(t, b, makeRelease(t, "2.0.0", 20, 256<<10))
		s, entry := b.sdBoot()
		run := b.start(s, v2, entry)
		if _, err := run.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		rounds := 0
		check := agent.Check{Name: "node", Run: func(cctx context.Context) error {
			rounds++
			if cctx.Err() != nil {
				return cctx.Err()
			}
			if !pass {
				return errors.New("unreachable")
			}
			return nil
		}}
		err := run.Confirm(ctx, []agent.Check{check}, agent.ConfirmOptions{Deadline: time.Minute, Interval: time.Hour,
			Uptime: func() time.Duration { return 2 * time.Minute }})
		if rounds != 1 || (err == nil) != pass || (!pass && !errors.Is(err, agent.ErrHealth)) {
			t.Fatalf("pass %v: %d rounds, %v", pass, rounds, err)
		}
		run.stop()
	}
}

// TestBootFailuresFallBack: the new slot never reaches its health check (kernel panic, a
// crash loop): systemd-boot counts the tries down and boots a, whose agent says so.
func TestBootFailuresFallBack(t *testing.T) {
	for _, c := range []struct {
		name      string
		agentRuns bool // the new slot's agent starts (Boot) but the box restarts before Confirm
		want      string
	}{
		{"kernel panics", false, "update to 2.0.0 failed: the new version did not start (tried 3 times)"},
		{"restarts during the check", true, "update to 2.0.0 failed: the new version restarted before its health check passed (tried 3 times)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBox(t)
			v2 := makeRelease(t, "2.0.0", 20, mib)
			installV2(t, b, v2)
			for i := range 3 {
				s, entry := b.sdBoot()
				if s != "b" {
					t.Fatalf("try %d booted %s", i, s)
				}
				if c.agentRuns {
					run := b.start("b", v2, entry)
					if bs, err := run.Boot(ctx); err != nil || !bs.Trial() {
						t.Fatalf("trial %d: %+v, %v", i, bs, err)
					}
					run.stop()
				}
			}
			if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+0-3.conf"}) {
				t.Fatalf("entries after three tries %v", got)
			}
			s, entry := b.sdBoot()
			if s != "a" {
				t.Fatalf("after three tries booted %s", s)
			}
			run := b.start("a", b.v1, entry)
			defer run.stop()
			bs, err := run.Boot(ctx)
			if err != nil || bs.Fallback == nil || bs.Fallback.Message() != c.want {
				t.Fatalf("fallback %+v, %v; want %q", bs.Fallback, err, c.want)
			}
			// Reported once: a second boot finds the same record and adds none.
			run.stop()
			run = b.start("a", b.v1, entry)
			if bs, err := run.Boot(ctx); err != nil || bs.Fallback == nil {
				t.Fatalf("second boot %+v, %v", bs, err)
			}
			if h, _ := run.History(0); len(h) != 1 {
				t.Fatalf("history %+v", h)
			}
		})
	}
}

// TestFallbackWithoutRecord: the other slot's entry is bad and the database knows nothing of
// it (a new data partition): the report comes from the ESP.
func TestFallbackWithoutRecord(t *testing.T) {
	b := newBox(t)
	esp, err := slot.OpenFAT(b.layout.ESP, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := esp.Rename("loader/entries/anya-b.conf", "loader/entries/anya-b+0-3.conf"); err != nil {
		t.Fatal(err)
	}
	esp.Close()
	run := b.start("a", b.v1, "anya-a.conf")
	defer run.stop()
	bs, err := run.Boot(ctx)
	if err != nil || bs.Fallback == nil || !strings.HasPrefix(bs.Fallback.Message(), "update to 1.0.0 failed: the new version did not start") {
		t.Fatalf("%+v, %v", bs.Fallback, err)
	}
	if _, err := run.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := run.History(0); len(h) != 1 {
		t.Fatalf("history %+v", h)
	}
}

func TestBless(t *testing.T) {
	for _, c := range []struct {
		booted  string // b's entry name when its agent starts
		orderA  int    // a's entry version
		wantA   int    // after commit
		wantB   int
		trial   bool
		entries []string
	}{
		{"anya-b+3.conf", 10, 10, 20, true, []string{"anya-a.conf", "anya-b.conf"}},
		{"anya-b+2-1.conf", 10, 10, 20, true, []string{"anya-a.conf", "anya-b.conf"}},
		{"anya-b+0-3.conf", 10, 10, 20, true, []string{"anya-a.conf", "anya-b.conf"}},
		{"anya-b+1-2.conf", 30, 19, 20, true, []string{"anya-a.conf", "anya-b.conf"}}, // a sorted first: lowered
		{"anya-b.conf", 10, 10, 20, false, []string{"anya-a.conf", "anya-b.conf"}},
	} {
		t.Run(c.booted, func(t *testing.T) {
			b := newBox(t)
			v2 := rel{version: "2.0.0", counter: 20}
			esp, err := slot.OpenFAT(b.layout.ESP, true)
			if err != nil {
				t.Fatal(err)
			}
			esp.Remove("loader/entries/anya-b.conf")
			for name, e := range map[string]slot.Entry{
				"anya-a.conf": slot.NewEntry("a", "1.0.0", c.orderA, slot.KernelCmdline("a", "")),
				c.booted:      slot.NewEntry("b", "2.0.0", 20, slot.KernelCmdline("b", "")),
			} {
				if _, err := esp.WriteFile("loader/entries/"+name, bytes.NewReader(e.Bytes())); err != nil {
					t.Fatal(err)
				}
			}
			esp.Close()
			run := b.start("b", v2, c.booted)
			defer run.stop()
			bs, err := run.Boot(ctx)
			if err != nil || bs.Trial() != c.trial {
				t.Fatalf("boot %+v, %v", bs, err)
			}
			if err := run.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got := b.entries(); !slices.Equal(got, c.entries) {
				t.Fatalf("entries %v, want %v", got, c.entries)
			}
			a := slot.ParseEntry(b.espFile("loader/entries/anya-a.conf"))
			bb := slot.ParseEntry(b.espFile("loader/entries/anya-b.conf"))
			if a.Order() != c.wantA || bb.Order() != c.wantB || !strings.Contains(a.Options, "anya.slot=a") {
				t.Fatalf("orders a %d b %d, want %d %d", a.Order(), bb.Order(), c.wantA, c.wantB)
			}
			if s, _ := b.sdBoot(); s != "b" {
				t.Fatalf("booted %s after commit", s)
			}
			if !run.MigrationsAllowed() {
				t.Fatal("migrations held after commit")
			}
		})
	}
}

// TestRefused: releases that do not verify, or are older, are refused and nothing on the disk
// changes (the whole image's bytes are compared).
func TestRefused(t *testing.T) {
	b := newBox(t)
	run := b.start("a", b.v1, "anya-a.conf")
	defer run.stop()
	if _, err := run.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := makeRelease(t, "2.0.0", 20, mib)
	v0 := makeRelease(t, "0.9.0", 9, mib)
	for _, c := range []struct {
		name   string
		bundle func(t *testing.T) string
		opts   agent.InstallOptions
		reason release.Reason
		err    error
	}{
		// First: once v2's metadata verified (below), v1 is older than what the box accepted.
		{name: "running release", bundle: func(t *testing.T) string { return b.sign(b.v1) }, err: agent.ErrUpToDate},
		{name: "tampered system image", bundle: func(t *testing.T) string { return tamper(t, b.sign(v2), "system.squashfs", false) }, reason: release.ReasonPayloadMismatch},
		{name: "tampered kernel", bundle: func(t *testing.T) string { return tamper(t, b.sign(v2), "vmlinuz", false) }, reason: release.ReasonPayloadMismatch},
		{name: "truncated initramfs", bundle: func(t *testing.T) string { return tamper(t, b.sign(v2), "initrd.img", true) }, reason: release.ReasonPayloadMismatch},
		{name: "tampered targets metadata", bundle: func(t *testing.T) string { return tamperMeta(t, b.sign(v2)) }, reason: release.ReasonMixAndMatch},
		{name: "older release", bundle: func(t *testing.T) string { return b.sign(v0) }, reason: release.ReasonRollback},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := c.bundle(t)
			before := b.sum()
			at, err := run.Update(ctx, b.src(bundle), c.opts)
			if c.err != nil && !errors.Is(err, c.err) || c.reason != 0 && release.ReasonOf(err) != c.reason {
				t.Fatalf("update: %+v, %v", at, err)
			}
			if b.sum() != before {
				t.Fatal("the disk changed")
			}
			t.Logf("refused: %v", err)
			if c.reason == 0 {
				return
			}
			st, _ := run.Status()
			if st.Last == nil || st.Last.Result != agent.Refused || st.Last.Code != c.reason.String() {
				t.Fatalf("last attempt %+v", st.Last)
			}
		})
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("entries %v", got)
	}
}

// TestInterrupted: an install stopped part-way (cancelled while the system image streams, a
// disk that fails, a refused boot-state approval, a tampered payload found only while
// writing) leaves the running slot and its entry untouched and no entry pointing at the
// half-written slot; the next install succeeds.
func TestInterrupted(t *testing.T) {
	for _, c := range []struct {
		name    string
		run     func(b *box, bt *boot, v2 rel) error
		code    string
		partial bool // the slot's partition was written part-way
	}{
		{"cancelled mid-write", func(b *box, bt *boot, v2 rel) error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			src := &cancelAfter{Fetcher: b.src(b.sign(v2)), file: "system.squashfs", fetch: 2, after: mib, cancel: cancel}
			rl, err := bt.Verify(cctx, src)
			if err != nil {
				return err
			}
			_, err = bt.Install(cctx, rl, agent.InstallOptions{})
			if src.read < mib {
				b.t.Fatalf("cancelled after %d bytes", src.read)
			}
			return err
		}, "canceled", true},
		{"disk write fails", func(b *box, bt *boot, v2 rel) error {
			bt.stop()
			bad := b.layout
			bad.Slots = map[string]slot.Partition{"a": b.layout.Slots["a"], "b": {Path: "/dev/full", Size: 8 * mib}}
			bt2 := b.start("a", b.v1, "anya-a.conf", func(c *agent.Config) { c.Layout = bad })
			defer bt2.stop()
			if _, err := bt2.Boot(ctx); err != nil {
				b.t.Fatal(err)
			}
			_, err := bt2.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{})
			return err
		}, "write", false},
		{"boot state approval fails", func(b *box, bt *boot, v2 rel) error {
			bt.stop()
			var sw agent.Switch
			bt2 := b.start("a", b.v1, "anya-a.conf", func(c *agent.Config) {
				c.BeforeSwitch = func(_ context.Context, s agent.Switch) error { sw = s; return errors.New("TPM busy") }
			})
			defer bt2.stop()
			if _, err := bt2.Boot(ctx); err != nil {
				b.t.Fatal(err)
			}
			_, err := bt2.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{})
			kernelSum := sha256sum(v2.kernel)
			if sw.Slot != "b" || sw.Entry != "anya-b+3.conf" || sw.KernelSHA256 != kernelSum || !strings.Contains(sw.Options, "anya.slot=b") {
				b.t.Fatalf("switch %+v", sw)
			}
			return err
		}, "switch", false},
		{"tampered payload, single pass", func(b *box, bt *boot, v2 rel) error {
			_, err := bt.Update(ctx, b.src(tamper(b.t, b.sign(v2), "system.squashfs", false)), agent.InstallOptions{SinglePass: true})
			return err
		}, "payload-mismatch", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBox(t)
			v2 := makeRelease(t, "2.0.0", 20, 2*mib)
			entryA := b.espFile("loader/entries/anya-a.conf")
			sums := b.regionSums()
			bt := b.start("a", b.v1, "anya-a.conf")
			if _, err := bt.Boot(ctx); err != nil {
				t.Fatal(err)
			}
			err := c.run(b, bt, v2)
			if err == nil {
				t.Fatal("the install succeeded")
			}
			t.Logf("install: %v", err)
			bt.stop()
			after := b.regionSums()
			if after["a"] != sums["a"] || after["data"] != sums["data"] || !bytes.Equal(b.espFile("loader/entries/anya-a.conf"), entryA) {
				t.Fatal("the running slot, its entry or the data changed")
			}
			if c.partial && after["b"] == sums["b"] {
				t.Fatal("slot b was not written at all: the test does not interrupt a write")
			}
			if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf"}) {
				t.Fatalf("entries %v: the half-written slot must have none", got)
			}
			if s, _ := b.sdBoot(); s != "a" {
				t.Fatalf("booted %s", s)
			}
			// The next run: the failure is on record, and a retry installs.
			bt = b.start("a", b.v1, "anya-a.conf")
			defer bt.stop()
			if _, err := bt.Boot(ctx); err != nil {
				t.Fatal(err)
			}
			st, _ := bt.Status()
			if st.Last == nil || st.Last.Result != agent.Failed || st.Last.Code != c.code {
				t.Fatalf("last attempt %+v", st.Last)
			}
			if at, err := bt.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{}); err != nil || at.Result != agent.Installed {
				t.Fatalf("retry: %+v, %v", at, err)
			}
			if got := b.partition("b", len(v2.system)); !bytes.Equal(got, v2.system) {
				t.Fatal("slot b does not hold v2 after the retry")
			}
		})
	}
}

// TestKilledDuringInstall: the process died during an install (no chance to record the
// failure): the next start records it as interrupted.
func TestKilledDuringInstall(t *testing.T) {
	b := newBox(t)
	bt := b.start("a", b.v1, "anya-a.conf")
	if _, err := bt.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	killedInstall(t, bt.db, agent.Attempt{Version: "2.0.0", Counter: 20, Slot: "b", FromSlot: "a", Started: t0, Result: agent.Installing})
	bt.stop()
	bt = b.start("a", b.v1, "anya-a.conf")
	defer bt.stop()
	bs, err := bt.Boot(ctx)
	if err != nil || bs.Pending {
		t.Fatalf("%+v, %v", bs, err)
	}
	st, _ := bt.Status()
	if st.Last.Result != agent.Failed || st.Last.Code != "interrupted" {
		t.Fatalf("last %+v", st.Last)
	}
}

// TestReinstallBeforeRestart: a second install before the restart replaces the first.
func TestReinstallBeforeRestart(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, 256<<10)
	v3 := makeRelease(t, "3.0.0", 30, 256<<10)
	installV2(t, b, v2)
	bt := b.start("a", b.v1, "anya-a.conf")
	defer bt.stop()
	if bs, err := bt.Boot(ctx); err != nil || !bs.Pending {
		t.Fatalf("%+v, %v", bs, err)
	}
	if _, err := bt.Update(ctx, b.src(b.sign(v3)), agent.InstallOptions{Source: "fleet"}); err != nil {
		t.Fatal(err)
	}
	h, _ := bt.History(0)
	if len(h) != 2 || h[0].Version != "3.0.0" || h[0].Result != agent.Installed || h[1].Result != agent.Failed || h[1].Code != "superseded" {
		t.Fatalf("history %+v", h)
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf"}) {
		t.Fatalf("entries %v", got)
	}
	if e := slot.ParseEntry(b.espFile("loader/entries/anya-b+3.conf")); e.Order() != 30 || !strings.Contains(e.Title, "3.0.0") {
		t.Fatalf("entry %+v", e)
	}
}

// TestKilledAfterSwitch: the entry was written but the process died before recording it; the
// new slot's agent takes the attempt over.
func TestKilledAfterSwitch(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, mib)
	installV2(t, b, v2)
	bt := b.start("a", b.v1, "anya-a.conf")
	h, _ := bt.History(1)
	h[0].Result, h[0].Switched = agent.Installing, t0.Add(-1)
	killedInstall(t, bt.db, h[0])
	bt.stop()
	s, entry := b.sdBoot()
	bt = b.start(s, v2, entry)
	defer bt.stop()
	bs, err := bt.Boot(ctx)
	if err != nil || !bs.Trial() {
		t.Fatalf("%+v, %v", bs, err)
	}
	if err := bt.Confirm(ctx, nil, agent.ConfirmOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := bt.Status(); st.Last.Result != agent.Committed || st.Last.Version != "2.0.0" {
		t.Fatalf("last %+v", st.Last)
	}
}

// TestInstallFromTar installs from a single-file bundle: seekable (two passes) and as a
// stream (one pass).
func TestInstallFromTar(t *testing.T) {
	for _, stream := range []bool{false, true} {
		b := newBox(t)
		v2 := makeRelease(t, "2.0.0", 20, mib)
		bt := b.start("a", b.v1, "anya-a.conf")
		if _, err := bt.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		tarFile := tarBundle(t, b, b.sign(v2))
		var src release.Fetcher = release.NewTar(tarFile)
		if stream {
			src = release.NewTar(onlyReader{tarFile})
		}
		at, err := bt.Update(ctx, src, agent.InstallOptions{Source: "upload", SinglePass: stream})
		if err != nil || at.Result != agent.Installed {
			t.Fatalf("stream %v: %+v, %v", stream, at, err)
		}
		if !bytes.Equal(b.partition("b", len(v2.system)), v2.system) || !bytes.Equal(b.espFile("anya/b/initrd.img"), v2.initrd) {
			t.Fatalf("stream %v: slot b differs", stream)
		}
		bt.stop()
	}
}

// TestTarStreamNeedsSinglePass: a tar stream read once for checking cannot be read again;
// the install stops before writing anything.
func TestTarStreamNeedsSinglePass(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, 256<<10)
	bt := b.start("a", b.v1, "anya-a.conf")
	defer bt.stop()
	if _, err := bt.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	before := b.sum()
	_, err := bt.Update(ctx, release.NewTar(onlyReader{tarBundle(t, b, b.sign(v2))}), agent.InstallOptions{Source: "upload"})
	if err == nil {
		t.Fatal("installed from a stream read twice")
	}
	if b.sum() != before {
		t.Fatal("the disk changed")
	}
	t.Logf("two passes over a stream: %v", err)
}

func TestTrustState(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, mib)
	// Without a root in the image or the database, updates are disabled; the rest works.
	bt := b.start("a", b.v1, "anya-a.conf", func(c *agent.Config) { c.TrustedRoot = nil })
	if ok, why := bt.Enabled(); ok || why != "updates disabled: no trusted root" {
		t.Fatalf("enabled %v %q", ok, why)
	}
	if _, err := bt.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{}); !errors.Is(err, agent.ErrDisabled) {
		t.Fatalf("update without a root: %v", err)
	}
	if st, _ := bt.Status(); st.Enabled || st.Disabled == "" {
		t.Fatalf("status %+v", st)
	}
	bt.stop()
	// With the shipped root, verifying stores the trust state in the database...
	bt = b.start("a", b.v1, "anya-a.conf")
	if _, err := bt.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.Verify(ctx, b.src(b.sign(v2))); err != nil {
		t.Fatal(err)
	}
	bt.stop()
	// ... which is used from then on, also by an image without a root.
	bt = b.start("a", b.v1, "anya-a.conf", func(c *agent.Config) { c.TrustedRoot = nil })
	defer bt.stop()
	if ok, _ := bt.Enabled(); !ok {
		t.Fatal("disabled although the database holds a trust state")
	}
	if _, err := bt.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.Update(ctx, b.src(b.sign(v2)), agent.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestUnmanaged(t *testing.T) {
	b := newBox(t)
	bt := b.start("", b.v1, "")
	defer bt.stop()
	if bs, err := bt.Boot(ctx); err != nil || !bs.Unmanaged || !bt.MigrationsAllowed() {
		t.Fatalf("%+v, %v", bs, err)
	}
	if _, err := bt.Update(ctx, b.src(b.sign(b.v1)), agent.InstallOptions{Force: true}); !errors.Is(err, agent.ErrUnmanaged) {
		t.Fatalf("install on a host: %v", err)
	}
}
