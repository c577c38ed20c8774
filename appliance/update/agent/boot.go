package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/slot"
	"golang.org/x/sys/unix"
)

// BootState is what the boot entries say about the running slot and the other one.
type BootState struct {
	// Unmanaged: a development run, not from a slot.
	Unmanaged bool `json:"unmanaged,omitempty"`

	Slot  string `json:"slot,omitempty"`
	Entry string `json:"entry,omitempty"` // the running slot's entry file, "" if it has none
	// State is the running slot's: Good means committed; Trying (or Bad, when nothing else
	// could boot) means this boot is a trial that Confirm decides.
	State     slot.State `json:"state"`
	TriesLeft int        `json:"tries_left,omitempty"`
	TriesDone int        `json:"tries_done,omitempty"`

	Other        string     `json:"other,omitempty"`
	OtherEntry   string     `json:"other_entry,omitempty"` // "" if the other slot has no entry
	OtherState   slot.State `json:"other_state"`
	OtherVersion string     `json:"other_version,omitempty"` // from its release.json on the ESP
	// Pending: the other slot is installed and set to be tried at the next restart.
	Pending bool `json:"pending,omitempty"`
	// Fallback is the failed attempt this boot fell back from (the other slot's entry is bad
	// and its attempt rolled back), nil otherwise.
	Fallback *Attempt `json:"fallback,omitempty"`

	// Error is set when the ESP could not be read; the state then comes from the records.
	Error string `json:"error,omitempty"`
}

// Trial reports whether this boot is a trial of the running slot.
func (b BootState) Trial() bool { return !b.Unmanaged && b.State != slot.Good }

// entryFile is one boot entry on the ESP.
type entryFile struct {
	File  string // as the ESP spells it
	Name  slot.Name
	Entry slot.Entry
}

// espEntries are the boot entries on the ESP, by slot.
type espEntries struct {
	bySlot map[string][]entryFile
	tmp    []string // leftover temporary files in the entries directory
}

func readEntries(esp slot.ESP) (espEntries, error) {
	e := espEntries{bySlot: map[string][]entryFile{}}
	names, err := esp.List(slot.EntriesDir)
	if err != nil {
		return e, fmt.Errorf("read boot entries: %w", err)
	}
	for _, f := range names {
		if strings.HasSuffix(strings.ToLower(f), ".tmp") {
			e.tmp = append(e.tmp, f)
			continue
		}
		n, err := slot.ParseName(f)
		if err != nil {
			continue // someone else's entry: not ours to judge
		}
		b, err := esp.ReadFile(path.Join(slot.EntriesDir, f))
		if err != nil {
			return e, fmt.Errorf("read boot entry: %w", err)
		}
		e.bySlot[n.Slot] = append(e.bySlot[n.Slot], entryFile{File: f, Name: n, Entry: slot.ParseEntry(b)})
	}
	return e, nil
}

// pick returns the entry of slot s that systemd-boot would use, nil if there is none. There
// is normally one; a crash in the middle of a rename can leave two, and then the one named
// like loaderEntry wins, else the most hopeful (good before trying before bad).
func (e espEntries) pick(s, loaderEntry string) *entryFile {
	var best *entryFile
	for i := range e.bySlot[s] {
		c := &e.bySlot[s][i]
		if loaderEntry != "" && strings.EqualFold(c.File, loaderEntry) {
			return c
		}
		if best == nil || c.Name.State() < best.Name.State() {
			best = c
		}
	}
	return best
}

