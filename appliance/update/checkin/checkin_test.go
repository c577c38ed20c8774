package checkin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/checkin"
	"github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/storage"
	fleetserver "github.com/anya-edge/anya/tools/fleet"
)

const adminToken = "checkin-test-admin-token-0123456789"

// updater is the update agent's side as the loop sees it (the QEMU update test runs the real
// agent): it reports a running release and the latest attempt, and an Update fetches the
// offered release's signed metadata from the server and verifies it against the fleet's
// root, as the agent would, before it reports the release installed.
type updater struct {
	mu       sync.Mutex
	st       agent.Status
	root     []byte
	installs []string
}

func (u *updater) Status() (agent.Status, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st, nil
}

func (u *updater) Update(ctx context.Context, src release.Fetcher, o agent.InstallOptions) (*agent.Attempt, error) {
	state, err := release.NewState(u.root)
	if err != nil {
		return nil, err
	}
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(state), Arch: runtime.GOARCH})
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	running := release.Installed{Version: u.st.Version, Counter: u.st.Counter}
	u.mu.Unlock()
	rel, err := v.Update(ctx, src, running)
	if err != nil {
		return nil, err
	}
	att := &agent.Attempt{Version: rel.Version, Counter: rel.Counter, Source: o.Source, Result: agent.Installed, Slot: "b"}
	u.mu.Lock()
	u.installs = append(u.installs, rel.Version)
	u.st.Last = att
	u.mu.Unlock()
	return att, nil
}

func TestEnrollCheckInInstall(t *testing.T) {
	dir := t.TempDir()
	relDir := filepath.Join(dir, "releases")
	root, err := fleetserver.SignDemo(filepath.Join(dir, "keys"), relDir, runtime.GOARCH, 2)
	if err != nil {
		t.Fatal(err)
	}
	store, err := fleetserver.OpenBoltStore(filepath.Join(dir, "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := fleetserver.New(fleetserver.Config{Store: store, Root: root, Releases: relDir, AdminToken: adminToken,
		Poll: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	admin := &fleetserver.AdminClient{URL: ts.URL, Token: adminToken, HTTP: ts.Client()}
	ctx := context.Background()

	db, err := storage.Open(filepath.Join(dir, "box.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := &updater{root: root, st: agent.Status{Version: "1.1.0", Counter: 1, Slot: "a"}}
	rebooted := make(chan struct{}, 4)
	keys := checkin.FileKeys{Path: filepath.Join(dir, "device.pem")}
	newRunner := func() *checkin.Runner {
		r, err := checkin.New(checkin.Config{DB: db, Updater: u, Keys: keys,
			Reboot: func(context.Context) error { rebooted <- struct{}{}; return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := newRunner()
	if _, err := r.CheckNow(ctx); !errors.Is(err, checkin.ErrNotEnrolled) {
		t.Fatalf("check-in before enrolling: %v", err)
	}

	// Bad input is refused with a clear error, and nothing is stored.
	for _, c := range []struct{ url, token string }{
		{"fleet.example", "x"}, {"ftp://fleet.example/", "x"}, {ts.URL, ""}, {ts.URL, "not-a-token"},
	} {
		if _, err := r.Enroll(ctx, c.url, c.token, "", true); err == nil {
			t.Fatalf("enroll %q %q: no error", c.url, c.token)
		}
	}
	if r.Status().Enrolled {
		t.Fatal("a refused enrollment was stored")
	}
	tok, err := admin.CreateToken(ctx, fleetserver.TokenRequest{Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Enroll(ctx, ts.URL, tok.Secret, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Channel != "stable" || s.Attestation != fleet.AttestationSoftware || s.DeviceID == "" {
		t.Fatalf("enrollment: %+v", s)
	}

	// The loop checks in; with nothing offered, nothing is installed.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	waitFor(t, "a check-in", func() bool { return !r.Status().LastCheckIn.IsZero() })
	devs, err := admin.Devices(ctx)
	if err != nil || len(devs) != 1 || devs[0].ID != s.DeviceID || devs[0].Report.Counter != 1 {
		t.Fatalf("inventory: %+v %v", devs, err)
	}

	// A release for everyone: the box installs it, tells the server, and restarts.
	pct := 100.0
	if _, err := admin.AddRelease(ctx, fleetserver.AddRelease{Channel: "stable", Dir: "stable-2", Percent: &pct}); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	select {
	case <-rebooted:
	case <-time.After(20 * time.Second):
		t.Fatalf("no install and restart: %+v", r.Status())
	}
	if len(u.installs) != 1 || u.installs[0] != "1.2.0" {
		t.Fatalf("installs %v", u.installs)
	}
	waitFor(t, "the server hears of the install", func() bool {
		devs, _ := admin.Devices(ctx)
		return len(devs) == 1 && devs[0].Report.Target != nil && devs[0].Report.Target.State == fleet.TargetInstalled
	})

	// The new slot failed its trial and the box is back on 1.1.0: it reports the rollback
	// and does not install the same release again by itself.
	u.mu.Lock()
	u.st.Last = &agent.Attempt{Version: "1.2.0", Counter: 2, Result: agent.RolledBack, Code: "health", Reason: "the health check failed"}
	u.mu.Unlock()
	r.Wake()
	waitFor(t, "the server hears of the rollback", func() bool {
		devs, _ := admin.Devices(ctx)
		return len(devs) == 1 && devs[0].Report.Target != nil && devs[0].Report.Target.State == fleet.TargetRolledBack &&
			devs[0].Report.LastError != ""
	})
	time.Sleep(300 * time.Millisecond) // several more polls
	if len(u.installs) != 1 {
		t.Fatalf("the release that rolled back was installed again: %v", u.installs)
	}

	// After a restart the box keeps its enrollment and key.
	stop()
	<-done
	r2 := newRunner()
	if st := r2.Status(); !st.Enrolled || st.Settings.DeviceID != s.DeviceID {
		t.Fatalf("after a restart: %+v", st)
	}
	if _, err := r2.CheckNow(ctx); err != nil {
		t.Fatalf("check-in after a restart: %v", err)
	}
	if err := r2.Leave(); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.CheckNow(ctx); !errors.Is(err, checkin.ErrNotEnrolled) {
		t.Fatalf("after leaving: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
