package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/storage"
)

// Errors the agent returns (wrapped) for the caller to tell apart.
var (
	// ErrDisabled: the image carries no trusted root (and the database none either), so no
	// release can be verified.
	ErrDisabled = errors.New("updates disabled")
	// ErrUnmanaged: not running from a slot (a development run on a host).
	ErrUnmanaged = errors.New("not running from an update slot")
	// ErrBusy: another install, commit or check is running.
	ErrBusy = errors.New("an update operation is already running")
	// ErrOnTrial: the running slot is itself on trial; a new install waits until it is
	// committed, since the other slot is its fallback.
	ErrOnTrial = errors.New("the running version is not committed yet")
	// ErrUpToDate: the release is the one running.
	ErrUpToDate = errors.New("already up to date")
	// ErrFailedBefore: the release already failed on this box (its health check or its boot);
	// Force retries it.
	ErrFailedBefore = errors.New("this release already failed on this box")
	// ErrHealth: the new slot failed its health check.
	ErrHealth = errors.New("health check failed")
	// ErrNoFallback: the new slot failed but the other slot has no bootable entry, so the
	// box stays on it rather than reboot into nothing.
	ErrNoFallback = errors.New("no other slot to fall back to")
)

// Running describes the release the box runs (its release.json).
type Running struct {
	Version string
	Counter uint64
	Built   time.Time // the release's build time (release.json's epoch)
}

