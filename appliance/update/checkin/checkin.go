package checkin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// Subsystem is the storage subsystem of the enrollment.
const Subsystem = "fleet"

// Defaults.
const (
	DefaultPoll = time.Hour
	// RetryPoll is the wait after a failed check-in (a server or network down).
	RetryPoll = 5 * time.Minute
	// Jitter is the spread of the check-ins, as a fraction of the interval.
	Jitter = 0.15
	// DefaultChannel is the channel a box asks for when the owner names none.
	DefaultChannel = "stable"
)

var migrations = []storage.Migration{{Version: 1, Name: "enrollment", Up: func(tx *bbolt.Tx) error {
	_, err := tx.Bucket([]byte(Subsystem)).CreateBucketIfNotExists([]byte(bucketSettings))
	return err
}}}

const (
	bucketSettings = "settings"
	keyEnrollment  = "enrollment"
)

// Settings are the box's enrollment with a fleet server.
type Settings struct {
	URL         string            `json:"url"`
	DeviceID    string            `json:"device_id"`
	Channel     string            `json:"channel"`
	Auto        bool              `json:"auto"` // install offers without asking
	Attestation fleet.Attestation `json:"attestation"`
	// KeyBlob is the device key as the KeyStore keeps it (a TPM-wrapped key; empty for a
	// key in a file).
	KeyBlob  []byte    `json:"key_blob,omitempty"`
	Enrolled time.Time `json:"enrolled"`
}

// KeyStore makes and loads the device key.
type KeyStore interface {
	// Create makes a new key; blob is what Load needs to use it again (nil for a key that
	// lives in a file of its own).
	Create(ctx context.Context) (key fleet.Key, blob []byte, err error)
	Load(ctx context.Context, blob []byte) (fleet.Key, error)
}

// Updater is what the loop needs of the update agent (*agent.Agent).
type Updater interface {
	Status() (agent.Status, error)
	Update(ctx context.Context, src release.Fetcher, o agent.InstallOptions) (*agent.Attempt, error)
}

// Config configures a Runner.
type Config struct {
	DB      *storage.DB
	Updater Updater
	Keys    KeyStore
	// Reboot restarts the box into the installed release.
	Reboot func(ctx context.Context) error
	// Health, when set, is the box's verdict for the report (fleet.HealthOK when nil and
	// the boot is committed).
	Health func() fleet.Health
	HTTP   *http.Client // nil: one with a 60 s timeout
	Log    *slog.Logger
	Now    func() time.Time
}

// Status is the enrollment and the latest check-in, for the page.
type Status struct {
	Enrolled    bool         `json:"enrolled"`
	Settings    *Settings    `json:"settings,omitempty"`
	LastCheckIn time.Time    `json:"last_check_in,omitzero"`
	LastError   string       `json:"last_error,omitempty"`
	Offer       *fleet.Offer `json:"offer,omitempty"`
	NextCheckIn time.Time    `json:"next_check_in,omitzero"`
}

// Runner is the check-in loop. Create it with New; it is safe for concurrent use.
type Runner struct {
	cfg      Config
	log      *slog.Logger
	settings *storage.Table[Settings]
	wake     chan struct{}
	op       sync.Mutex // one check-in at a time

	mu     sync.Mutex
	client *fleet.Client
	status Status
}

// New returns a Runner on cfg.DB, bringing the "fleet" subsystem's storage up to date.
func New(cfg Config) (*Runner, error) {
	if cfg.DB == nil || cfg.Updater == nil || cfg.Keys == nil || cfg.Reboot == nil {
		return nil, errors.New("fleet check-ins: DB, Updater, Keys and Reboot are required")
	}
	if err := cfg.DB.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("fleet check-ins: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Runner{cfg: cfg, log: cfg.Log, settings: storage.NewTable[Settings](cfg.DB, Subsystem, bucketSettings),
		wake: make(chan struct{}, 1)}
	if s, ok, err := r.settings.Get(keyEnrollment); err != nil {
		return nil, fmt.Errorf("fleet check-ins: %w", err)
	} else if ok {
		r.status = Status{Enrolled: true, Settings: &s}
	}
	return r, nil
}

// Status returns the enrollment and what the latest check-in brought.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	if st.Settings != nil {
		s := *st.Settings
		s.KeyBlob = nil
		st.Settings = &s
	}
	return st
}

// ErrNotEnrolled means the box has no fleet server.
var ErrNotEnrolled = errors.New("this box is not enrolled with a fleet server")

