package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/node/backend"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/storage"
)

// HealthDeadline is how long after the kernel started a trial boot (the first boots of a
// newly installed slot) has to pass its health check before the agent marks the slot bad and
// reboots into the previous one. PID 1 gives the trial a deadline of its own, longer than this
// one (pid1.TrialDeadline), for the case where this process never gets as far as the check.
const HealthDeadline = 3 * time.Minute

// SpoolDir is the directory under the data directory where uploaded bundles are written
// before they are verified and installed (the data partition, never the RAM-backed /tmp).
const SpoolDir = "tmp"

// failHealth, when set at build time, makes this build fail its health check after an
// update: the test build "v3 whose health check fails" of the QEMU update tests.
//
//	go build -ldflags "-X github.com/anya-edge/anya/appliance/services.failHealth=1"
//
// "1" fails at once (agent.Permanent: the agent does not wait for the deadline); any other
// non-empty value fails every round until HealthDeadline. The value is in the anyad binary,
// which is the initramfs's /init, so the failing build differs from a good one in the signed
// initramfs payload. A committed box is never affected: the check only runs on a trial boot.
var failHealth string

// updates is the update agent of this run and what the services report to it.
type updates struct {
	agent *agent.Agent // nil when it could not start (unavailable says why)
	// unavailable says why the agent did not start; "" when it did.
	unavailable string
	log         *slog.Logger
	// committedFile, when set, is created once this boot is known to be committed; PID 1
	// reads it at its trial deadline (pid1.CommittedFile).
	committedFile string
	// slot is the running slot ("" in a development run), layout the boot disk.
	slot   string
	layout slot.Layout
	// approver approves the new slot's boot state for a TPM-protected wallet before the
	// switch (the agent's BeforeSwitch); nil until the key custody is open.
	approver atomic.Pointer[bootApprover]
}

// approveWith sets the key custody whose TPM-sealed wallet the agent's switch re-approves
// (nil: none).
func (u *updates) approveWith(custody *hsm.Custody, sealers map[string]seal.Sealer) {
	u.approver.Store(newBootApprover(custody, sealers, u.slot, u.log))
}

// beforeSwitch is the agent's Config.BeforeSwitch: the TPM approves the new boot state.
func (u *updates) beforeSwitch(ctx context.Context, sw agent.Switch) error {
	a := u.approver.Load()
	if a == nil {
		// Installs start from the page, which runs only once the custody is open; an
		// install without it cannot know whether the wallet needs the approval.
		return errors.New("the key custody is not open: the wallet's TPM approval cannot be checked")
	}
	return a.approve(ctx, sw)
}

// startUpdates creates the update agent on db and settles what this boot is (agent.Boot):
// on the box (cfg.Box) from the running slot, disk, ESP and trusted root (agent.BoxConfig);
// on a host, unmanaged (the agent keeps records but never installs, ErrUnmanaged). An agent
// that cannot start is logged and left out: the box then runs without updates (and a trial
// boot is decided by PID 1's deadline).
func startUpdates(ctx context.Context, db *storage.DB, cfg Config) *updates {
	u := &updates{log: cfg.Log.With("svc", "update"), committedFile: cfg.CommittedFile}
	var acfg agent.Config
	if cfg.Box {
		var err error
		if acfg, err = agent.BoxConfig(u.log); err != nil {
			u.unavailable = fmt.Sprintf("the update agent could not read the box's disk: %v", err)
			u.log.Error("update agent not started", "err", err)
			return u
		}
	}
	acfg.DB, acfg.Log = db, u.log
	if cfg.Box {
		acfg.Reboot = cfg.System.Reboot
	}
	u.slot, u.layout, acfg.BeforeSwitch = acfg.Slot, acfg.Layout, u.beforeSwitch
	a, err := agent.New(acfg)
	if err != nil {
		u.unavailable = fmt.Sprintf("the update agent could not start: %v", err)
		u.log.Error("update agent not started", "err", err)
		return u
	}
	u.agent = a
	bs, err := a.Boot(ctx)
	if err != nil {
		// The agent stays: Status and History still work; Confirm refuses without a Boot,
		// and PID 1's deadline decides a trial.
		u.log.Error("update agent: boot state", "err", err)
		return u
	}
	if bs.Unmanaged {
		u.log.Info("updates unavailable: not running from an update slot (development run)")
	}
	if !bs.Trial() {
		u.noteCommitted()
	}
	return u
}

// gate is the migration gate of this run: breaking migrations wait for the commit.
func (u *updates) gate() agent.Gate {
	if u.agent == nil {
		// Without an agent nothing says whether this boot is a trial; a breaking migration
		// could strand the previous firmware, so hold it back.
		return closedGate{}
	}
	return u.agent
}

type closedGate struct{}

func (closedGate) MigrationsAllowed() bool { return false }

// noteCommitted tells PID 1 that this boot is committed (see pid1.CommittedFile).
func (u *updates) noteCommitted() {
	if u.committedFile == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(u.committedFile), 0o755); err != nil {
		u.log.Warn("note the commit for PID 1", "err", err)
		return
	}
	if err := os.WriteFile(u.committedFile, []byte("committed\n"), 0o644); err != nil {
		u.log.Warn("note the commit for PID 1", "err", err)
	}
}

