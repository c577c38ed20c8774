package pid1

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/storage"
)

// CommittedFile is created by the services (anyad serve) once this boot is known to be
// committed: the running slot was committed before, or its health check just passed.
const CommittedFile = "/run/anya/update-committed"

// TrialDeadline is how long after the kernel started a trial boot (the first boots of a newly
// installed slot) may stay uncommitted. The services' own health check has a shorter one
// (services.HealthDeadline, 3 minutes, plus one last round of at most 30 s) and, when it
// fails, marks the slot bad and reboots by itself; this deadline is for the case where the
// services never get that far, such as a services process that crash-loops before its
// health check runs, which would otherwise keep the box on a broken version (boot counting
// only counts boots).
const TrialDeadline = 5 * time.Minute

// dbFile is the services' database in the data directory (services.DBFile).
const dbFile = "anya.db"

// watchTrial waits until TrialDeadline after the boot. If the running slot is still on trial
// then (no CommittedFile, and the boot entry still counts tries) and the other slot can boot,
// it asks for a reboot, in which failTrial marks the slot bad once the services stopped.
func (p *init1) watchTrial(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(TrialDeadline - BootTime()):
	}
	if _, err := os.Stat(CommittedFile); err == nil {
		return
	}
	trial, err := p.uncommitted()
	if err != nil {
		p.log.Error("update trial deadline: cannot read the boot entries; leaving the decision to the boot counter", "err", err)
		return
	}
	if !trial {
		return
	}
	p.log.Error("UPDATE NOT CONFIRMED: the new version did not pass its health check in time; marking it bad and restarting into the previous version",
		"deadline", TrialDeadline, "services", p.servicesSummary())
	p.trialExpired.Store(true)
	p.request(actReboot)
}

// uncommitted reports whether the running slot's boot entry still counts tries while the
// other slot has a bootable entry. It reads the ESP with go-diskfs, read-only and without
// mounting it: the services may have it mounted at this moment.
func (p *init1) uncommitted() (bool, error) {
	cfg, err := agent.BoxConfig(nil)
	if err != nil {
		return false, err
	}
	if cfg.Slot == "" {
		return false, nil
	}
	esp, err := slot.OpenFAT(cfg.Layout.ESP, false)
	if err != nil {
		return false, err
	}
	defer esp.Close()
	cur, other, err := slotEntries(esp, cfg.Slot, cfg.LoaderEntry)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(CommittedFile); err == nil {
		return false, nil // committed while the entries were read
	}
	return cur != nil && cur.State() != slot.Good && other != nil && other.State() != slot.Bad, nil
}

// entryFile is a boot entry: its file name as the ESP spells it, and what the name says.
type entryFile struct {
	file string
	slot.Name
}

// slotEntries returns the boot entries of the running slot s (the one named loaderEntry when
// there are two, else the most hopeful) and of the other slot; nil when one has none.
func slotEntries(esp slot.ESP, s, loaderEntry string) (cur, other *entryFile, err error) {
	files, err := esp.List(slot.EntriesDir)
	if err != nil {
		return nil, nil, fmt.Errorf("read boot entries: %w", err)
	}
	pick := func(want string) *entryFile {
		var best *entryFile
		for _, f := range files {
			n, err := slot.ParseName(f)
			if err != nil || n.Slot != want {
				continue
			}
			if want == s && loaderEntry != "" && strings.EqualFold(f, loaderEntry) {
				return &entryFile{f, n}
			}
			if best == nil || n.State() < best.State() {
				best = &entryFile{f, n}
			}
		}
		return best
	}
	return pick(s), pick(slot.Other(s)), nil
}

// servicesSummary says how the services fared, for the reason recorded.
func (p *init1) servicesSummary() string {
	if p.sup == nil {
		return "did not start"
	}
	for _, st := range p.sup.Status() {
		if st.Name != "services" {
			continue
		}
		s := fmt.Sprintf("%s, restarted %d times", st.State, st.Restarts)
		if st.LastExit != "" {
			s += ", last exit: " + st.LastExit
		}
		return s
	}
	return "did not start"
}

// failTrial marks the running slot bad after its trial expired, with the services stopped:
// through the update agent, which records why (the previous version reports it after the
// fallback); if the agent cannot (its database does not open), by renaming the boot entry
// alone, and the previous version then reports that the new one did not start.
func (p *init1) failTrial(dataDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reason := fmt.Sprintf("the new version did not pass its health check within %v of starting (its services: %s)",
		TrialDeadline, p.servicesSummary())
	cfg, err := agent.BoxConfig(p.log)
	if err != nil {
		p.log.Error("mark the update bad", "err", err)
		return
	}
	if err = p.markBadWithAgent(ctx, cfg, dataDir, reason); err == nil {
		return
	}
	p.log.Error("mark the update bad through the update agent; renaming its boot entry instead", "err", err)
	if err := markEntryBad(cfg); err != nil {
		p.log.Error("mark the update bad", "err", err)
		return
	}
	p.log.Info("boot entry marked bad; the next boot starts the other slot", "slot", cfg.Slot)
}

func (p *init1) markBadWithAgent(ctx context.Context, cfg agent.Config, dataDir, reason string) error {
	db, err := storage.Open(filepath.Join(dataDir, dbFile), storage.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg.DB, cfg.Log = db, p.log
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	bs, err := a.Boot(ctx)
	if err != nil {
		return err
	}
	switch {
	case !bs.Trial():
		p.log.Info("the running slot was committed after all", "slot", bs.Slot)
		return nil
	case bs.State == slot.Bad:
		return nil // the services' health check marked it already (its reboot request was lost)
	}
	return a.MarkBad(ctx, "restart", reason, "PID 1's trial deadline passed before the health check passed")
}

// markEntryBad renames the running slot's counting entry to its "bad" name
// (anya-b+0-N.conf), as the agent's MarkBad does, without touching the records.
func markEntryBad(cfg agent.Config) error {
	if cfg.Slot == "" || cfg.OpenESP == nil {
		return errors.New("the running slot is unknown")
	}
	esp, err := cfg.OpenESP(true)
	if err != nil {
		return err
	}
	defer esp.Close()
	cur, other, err := slotEntries(esp, cfg.Slot, cfg.LoaderEntry)
	if err != nil {
		return err
	}
	if cur == nil || cur.State() == slot.Good {
		return nil // committed, or no entry: nothing to mark
	}
	if other == nil || other.State() == slot.Bad {
		return agent.ErrNoFallback
	}
	if err := esp.Rename(path.Join(slot.EntriesDir, cur.file), path.Join(slot.EntriesDir, cur.Failed().String())); err != nil {
		return err
	}
	return esp.Sync()
}