// Boot reads the boot entries and the records and settles what this boot is: a committed
// slot, a trial (Confirm then decides), or the fallback after a failed update of the other
// slot, which it records and reports in BootState.Fallback ("update to X failed: why"). It
// also finishes attempts that a restart interrupted. Call it once at start, before the
// services migrate their data (MigrationsAllowed is false until it ran).
func (a *Agent) Boot(ctx context.Context) (BootState, error) {
	if a.cfg.Slot == "" {
		return BootState{Unmanaged: true}, nil
	}
	if err := a.lock(); err != nil {
		return BootState{}, err
	}
	defer a.op.Unlock()

	bs := BootState{Slot: a.cfg.Slot, Other: slot.Other(a.cfg.Slot)}
	atts, err := a.rec.list(0)
	if err != nil {
		return bs, err
	}
	espErr := a.readBootState(&bs)
	if espErr != nil {
		// Without the entries, the records decide: a trial iff an unfinished attempt wrote
		// the running slot.
		bs.Error = espErr.Error()
		bs.State = slot.Good
		for _, at := range atts {
			if !at.Result.Final() && at.Slot == bs.Slot {
				bs.State = slot.Trying
			}
		}
		a.log.Error("cannot read the boot entries; boot state taken from the records", "err", espErr, "trial", bs.Trial())
	} else if err := a.reconcile(&bs, atts); err != nil {
		return bs, err
	}
	if !bs.Trial() {
		if err := a.noteRunning(); err != nil {
			return bs, err
		}
	}
	a.mu.Lock()
	a.boot, a.booted = bs, true
	a.mu.Unlock()
	if !bs.Trial() {
		a.markCommitted()
	}
	switch {
	case bs.Fallback != nil:
		a.log.Error("UPDATE ROLLED BACK: " + bs.Fallback.Message())
	case bs.Trial():
		a.log.Info("this boot is a trial of the installed update", "slot", bs.Slot, "entry", bs.Entry, "tries_left", bs.TriesLeft)
	default:
		a.log.Info("running a committed slot", "slot", bs.Slot, "entry", bs.Entry, "other", bs.OtherEntry)
	}
	return bs, nil
}

// readBootState fills the entry fields of bs from the ESP.
func (a *Agent) readBootState(bs *BootState) error {
	esp, err := a.cfg.OpenESP(false)
	if err != nil {
		return err
	}
	defer esp.Close()
	ents, err := readEntries(esp)
	if err != nil {
		return err
	}
	if e := ents.pick(bs.Slot, a.cfg.LoaderEntry); e != nil {
		bs.Entry, bs.State, bs.TriesLeft, bs.TriesDone = e.File, e.Name.State(), e.Name.Left, e.Name.Done
	} else {
		// No entry (someone chose the slot by hand, or removed it): without a counter there is
		// no trial.
		bs.State = slot.Good
	}
	if e := ents.pick(bs.Other, ""); e != nil {
		bs.OtherEntry, bs.OtherState = e.File, e.Name.State()
		if b, err := esp.ReadFile(path.Join(slot.BootDir(bs.Other), slot.ReleaseFile)); err == nil {
			var m struct {
				Version string `json:"version"`
			}
			if json.Unmarshal(b, &m) == nil {
				bs.OtherVersion = m.Version
			}
		}
	}
	return nil
}

// reconcile brings the records in line with the entries (attempts newest first).
func (a *Agent) reconcile(bs *BootState, atts []Attempt) error {
	now := a.now()
	var otherLatest *Attempt
	handled := map[string]bool{} // slots whose newest unfinished attempt was settled
	for i := range atts {
		at := &atts[i]
		if at.Slot == bs.Other && otherLatest == nil {
			otherLatest = at
		}
		if at.Result.Final() {
			continue
		}
		before := *at
		switch {
		case handled[at.Slot]:
			at.Result, at.Finished, at.Code = Failed, now, "superseded"
			at.Reason = "a later install replaced it before it was started"
		case at.Slot == bs.Slot && bs.Trial():
			at.Result = Trying
			if at.Booted.IsZero() {
				at.Booted = now
			}
		case at.Slot == bs.Slot:
			// Committed by the boot before, whose record of it was lost in a crash.
			at.Result, at.Finished = Committed, now
		case at.Slot == bs.Other && bs.OtherEntry != "" && bs.OtherState == slot.Bad:
			at.Result, at.Finished = RolledBack, now
			if at.Reason == "" {
				tries := ""
				if n, err := slot.ParseName(bs.OtherEntry); err == nil && n.Done > 0 {
					tries = fmt.Sprintf(" (tried %d times)", n.Done)
				}
				if before.Result == Trying {
					at.Code, at.Reason = "restart", "the new version restarted before its health check passed"+tries
				} else {
					at.Code, at.Reason = "no-start", "the new version did not start"+tries
				}
			}
		case at.Slot == bs.Other && bs.OtherEntry != "" && bs.OtherState == slot.Trying:
			if at.Result == Installing { // the entry was written, the record of it was lost
				at.Result = Installed
				if at.Switched.IsZero() {
					at.Switched = now
				}
			}
			bs.Pending = true
		case at.Slot == bs.Other && bs.OtherEntry != "" && bs.OtherState == slot.Good && at.Result != Installing:
			// The other slot committed it, and this one was started by hand since.
			at.Result, at.Finished = Committed, now
		default:
			at.Result, at.Finished = Failed, now
			at.Code = "interrupted"
			at.Reason = "the install was interrupted (the box restarted during it); nothing was switched, it can be retried"
		}
		handled[at.Slot] = true
		if *at != before {
			if err := a.rec.put(*at); err != nil {
				return err
			}
			if at.Result.Final() {
				a.log.Info("update attempt finished", "version", at.Version, "result", at.Result, "reason", at.Reason)
			}
		}
	}
	if bs.OtherEntry == "" || bs.OtherState != slot.Bad {
		return nil
	}
	if otherLatest != nil && otherLatest.Result == RolledBack {
		fb := *otherLatest
		bs.Fallback = &fb
		return nil
	}
	// The other slot failed and nothing says why (its records were lost): say what the ESP
	// says, once.
	if otherLatest != nil && otherLatest.Version == bs.OtherVersion && otherLatest.Result.Final() &&
		otherLatest.Result != Committed {
		return nil
	}
	at := Attempt{Version: bs.OtherVersion, Source: "unknown", Slot: bs.Other, FromSlot: bs.Slot,
		FromVersion: a.cfg.Running.Version, FromCounter: a.cfg.Running.Counter,
		Started: now, Finished: now, Result: RolledBack, Code: "no-start",
		Reason: "the new version did not start (no record of its install was found)"}
	if at.Version == "" {
		at.Version = "the other slot"
	}
	if err := a.rec.add(&at); err != nil {
		return err
	}
	bs.Fallback = &at
	return nil
}

