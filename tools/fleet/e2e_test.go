package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
)

// seededKey is a software device key derived from a seed, so that which devices fall into
// a rollout is the same in every run.
func seededKey(t testing.TB, seed string) dev.Key {
	t.Helper()
	d := sha256.Sum256([]byte("anya-fleet-test-device\x00" + seed))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	k, err := dev.NewSoftwareKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tpmKey returns a device key held by swtpm, or nil when the TPM part is skipped (-short, or
// swtpm missing without ANYA_REQUIRE_ALL=1).
func tpmKey(t *testing.T) dev.Key {
	if testing.Short() {
		t.Log("-short: no TPM device")
		return nil
	}
	if _, err := exec.LookPath("swtpm"); err != nil && os.Getenv("ANYA_REQUIRE_ALL") != "1" {
		t.Log("swtpm not installed: no TPM device (apt-get install swtpm swtpm-tools)")
		return nil
	}
	sim := tpmtest.Start(t)
	s, err := tpm.New(sim.Dial())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	k, err := s.CreateSigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Persisted and reloaded as a box would after a reboot.
	k, err = s.LoadSigningKey(context.Background(), k.Blob())
	if err != nil {
		t.Fatal(err)
	}
	return dev.TPMKey(k)
}

// TestEndToEnd: a server on loopback, 50 simulated boxes with software keys and one whose key
// is in a TPM (swtpm) enroll and check in; a release added at 20 % is offered to exactly the
// devices its rollout picks, and they verify it from the server's /releases/ as a box would;
// they report success or failure; the rollout pauses itself when the failure rate passes
// 20 %, and resumes and widens through the admin API. The admin page shows it.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, 2)
	tk := tpmKey(t)
	uses := 50
	if tk != nil {
		uses++
	}
	tok := h.token(TokenRequest{Label: "e2e", Uses: uses})
	var devices []*simDevice
	for i := range 50 {
		devices = append(devices, h.enrolled(tok, seededKey(t, fmt.Sprint(i))))
	}
	if tk != nil {
		d := h.enrolled(tok, tk)
		devices = append(devices, d)
		t.Logf("TPM device %s enrolled", d.id)
	}
	if _, err := h.newDevice(nil).client.Enroll(ctx, tok, dev.Hardware{Arch: "amd64"}, ""); !errors.Is(err, dev.ErrTokenUsed) {
		t.Fatalf("enrollment past the token's %d uses: %v", uses, err)
	}
	for _, d := range devices {
		if o := d.checkIn(t); o.Available() {
			t.Fatalf("offer before any release: %+v", o)
		}
	}

	policy := &Policy{FailureThreshold: 0.2, MinAttempts: 5}
	h.addRelease("stable", 2, 20, policy)
	var offered, others []*simDevice
	for _, d := range devices {
		o := d.checkIn(t)
		want := InRollout("stable-2", d.id, 20)
		if o.Available() != want {
			t.Fatalf("device %s offered %v, rollout says %v", d.id, o.Available(), want)
		}
		if !want {
			others = append(others, d)
			continue
		}
		offered = append(offered, d)
		if o.Release != "stable-2" || o.Version != "1.2.0" || o.Counter != 2 {
			t.Fatalf("offer %+v", o)
		}
		verifyOffer(t, h, o)
	}
	t.Logf("20%% rollout: %d of %d devices offered", len(offered), len(devices))
	// The software devices are seeded, so this is the same in every run.
	if len(offered) < 8 {
		t.Fatalf("only %d devices in the 20%% rollout; pick other seeds", len(offered))
	}

	// All but the last offered device start installing; two succeed.
	last := offered[len(offered)-1]
	attempting := offered[:len(offered)-1]
	for _, d := range attempting {
		d.report.Target = &dev.Target{Version: "1.2.0", Counter: 2, State: dev.TargetInstalling}
		d.checkIn(t)
	}
	for _, d := range attempting[:2] {
		d.report = dev.Report{Version: "1.2.0", Counter: 2, Slot: "b", Arch: "amd64", Health: dev.HealthOK,
			Target: &dev.Target{Version: "1.2.0", Counter: 2, State: dev.TargetCommitted}}
		if o := d.checkIn(t); o.Available() {
			t.Fatalf("updated device offered %+v", o)
		}
	}
	// Failures one by one: the rollout pauses as soon as failed/attempted > 20 %.
	n := len(attempting)
	pausedAt := 0
	for i, d := range attempting[2:] {
		d.report.Target.State = dev.TargetRolledBack
		d.report.Health = dev.HealthOK
		d.report.LastError = "health check failed: services did not start within 120s"
		d.checkIn(t)
		failed := i + 1
		r, err := h.admin.Release(ctx, "stable-2")
		if err != nil {
			t.Fatal(err)
		}
		paused := r.Release.Rollout.State == StatePaused
		if want := float64(failed)/float64(n) > 0.2; paused != want {
			t.Fatalf("after %d of %d failed: paused %v, want %v", failed, n, paused, want)
		}
		if paused {
			pausedAt = failed
			t.Logf("paused after %d of %d failed: %s", failed, n, r.Release.Rollout.PausedReason)
			break
		}
	}
	if pausedAt == 0 {
		t.Fatal("never paused")
	}
	// Paused: nobody gets the release, not even the device in the rollout that had not started.
	if o := last.checkIn(t); o.Available() {
		t.Fatalf("offered a paused release: %+v", o)
	}

	// The inventory shows versions, health and last errors.
	ds, err := h.admin.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byVersion, withError, tpmDevices := map[string]int{}, 0, 0
	for _, d := range ds {
		byVersion[d.Report.Version]++
		if d.Report.LastError != "" {
			withError++
		}
		if d.Attestation == dev.AttestationTPM {
			tpmDevices++
		}
		if d.LastSeen.IsZero() || d.CheckIns < 2 {
			t.Fatalf("device %s: %d check-ins", d.ID, d.CheckIns)
		}
	}
	if len(ds) != len(devices) || byVersion["1.2.0"] != 2 || withError != pausedAt || tpmDevices != len(devices)-50 {
		t.Fatalf("inventory: %d devices, versions %v, %d with errors, %d TPM", len(ds), byVersion, withError, tpmDevices)
	}
	detail, err := h.admin.Release(ctx, "stable-2")
	if err != nil {
		t.Fatal(err)
	}
	if ro := detail.Release.Rollout; ro.Attempted != n || ro.Succeeded != 2 || ro.Failed != pausedAt || len(detail.Outcomes) != n {
		t.Fatalf("rollout counts %+v, %d outcomes", ro, len(detail.Outcomes))
	}
	checkPage(t, h, "stable-2", "paused", "health check failed")

	// Resume: the device that had not started gets it again; the failed ones do not.
	if _, err := h.admin.Resume(ctx, "stable-2"); err != nil {
		t.Fatal(err)
	}
	if o := last.checkIn(t); o.Release != "stable-2" {
		t.Fatalf("after resume: %+v", o)
	}
	if o := attempting[2].checkIn(t); o.Available() {
		t.Fatalf("failed device offered the release again: %+v", o)
	}
	// Widen to 100 %: every other device gets it.
	p := 100.0
	if _, err := h.admin.Widen(ctx, "stable-2", &p); err != nil {
		t.Fatal(err)
	}
	for _, d := range others {
		if o := d.checkIn(t); o.Release != "stable-2" {
			t.Fatalf("device %s at 100%%: %+v", d.id, o)
		}
	}
}

// verifyOffer fetches the offered bundle from its base URL and verifies it, payloads and all,
// with the box's verifier and the fleet's root.
func verifyOffer(t *testing.T, h *harness, o dev.Offer) {
	t.Helper()
	st, err := release.NewState(h.root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(st), Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := release.NewHTTP(o.BaseURL, h.ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	rel, err := v.Update(context.Background(), src, release.Installed{Version: "1.1.0", Counter: 1})
	if err != nil {
		t.Fatalf("offered release does not verify: %v", err)
	}
	if rel.Version != o.Version || rel.Counter != o.Counter {
		t.Fatalf("offer %+v, bundle %s", o, rel)
	}
	var size int64
	for _, p := range rel.Payloads {
		r, err := rel.Open(context.Background(), p.Kind)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			t.Fatalf("payload %s: %v", p.Kind, err)
		}
		size += n
	}
	if size != o.Size {
		t.Fatalf("offer says %d bytes, payloads are %d", o.Size, size)
	}
}

// checkPage signs in to the admin page and checks that it shows want.
func checkPage(t *testing.T, h *harness, want ...string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: h.ts.Client().Transport}
	resp, err := c.PostForm(h.ts.URL+"/admin/login", url.Values{"token": {"wrong-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong admin token: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(h.ts.URL+"/admin/login", url.Values{"token": {testAdminToken}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || !strings.Contains(page, "Releases and rollouts") {
		t.Fatalf("page after sign-in: %d\n%s", resp.StatusCode, page)
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Fatalf("page does not show %q", w)
		}
	}
	// A form without the CSRF token is refused.
	resp, err = c.PostForm(h.ts.URL+"/admin/action", url.Values{"op": {"pause"}, "id": {"stable-2"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("action without CSRF token: %d", resp.StatusCode)
	}
}