// ReadRunning reads a release manifest (/etc/anya/release.json in the initramfs, or
// /system/release.json).
func ReadRunning(path string) (Running, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Running{}, fmt.Errorf("read running release: %w", err)
	}
	var m struct {
		Version string `json:"version"`
		Counter uint64 `json:"counter"`
		Epoch   int64  `json:"epoch"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Running{}, fmt.Errorf("read running release %s: %w", path, err)
	}
	r := Running{Version: m.Version, Counter: m.Counter}
	if m.Epoch > 0 {
		r.Built = time.Unix(m.Epoch, 0).UTC()
	}
	return r, nil
}

// Switch describes the boot state the box is about to switch to, for Config.BeforeSwitch:
// what a TPM needs to predict the new slot's PCRs and approve them.
type Switch struct {
	Slot    string // the slot to be tried
	Entry   string // its boot entry's file name (anya-b+3.conf)
	Version string
	Counter uint64
	// KernelSHA256 and InitrdSHA256 are the verified digests of the new boot files.
	KernelSHA256, InitrdSHA256 [32]byte
	// Options is the new entry's kernel command line.
	Options string
}

// Config configures an Agent.
type Config struct {
	// DB holds the agent's records (subsystem "update"). Required.
	DB  *storage.DB
	Log *slog.Logger // slog.Default() when nil

	// Slot is the running slot ("a" or "b", see slot.DetectBooted); empty for a development
	// run, where the agent only keeps records and never installs.
	Slot string
	// LoaderEntry is the entry systemd-boot booted (LoaderEntrySelected), if known; it picks
	// the right entry when a crash left two for the running slot.
	LoaderEntry string
	// Running is the running release.
	Running Running
	// TrustedRoot is the root metadata shipped in the image (slot.TrustedRootFile). Nil
	// leaves updates disabled unless the database already holds a trust state.
	TrustedRoot []byte

	// Layout is the boot disk; OpenESP opens its ESP. Both required with a Slot.
	Layout  slot.Layout
	OpenESP slot.Opener

	Arch  string           // runtime.GOARCH when empty
	Now   func() time.Time // time.Now when nil
	Tries int              // boots a new slot gets; slot.DefaultTries when zero

	// BeforeSwitch, when set, runs after every payload of an install verified and was written
	// and before the new slot's entry is written; an error stops the install (nothing is
	// switched). The key custody uses it to approve the new slot's boot state in the TPM.
	BeforeSwitch func(ctx context.Context, s Switch) error
	// Reboot, when set, is called by Confirm after the new slot failed its health check and
	// was marked bad. Without it the caller reboots.
	Reboot func(ctx context.Context) error
}

// Agent is the update agent of one running box. Its methods are safe for concurrent use;
// operations that change slots run one at a time.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	rec      *records
	trust    *trustStore
	verifier *release.Verifier
	disabled string // why updates are disabled; "" when enabled

	op sync.Mutex // one install, commit or boot check at a time

	mu        sync.Mutex
	boot      BootState
	booted    bool          // Boot ran
	committed chan struct{} // closed once the running slot is known to be committed
}

// New opens the agent's records (migrating the "update" subsystem) and its trust state. It
// does not touch the ESP; call Boot next.
func New(cfg Config) (*Agent, error) {
	if cfg.DB == nil {
		return nil, errors.New("update agent: no database")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Arch == "" {
		cfg.Arch = runtime.GOARCH
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tries <= 0 {
		cfg.Tries = slot.DefaultTries
	}
	if cfg.Slot != "" {
		if !slot.Valid(cfg.Slot) {
			return nil, fmt.Errorf("update agent: %q is not a slot", cfg.Slot)
		}
		if cfg.OpenESP == nil {
			return nil, errors.New("update agent: no ESP opener")
		}
		if _, ok := cfg.Layout.Slot(slot.Other(cfg.Slot)); !ok {
			return nil, fmt.Errorf("update agent: no partition for slot %s", slot.Other(cfg.Slot))
		}
	}
	rec, err := openRecords(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("update agent: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Log.With("subsystem", "update"), rec: rec, committed: make(chan struct{})}
	a.trust = &trustStore{t: rec.trust, shipped: cfg.TrustedRoot}
	switch _, err := a.trust.Load(); {
	case errors.Is(err, errNoRoot):
		a.disabled = "updates disabled: no trusted root"
		a.log.Warn(a.disabled + " (the image was built without one)")
	case err != nil:
		a.disabled = "updates disabled: " + err.Error()
		a.log.Error(a.disabled)
	default:
		a.verifier, err = release.NewVerifier(release.Config{Store: a.trust, Arch: cfg.Arch, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("update agent: %w", err)
		}
	}
	if cfg.Slot == "" {
		a.boot = BootState{Unmanaged: true}
		a.booted = true
		close(a.committed)
	}
	return a, nil
}

// Enabled reports whether the agent can verify releases, and if not, why.
func (a *Agent) Enabled() (bool, string) { return a.disabled == "", a.disabled }

// Slot is the running slot; Target the slot an install writes (the other one).
func (a *Agent) Slot() string   { return a.cfg.Slot }
func (a *Agent) Target() string { return slot.Other(a.cfg.Slot) }

// MigrationsAllowed reports whether breaking schema migrations may run: only once the
// running slot is committed. Until then the previous firmware may have to take over the
// data after a fallback, and it must still be able to read it.
func (a *Agent) MigrationsAllowed() bool {
	select {
	case <-a.committed:
		return true
	default:
		return false
	}
}

// Committed is closed once the running slot is committed (at once when it already is), for
// services that hold back breaking migrations until then.
func (a *Agent) Committed() <-chan struct{} { return a.committed }

func (a *Agent) markCommitted() {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.committed:
	default:
		close(a.committed)
	}
}

// Status is what the page shows about updates.
type Status struct {
	Enabled  bool   `json:"enabled"`
	Disabled string `json:"disabled,omitempty"` // why not
	Slot     string `json:"slot,omitempty"`
	Version  string `json:"version"`
	Counter  uint64 `json:"counter"`

	Boot     BootState `json:"boot"`
	Versions Versions  `json:"versions"`
	// Last is the latest attempt; Report says in one line how it went ("update to 1.3.0
	// failed: ...").
	Last   *Attempt `json:"last,omitempty"`
	Report string   `json:"report,omitempty"`

	MigrationsAllowed bool `json:"migrations_allowed"`
}

// Status returns the update status.
func (a *Agent) Status() (Status, error) {
	a.mu.Lock()
	boot := a.boot
	a.mu.Unlock()
	st := Status{Enabled: a.disabled == "", Disabled: a.disabled, Slot: a.cfg.Slot,
		Version: a.cfg.Running.Version, Counter: a.cfg.Running.Counter, Boot: boot,
		MigrationsAllowed: a.MigrationsAllowed()}
	var err error
	if st.Versions, err = a.rec.getVersions(); err != nil {
		return st, err
	}
	last, err := a.rec.list(1)
	if err != nil {
		return st, err
	}
	if len(last) > 0 {
		st.Last = &last[0]
		st.Report = last[0].Message()
	}
	return st, nil
}

// History returns the latest n attempts, newest first (all when n <= 0).
func (a *Agent) History(n int) ([]Attempt, error) { return a.rec.list(n) }

// lock takes the operation lock or says ErrBusy.
func (a *Agent) lock() error {
	if !a.op.TryLock() {
		return ErrBusy
	}
	return nil
}

func (a *Agent) now() time.Time { return a.cfg.Now().UTC() }