// noteRunning records the running release as the current version of a committed boot.
func (a *Agent) noteRunning() error {
	v, err := a.rec.getVersions()
	if err != nil {
		return err
	}
	r := a.cfg.Running
	if v.Current == r.Version && v.CurrentCounter == r.Counter && v.CurrentSlot == a.cfg.Slot {
		return nil
	}
	if v.Current != "" {
		v.Previous, v.PrevCounter, v.PreviousSlot = v.Current, v.CurrentCounter, v.CurrentSlot
	}
	v.Current, v.CurrentCounter, v.CurrentSlot, v.Since = r.Version, r.Counter, a.cfg.Slot, a.now()
	return a.rec.putVersions(v)
}

// Check is one part of the health check of a new slot.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// ConfirmOptions bound the health check.
type ConfirmOptions struct {
	// Deadline is how long the checks have to pass (5 minutes when zero), counted from the
	// call, or from the boot when Uptime is set.
	Deadline time.Duration
	// Interval is the pause between rounds of the checks that have not passed (5 s when zero).
	Interval time.Duration
	// Uptime, when set, returns the time since the boot (BootTime on the box): a services
	// process that restarts during the trial then does not get a fresh deadline each time.
	// One round of checks always runs.
	Uptime func() time.Duration
}

// lateRound bounds the checks of the one round that runs after the deadline.
const lateRound = 30 * time.Second