// confirm runs the health check of a trial boot (agent.Confirm: commit, or mark bad and
// reboot) and returns once it is decided; on a committed boot it returns at once.
func (u *updates) confirm(ctx context.Context, checks []agent.Check) error {
	if u.agent == nil {
		return nil
	}
	err := u.agent.Confirm(ctx, checks, agent.ConfirmOptions{Deadline: HealthDeadline, Uptime: agent.BootTime})
	if err != nil {
		return fmt.Errorf("update health check: %w", err)
	}
	if u.agent.MigrationsAllowed() {
		u.noteCommitted()
	}
	return nil
}

// healthEnv is what the health checks look at.
type healthEnv struct {
	db      *storage.DB
	sys     control.System
	custody *hsm.Custody
	node    *nodeService
	addr    net.Addr // where the page listens
	box     bool     // on the box: the data partition must be mounted
}

// healthChecks are the checks a trial boot must pass before it is committed: the storage
// opens, migrated and consistent, on the data partition; the page answers on its listener;
// the key custody reads its state and, when the TPM protects the wallet, unlocked it; the
// chain backend, when one is configured, answers. Each is retried until HealthDeadline.
func healthChecks(e healthEnv) []agent.Check {
	checks := []agent.Check{
		{Name: "storage", Run: e.checkStorage},
		{Name: "web page", Run: e.checkWeb},
		{Name: "key custody", Run: e.checkCustody},
		{Name: "chain backend", Run: e.checkChain},
	}
	if failHealth != "" {
		checks = append(checks, agent.Check{Name: "test build", Run: func(context.Context) error {
			err := errors.New("this build is made to fail its health check (built with failHealth=" + failHealth + ")")
			if failHealth == "1" {
				return agent.Permanent(err)
			}
			return err
		}})
	}
	return checks
}

// checkStorage: the data partition is mounted (on the box), every subsystem's schema reads,
// and the database file is consistent.
func (e healthEnv) checkStorage(ctx context.Context) error {
	if e.box {
		st, err := e.sys.Status(ctx)
		if err != nil {
			return fmt.Errorf("ask PID 1 for the data partition: %w", err)
		}
		switch st.Data.State {
		case control.DataOK, control.DataFormatted:
		default:
			return fmt.Errorf("the data partition is not mounted (%s: %s): the box runs on volatile state", st.Data.State, st.Data.Detail)
		}
	}
	for _, sub := range []string{agent.Subsystem, hsm.Subsystem, "web"} {
		v, err := e.db.SchemaVersion(sub)
		if err != nil {
			return fmt.Errorf("read the %s schema: %w", sub, err)
		}
		if v == 0 {
			return fmt.Errorf("the %s schema was not migrated", sub)
		}
	}
	if err := e.db.Check(); err != nil {
		return err
	}
	return nil
}

// checkWeb: GET /healthz on the page's own listener answers ok.
func (e healthEnv) checkWeb(ctx context.Context) error {
	host, port, err := net.SplitHostPort(e.addr.String())
	if err != nil {
		return fmt.Errorf("page address %s: %w", e.addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64))
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("page: GET /healthz answered %s %q", res.Status, body)
	}
	return nil
}

// checkCustody: the wallet's state reads; a wallet protected by the TPM alone is unlocked
// (the box unlocks it by itself at boot: if the new version cannot, the owner could not use
// the wallet without typing the recovery passphrase).
func (e healthEnv) checkCustody(ctx context.Context) error {
	if e.custody == nil {
		return nil
	}
	st, err := e.custody.Status()
	if err != nil {
		return fmt.Errorf("read the wallet: %w", err)
	}
	if st.Protection != seal.KindTPM || st.State == hsm.StateUnlocked {
		return nil
	}
	if err := e.custody.AutoUnlock(ctx); err != nil {
		return fmt.Errorf("the TPM did not unlock the wallet: %w", err)
	}
	return nil
}

// checkChain: when a chain backend is configured, it answers (a node that is still
// syncing answers too).
func (e healthEnv) checkChain(ctx context.Context) error {
	if e.node == nil {
		return nil
	}
	return e.node.checkBackend(ctx)
}

// checkBackend asks the configured chain backend whether it is reachable: the one the wallet
// uses, or one opened for the question when the wallet runs none. No backend configured:
// nil.
func (n *nodeService) checkBackend(ctx context.Context) error {
	s, ok, err := backend.Load(n.db)
	if err != nil {
		return fmt.Errorf("read the backend settings: %w", err)
	}
	if !ok {
		return nil
	}
	n.mu.Lock()
	b := n.backend
	n.mu.Unlock()
	if b == nil {
		if b, err = n.open(s); err != nil {
			return fmt.Errorf("open the chain backend: %w", err)
		}
		defer b.Close()
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Ready(rctx); err != nil && !errors.Is(err, chain.ErrSyncing) {
		return fmt.Errorf("the chain backend (%s) does not answer: %w", s.Kind, err)
	}
	return nil
}