// Enroll enrolls the box with the server at serverURL using a one-time enrollment token,
// stores the enrollment and wakes the loop for a first check-in. A box enrolled already is
// enrolled anew (new key, new device id).
func (r *Runner) Enroll(ctx context.Context, serverURL, token, channel string, auto bool) (Settings, error) {
	u, err := url.Parse(strings.TrimSpace(serverURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Settings{}, fmt.Errorf("enroll: the server address must be an http(s) URL such as https://fleet.example.com/, not %q", serverURL)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Settings{}, errors.New("enroll: the enrollment token is required")
	}
	if channel = strings.TrimSpace(channel); channel == "" {
		channel = DefaultChannel
	}
	if !r.op.TryLock() {
		return Settings{}, fmt.Errorf("enroll: %w", ErrBusy)
	}
	defer r.op.Unlock()
	key, blob, err := r.cfg.Keys.Create(ctx)
	if err != nil {
		return Settings{}, fmt.Errorf("enroll: device key: %w", err)
	}
	c, err := fleet.NewClient(u.String(), key, fleet.Options{HTTP: r.cfg.HTTP, Now: r.cfg.Now})
	if err != nil {
		return Settings{}, fmt.Errorf("enroll: %w", err)
	}
	en, err := c.Enroll(ctx, token, fleet.Hardware{Arch: runtime.GOARCH}, channel)
	if err != nil {
		return Settings{}, fmt.Errorf("enroll: %w", err)
	}
	s := Settings{URL: u.String(), DeviceID: c.DeviceID(), Channel: channel, Auto: auto,
		Attestation: key.Attestation(), KeyBlob: blob, Enrolled: r.cfg.Now().UTC()}
	if en.Channel != "" {
		s.Channel = en.Channel
	}
	if err := r.settings.Put(keyEnrollment, s); err != nil {
		return Settings{}, fmt.Errorf("enroll: %w", err)
	}
	r.mu.Lock()
	r.client, r.status = c, Status{Enrolled: true, Settings: &s}
	r.mu.Unlock()
	r.log.Info("enrolled with the fleet server", "url", s.URL, "device", s.DeviceID, "channel", s.Channel, "key", s.Attestation)
	r.Wake()
	return s, nil
}

// Leave forgets the enrollment: the box stops checking in.
func (r *Runner) Leave() error {
	if !r.op.TryLock() {
		return fmt.Errorf("leave the fleet: %w", ErrBusy)
	}
	defer r.op.Unlock()
	if err := r.settings.Delete(keyEnrollment); err != nil {
		return fmt.Errorf("leave the fleet: %w", err)
	}
	r.mu.Lock()
	r.client, r.status = nil, Status{}
	r.mu.Unlock()
	r.log.Info("left the fleet server")
	return nil
}

// Wake makes the loop check in now.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// clientFor returns the client of the enrollment, loading the device key the first time.
func (r *Runner) clientFor(ctx context.Context) (*fleet.Client, Settings, error) {
	r.mu.Lock()
	c, st := r.client, r.status
	r.mu.Unlock()
	if !st.Enrolled {
		return nil, Settings{}, ErrNotEnrolled
	}
	if c != nil {
		return c, *st.Settings, nil
	}
	key, err := r.cfg.Keys.Load(ctx, st.Settings.KeyBlob)
	if err != nil {
		return nil, Settings{}, fmt.Errorf("device key: %w", err)
	}
	c, err = fleet.NewClient(st.Settings.URL, key, fleet.Options{HTTP: r.cfg.HTTP, Now: r.cfg.Now})
	if err != nil {
		return nil, Settings{}, err
	}
	r.mu.Lock()
	r.client = c
	r.mu.Unlock()
	return c, *st.Settings, nil
}

// report is the box's state for a check-in.
func (r *Runner) report(channel string) (fleet.Report, agent.Status, error) {
	st, err := r.cfg.Updater.Status()
	if err != nil {
		return fleet.Report{}, st, fmt.Errorf("update status: %w", err)
	}
	rep := fleet.Report{Version: st.Version, Counter: st.Counter, Slot: st.Slot, Arch: runtime.GOARCH, Channel: channel}
	switch {
	case r.cfg.Health != nil:
		rep.Health = r.cfg.Health()
	case st.Boot.Trial():
		rep.Health = fleet.HealthUnknown // the trial's health check decides
	default:
		rep.Health = fleet.HealthOK
	}
	if a := st.Last; a != nil {
		rep.Target = &fleet.Target{Version: a.Version, Counter: a.Counter, State: fleet.TargetState(a.Result)}
		if rep.Target.State.Failure() {
			rep.LastError = a.Message()
		}
	}
	return rep, st, nil
}

// ErrBusy means a check-in or an install of the loop is running.
var ErrBusy = errors.New("the box is checking in or installing an update: try again when it finished")

// CheckNow checks in once and returns the offer; it installs nothing. While the loop is
// busy (an install takes minutes) it returns the offer of the latest check-in instead.
func (r *Runner) CheckNow(ctx context.Context) (fleet.Offer, error) {
	if !r.op.TryLock() {
		st := r.Status()
		if st.Offer != nil {
			return *st.Offer, nil
		}
		return fleet.Offer{}, nil
	}
	defer r.op.Unlock()
	o, _, err := r.checkIn(ctx)
	return o, err
}

func (r *Runner) checkIn(ctx context.Context) (fleet.Offer, agent.Status, error) {
	c, s, err := r.clientFor(ctx)
	if err != nil {
		return fleet.Offer{}, agent.Status{}, err
	}
	rep, st, err := r.report(s.Channel)
	if err != nil {
		return fleet.Offer{}, st, err
	}
	o, err := c.CheckIn(ctx, rep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.status.LastError = err.Error()
		return fleet.Offer{}, st, err
	}
	r.status.LastCheckIn, r.status.LastError, r.status.Offer = r.cfg.Now().UTC(), "", nil
	if o.Available() {
		r.status.Offer = &o
	}
	return o, st, nil
}

// wanted reports whether the offer should be installed without asking, and why not.
func wanted(o fleet.Offer, st agent.Status, s Settings) (bool, string) {
	switch {
	case !o.Available():
		return false, "no release offered"
	case !s.Auto:
		return false, "automatic installs are off"
	case o.Counter <= st.Counter:
		return false, fmt.Sprintf("release %s (counter %d) is not newer than the running one", o.Version, o.Counter)
	}
	if a := st.Last; a != nil && a.Counter == o.Counter {
		switch {
		case fleet.TargetState(a.Result).Broken():
			return false, fmt.Sprintf("release %s failed here before (%s): install it from the page to retry", o.Version, a.Result)
		case !a.Result.Final():
			return false, fmt.Sprintf("release %s is being installed (%s)", o.Version, a.Result)
		}
	}
	return true, ""
}

// once checks in and installs what the server offers when it should; it returns the wait
// until the next check-in.
func (r *Runner) once(ctx context.Context) time.Duration {
	r.op.Lock()
	defer r.op.Unlock()
	o, st, err := r.checkIn(ctx)
	poll := DefaultPoll
	if o.Poll > 0 {
		poll = o.Poll
	}
	if err != nil {
		if !errors.Is(err, ErrNotEnrolled) {
			r.log.Warn("fleet check-in failed", "err", err)
			return min(poll, RetryPoll)
		}
		return poll
	}
	s := *r.Status().Settings
	ok, why := wanted(o, st, s)
	if !ok {
		if o.Available() {
			r.log.Info("fleet offer not installed", "version", o.Version, "why", why)
		}
		return poll
	}
	r.log.Info("installing the release the fleet server offers", "version", o.Version, "counter", o.Counter, "release", o.Release)
	src, err := release.NewHTTP(o.BaseURL, r.cfg.HTTP)
	if err != nil {
		r.log.Warn("fleet offer", "err", err)
		return poll
	}
	att, err := r.cfg.Updater.Update(ctx, src, agent.InstallOptions{Source: "fleet"})
	// Whatever happened, the server hears of it now (refused, failed, or installed).
	if _, _, cerr := r.checkIn(ctx); cerr != nil {
		r.log.Warn("fleet check-in after the install", "err", cerr)
	}
	if err != nil {
		r.log.Warn("fleet update not installed", "version", o.Version, "err", err)
		return min(poll, RetryPoll)
	}
	r.log.Info("fleet update installed: restarting into it", "version", att.Version, "slot", att.Slot)
	if err := r.cfg.Reboot(ctx); err != nil {
		r.log.Error("restart after the fleet update", "err", err)
	}
	return poll
}

// Run checks in until ctx ends: at once when enrolled, then on the server's schedule with
// jitter, and whenever Wake is called.
func (r *Runner) Run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x616e7961))
	wait := time.Duration(0)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.wake:
			timer.Stop()
		}
		poll := r.once(ctx)
		wait = fleet.NextPoll(poll, time.Duration(float64(poll)*Jitter), rng)
		r.mu.Lock()
		if r.status.Enrolled {
			r.status.NextCheckIn = r.cfg.Now().Add(wait).UTC()
		}
		r.mu.Unlock()
		timer.Reset(wait)
	}
}