// BootTime returns CLOCK_BOOTTIME, the time since the kernel started.
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Confirm decides a trial boot: it runs the checks (each until it passes once) until all have
// passed or the deadline is reached. When all pass it commits the slot (Commit). When one
// has not passed by the deadline it records why, marks the slot bad (MarkBad) and calls
// Config.Reboot; systemd-boot then boots the previous slot, whose agent reports the failure.
// It returns nil at once when this boot is not a trial, and an error wrapping ErrHealth when
// the check failed.
func (a *Agent) Confirm(ctx context.Context, checks []Check, o ConfirmOptions) error {
	a.mu.Lock()
	bs, booted := a.boot, a.booted
	a.mu.Unlock()
	if !booted {
		return errors.New("update agent: Confirm before Boot")
	}
	if !bs.Trial() {
		return nil
	}
	if o.Deadline <= 0 {
		o.Deadline = 5 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	left := o.Deadline
	if o.Uptime != nil {
		left -= o.Uptime()
	}
	a.log.Info("health check of the new slot", "checks", len(checks), "deadline", o.Deadline, "left", left)
	dctx, cancel := context.WithTimeout(ctx, max(left, 0))
	defer cancel()
	passed := make([]bool, len(checks))
	failures := make([]error, len(checks))
	var commitErr error
	for {
		all := true
		for i, c := range checks {
			if passed[i] {
				continue
			}
			cctx, ccancel := dctx, context.CancelFunc(func() {})
			if dctx.Err() != nil && ctx.Err() == nil {
				// The deadline passed before the first round (a restarted services process):
				// that round still runs, bounded.
				cctx, ccancel = context.WithTimeout(ctx, lateRound)
			}
			err := c.Run(cctx)
			ccancel()
			if err != nil {
				failures[i] = fmt.Errorf("%s: %w", c.Name, err)
				all = false
				if errors.As(err, new(*permanentError)) {
					dctx = canceled(dctx) // no point in waiting for the deadline
					break
				}
				continue
			}
			passed[i], failures[i] = true, nil
			a.log.Info("health check passed", "check", c.Name)
		}
		if all {
			if commitErr = a.Commit(dctx); commitErr == nil {
				return nil
			}
			// Healthy but not committed (the ESP or the database failed): try again until
			// the deadline; after that the boot counter decides, the slot is not marked bad.
			a.log.Error("commit failed", "err", commitErr)
		}
		select {
		case <-time.After(o.Interval):
			continue
		case <-dctx.Done():
		}
		break
	}
	if commitErr != nil {
		return fmt.Errorf("the new slot is healthy but could not be committed: %w", commitErr)
	}
	if ctx.Err() != nil {
		// Shutting down: no verdict. The next boot of the slot (a try less) checks again.
		return fmt.Errorf("health check: %w", ctx.Err())
	}
	detail := errors.Join(failures...).Error()
	reason := "the new version failed its health check: " + firstLine(detail)
	a.log.Error("health check failed", "err", detail)
	if err := a.MarkBad(ctx, "health", reason, detail); err != nil {
		return fmt.Errorf("%w: %s; %w", ErrHealth, detail, err)
	}
	if a.cfg.Reboot != nil {
		a.log.Info("restarting into the previous slot")
		if err := a.cfg.Reboot(ctx); err != nil {
			return fmt.Errorf("%w: %s; restart: %w", ErrHealth, detail, err)
		}
	}
	return fmt.Errorf("%w: %s", ErrHealth, detail)
}

// Permanent marks a check's error as final: Confirm then fails the slot at once instead of
// retrying the check until the deadline (for example a database the new version refuses).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// canceled returns a context that is done, with parent's values.
func canceled(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	cancel()
	return ctx
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// trialAttempt returns the unfinished attempt that wrote the running slot, if any.
func (a *Agent) trialAttempt() (*Attempt, error) {
	atts, err := a.rec.list(0)
	if err != nil {
		return nil, err
	}
	for _, at := range atts {
		if at.Slot == a.cfg.Slot && !at.Result.Final() {
			return &at, nil
		}
	}
	return nil, nil
}

// Commit marks the running slot good, as systemd-bless-boot does: its entry
// anya-<slot>+N[-M].conf is renamed anya-<slot>.conf, which stops the counting, and the other
// slot's entry is given a lower version if it had not, so this one stays the default. Then
// MigrationsAllowed turns true. Committing a committed slot does nothing.
func (a *Agent) Commit(ctx context.Context) error {
	if a.cfg.Slot == "" {
		return ErrUnmanaged
	}
	if err := a.lock(); err != nil {
		return err
	}
	defer a.op.Unlock()
	if err := a.bless(); err != nil {
		return fmt.Errorf("commit slot %s: %w", a.cfg.Slot, err)
	}
	now := a.now()
	at, err := a.trialAttempt()
	if err != nil {
		return err
	}
	if at != nil {
		at.Result, at.Finished, at.Code, at.Reason, at.Detail = Committed, now, "", "", ""
		if err := a.rec.put(*at); err != nil {
			return err
		}
	}
	if err := a.noteRunning(); err != nil {
		return err
	}
	a.mu.Lock()
	a.boot.State, a.boot.TriesLeft = slot.Good, 0
	a.boot.Entry = slot.Name{Slot: a.cfg.Slot}.String()
	a.mu.Unlock()
	a.markCommitted()
	a.log.Info("update committed: this slot is now the default", "slot", a.cfg.Slot, "version", a.cfg.Running.Version)
	return nil
}

// bless renames the running slot's entry and orders the other one below it.
func (a *Agent) bless() error {
	esp, err := a.cfg.OpenESP(true)
	if err != nil {
		return err
	}
	defer esp.Close()
	ents, err := readEntries(esp)
	if err != nil {
		return err
	}
	cur := ents.pick(a.cfg.Slot, a.cfg.LoaderEntry)
	if cur == nil {
		return fmt.Errorf("slot %s has no boot entry", a.cfg.Slot)
	}
	good := cur.Name.Blessed().String()
	if err := renameEntry(esp, ents, a.cfg.Slot, cur, good); err != nil {
		return err
	}
	other := ents.pick(slot.Other(a.cfg.Slot), "")
	if other == nil || other.Name.State() != slot.Good || other.Entry.Order() < cur.Entry.Order() {
		return nil
	}
	// The other slot would still sort first: lower its version, or raise ours when ours is 0.
	target, entry := other, other.Entry
	if o := cur.Entry.Order(); o >= 1 {
		entry.Version = fmt.Sprint(o - 1)
	} else {
		target, entry = cur, cur.Entry
		target.File = good
		entry.Version = fmt.Sprint(other.Entry.Order() + 1)
	}
	if _, err := esp.WriteFile(path.Join(slot.EntriesDir, target.File), strings.NewReader(string(entry.Bytes()))); err != nil {
		return err
	}
	return esp.Sync()
}

// MarkBad records why the running slot failed (code, reason in plain words, detail for
// logs) and marks its entry bad as systemd-bless-boot's "bad" does (anya-<slot>+0-M.conf), so
// that the next boot starts the other slot. It refuses with ErrNoFallback when the other slot
// has no bootable entry, and does not touch a committed slot. It does not reboot.
func (a *Agent) MarkBad(ctx context.Context, code, reason, detail string) error {
	if a.cfg.Slot == "" {
		return ErrUnmanaged
	}
	a.mu.Lock()
	trial := a.boot.Trial() || !a.booted
	a.mu.Unlock()
	if !trial {
		return fmt.Errorf("mark slot %s bad: it is committed", a.cfg.Slot)
	}
	if err := a.lock(); err != nil {
		return err
	}
	defer a.op.Unlock()
	at, err := a.trialAttempt()
	if err != nil {
		return err
	}
	if at == nil {
		at = &Attempt{Version: a.cfg.Running.Version, Counter: a.cfg.Running.Counter, Source: "unknown",
			Slot: a.cfg.Slot, Started: a.now(), Booted: a.now(), Result: Trying}
		if err := a.rec.add(at); err != nil {
			return err
		}
	}
	// The reason first: if the box dies between here and the rename, the previous slot still
	// learns why after the fallback.
	at.Code, at.Reason, at.Detail = code, reason, detail
	if err := a.rec.put(*at); err != nil {
		return err
	}
	if err := a.markBadEntry(); err != nil {
		return fmt.Errorf("mark slot %s bad: %w", a.cfg.Slot, err)
	}
	at.Result, at.Finished = RolledBack, a.now()
	if err := a.rec.put(*at); err != nil {
		return err
	}
	a.mu.Lock()
	a.boot.State = slot.Bad
	a.mu.Unlock()
	a.log.Error("slot marked bad; the next boot starts the other slot", "slot", a.cfg.Slot, "reason", reason)
	return nil
}

func (a *Agent) markBadEntry() error {
	esp, err := a.cfg.OpenESP(true)
	if err != nil {
		return err
	}
	defer esp.Close()
	ents, err := readEntries(esp)
	if err != nil {
		return err
	}
	cur := ents.pick(a.cfg.Slot, a.cfg.LoaderEntry)
	if cur == nil {
		return fmt.Errorf("slot %s has no boot entry", a.cfg.Slot)
	}
	if cur.Name.State() == slot.Good {
		return fmt.Errorf("slot %s is committed", a.cfg.Slot)
	}
	if other := ents.pick(slot.Other(a.cfg.Slot), ""); other == nil || other.Name.State() == slot.Bad {
		return ErrNoFallback
	}
	return renameEntry(esp, ents, a.cfg.Slot, cur, cur.Name.Failed().String())
}

// renameEntry gives the slot's entry cur the file name name (blessed or bad, as
// systemd-bless-boot does), removes the slot's other entries (leftovers of interrupted
// renames) and syncs the ESP.
func renameEntry(esp slot.ESP, ents espEntries, s string, cur *entryFile, name string) error {
	for _, e := range ents.bySlot[s] {
		if e.File != cur.File && !strings.EqualFold(e.File, name) {
			if err := esp.Remove(path.Join(slot.EntriesDir, e.File)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if cur.File != name {
		if err := esp.Rename(path.Join(slot.EntriesDir, cur.File), path.Join(slot.EntriesDir, name)); err != nil {
			return err
		}
	}
	return esp.Sync()
}
