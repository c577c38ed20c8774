package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/checkin"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/anya-edge/anya/storage"
	fleetserver "github.com/anya-edge/anya/tools/fleet"
)

// The update page's tests run the real update agent on a small disk image written with
// image.WriteDisk (an ESP edited with go-diskfs, two 8 MiB slots), with releases signed by
// image/publish under a root the "image" ships: nothing of the update path is faked.

// updT0 is when the test releases are signed; the box's clock reads an hour later.
var updT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const updMiB = 1 << 20

// updRelease is a release's payloads as an image build makes them.
type updRelease struct {
	version                  string
	counter                  uint64
	kernel, initrd, manifest []byte
	system                   []byte
	img                      string
}

func updRandom(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// updMakeRelease writes a disk image for a release and takes slot a's payloads back out.
func updMakeRelease(t *testing.T, version string, counter uint64) updRelease {
	t.Helper()
	img := filepath.Join(t.TempDir(), "release.img")
	m, _ := json.Marshal(image.Release{Version: version, Counter: int(counter), Arch: "amd64", Epoch: updT0.Add(-48 * time.Hour).Unix()})
	d := image.Disk{BootEFI: []byte("systemd-boot"), Kernel: updRandom(counter*10+1, 256<<10+int(counter)),
		Initrd: updRandom(counter*10+2, 512<<10+int(counter)), Release: m,
		System: map[string][]byte{"release.json": m, "lib/blob": updRandom(counter*10+3, 128<<10)}}
	cfg := image.Config{Output: img, Version: version, Counter: int(counter), ESPSize: 40 * updMiB, SlotSize: 8 * updMiB,
		DataSize: updMiB, Cmdline: "anya.network=regtest"}
	if _, err := image.WriteDisk(cfg, d); err != nil {
		t.Fatal(err)
	}
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	sys := make([]byte, sf.SystemSize)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(sys, sf.SystemOffset); err != nil {
		t.Fatal(err)
	}
	return updRelease{version: version, counter: counter, kernel: sf.Kernel, initrd: sf.Initrd, manifest: sf.Release, system: sys, img: img}
}

// updBox is a box on a v1 disk image, with the vendor's signing keys.
type updBox struct {
	t      *testing.T
	dir    string
	v1     updRelease
	layout slot.Layout
	keys   *publish.Repo
	signed int
	logs   bytes.Buffer
	// fleet, when set, gives each run its check-in loop (UpdateConfig.Fleet and Offer).
	fleet func(run *updRun, reboot func(context.Context) error) *checkin.Runner
}

func newUpdBox(t *testing.T) *updBox {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	b := &updBox{t: t, dir: t.TempDir()}
	b.v1 = updMakeRelease(t, "1.0.0", 10)
	var err error
	if b.layout, err = image.Layout(b.v1.img); err != nil {
		t.Fatal(err)
	}
	if b.keys, err = publish.Keygen(filepath.Join(b.dir, "keys"), publish.KeygenOptions{Now: updT0.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return b
}

// bundle signs r and returns its single-file (tar) bundle.
func (b *updBox) bundle(r updRelease) []byte {
	b.t.Helper()
	out := filepath.Join(b.dir, fmt.Sprintf("bundle-%d", b.signed))
	bundle, err := b.keys.Sign(out, []publish.Release{{Arch: "amd64", Version: r.version, Counter: r.counter,
		Payloads: map[release.Kind]io.Reader{
			release.KindRelease: bytes.NewReader(r.manifest), release.KindKernel: bytes.NewReader(r.kernel),
			release.KindInitrd: bytes.NewReader(r.initrd), release.KindSystem: bytes.NewReader(r.system),
		}}}, publish.SignOptions{Now: updT0.Add(time.Duration(b.signed) * time.Minute)})
	if err != nil {
		b.t.Fatal(err)
	}
	b.signed++
	var buf bytes.Buffer
	if err := bundle.WriteTar(&buf); err != nil {
		b.t.Fatal(err)
	}
	return buf.Bytes()
}

// updRun is one run of the services on the box: the database, the agent, the page.
type updRun struct {
	t        *testing.T
	db       *storage.DB
	agent    *agent.Agent
	srv      *Server
	ts       *httptest.Server
	hc       *http.Client
	csrf     string
	reboots  chan struct{}
	checkins *checkin.Runner // with updBox.fleet
	log      *slog.Logger
}

// start runs slot s with release r as booted by entry loaderEntry ("" slot: a development
// run on a host). maxUpload 0 keeps the default.
func (b *updBox) start(s string, r updRelease, loaderEntry string, maxUpload int64) *updRun {
	b.t.Helper()
	db, err := storage.Open(filepath.Join(b.dir, "data", "anya.db"), storage.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	run := &updRun{t: b.t, db: db, reboots: make(chan struct{}, 4)}
	log := slog.New(slog.NewTextHandler(&b.logs, nil))
	run.log = log
	host := &control.Host{Version: "test", DataDir: b.dir, Logs: logring.New(10), Started: time.Now(),
		Restart: func() { run.reboots <- struct{}{} }}
	cfg := agent.Config{DB: db, Log: log, Arch: "amd64", Now: func() time.Time { return updT0.Add(time.Hour) },
		Running: agent.Running{Version: r.version, Counter: r.counter, Built: updT0.Add(-48 * time.Hour)}, TrustedRoot: b.keys.Root()}
	if s != "" {
		cfg.Slot, cfg.LoaderEntry, cfg.Layout, cfg.OpenESP = s, loaderEntry, b.layout, slot.FATOpener(b.layout.ESP)
		cfg.Reboot = func(ctx context.Context) error { return host.Reboot(ctx) }
	}
	if run.agent, err = agent.New(cfg); err != nil {
		b.t.Fatal(err)
	}
	if _, err := run.agent.Boot(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	ucfg := &UpdateConfig{Agent: run.agent, SpoolDir: filepath.Join(b.dir, "data", "tmp"), MaxUpload: maxUpload}
	if b.fleet != nil {
		run.checkins = b.fleet(run, host.Reboot)
		ucfg.Fleet = run.checkins
	}
	run.srv, err = New(Config{DB: db, System: host, Logger: log, Version: "anyad-test", Migrations: run.agent, Update: ucfg})
	if err != nil {
		b.t.Fatal(err)
	}
	run.ts = httptest.NewServer(run.srv.Handler())
	jar, _ := cookiejar.New(nil)
	run.hc = &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	b.t.Cleanup(run.stop)
	// Set up (the first run) or log in.
	body := `{"password":"correct horse battery staple","name":"upd-box"}`
	code, out := run.api("POST", "/api/setup", body)
	if code == http.StatusConflict || code == http.StatusUnauthorized { // set up before
		code, out = run.api("POST", "/api/login", `{"password":"correct horse battery staple"}`)
	}
	if code != http.StatusOK {
		b.t.Fatalf("setup/login: %d %v", code, out)
	}
	run.csrf, _ = out["csrf"].(string)
	return run
}

func (r *updRun) stop() {
	if r.ts != nil {
		r.ts.Close()
		r.ts = nil
		r.db.Close()
	}
}

// send sends a request (Origin set, as a browser does) and returns the status and body.
func (r *updRun) send(req *http.Request) (int, string) {
	r.t.Helper()
	req.Header.Set("Origin", r.ts.URL)
	res, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// api calls a JSON route.
func (r *updRun) api(method, p, body string) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, r.ts.URL+p, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.csrf != "" {
		req.Header.Set("X-CSRF-Token", r.csrf)
	}
	code, text := r.send(req)
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		m = map[string]any{"_body": text}
	}
	return code, m
}

// page GETs a page.
func (r *updRun) page(p string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.ts.URL+p, nil)
	return r.send(req)
}

// uploadForm posts the page's upload form: the fields in order, then the bundle.
func (r *updRun) uploadForm(fields [][2]string, bundle []byte) (int, string) {
	r.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	fw, _ := mw.CreateFormFile("bundle", "anya-2.0.0.tar")
	fw.Write(bundle)
	mw.Close()
	req, _ := http.NewRequest("POST", r.ts.URL+"/update/upload", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return r.send(req)
}

// uploadAPI posts a bundle to the API as a plain tar body.
func (r *updRun) uploadAPI(bundle []byte, query string) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.ts.URL+"/api/update/upload"+query, bytes.NewReader(bundle))
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("X-CSRF-Token", r.csrf)
	code, text := r.send(req)
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		m = map[string]any{"_body": text}
	}
	return code, m
}

func (b *updBox) entries() []string {
	b.t.Helper()
	names, err := image.ListESPDir(b.v1.img, "/"+slot.EntriesDir)
	if err != nil {
		b.t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// rename renames a boot entry, as systemd-boot does when it counts a try.
func (b *updBox) rename(from, to string) {
	b.t.Helper()
	esp, err := slot.OpenFAT(b.layout.ESP, true)
	if err != nil {
		b.t.Fatal(err)
	}
	defer esp.Close()
	if err := esp.Rename(path.Join(slot.EntriesDir, from), path.Join(slot.EntriesDir, to)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *updBox) slotBytes(s string) []byte {
	b.t.Helper()
	p := b.layout.Slots[s]
	c, err := os.ReadFile(b.v1.img)
	if err != nil {
		b.t.Fatal(err)
	}
	return slices.Clone(c[p.Offset : p.Offset+p.Size])
}

func wantContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestUpdateUploadInstallsAndFallsBack uploads bundles through the page and the API to a box
// on v1: a refused one (older release) and one without a CSRF token change nothing; v2
// installs into slot b and restarts the box; v2's trial boot fails its health check and the
// box, back on v1, shows why.
func TestUpdateUploadInstallsAndFallsBack(t *testing.T) {
	b := newUpdBox(t)
	v0 := updMakeRelease(t, "0.9.0", 5)
	v2 := updMakeRelease(t, "2.0.0", 20)
	tarV0, tarV2 := b.bundle(v0), b.bundle(v2)

	run := b.start("a", b.v1, "anya-a.conf", 0)
	code, text := run.page("/update")
	if code != http.StatusOK {
		t.Fatalf("GET /update: %d\n%s", code, text)
	}
	wantContains(t, "the update page", text, `id="update-version">1.0.0<`, ">committed<", `action="/update/upload"`,
		"No update server is configured", "No update has been tried", `href="/update"`)
	slotB := b.slotBytes("b")

	// An older release is refused with a reason; nothing is written.
	code, out := run.uploadAPI(tarV0, "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(out["error"]), "The update was refused") {
		t.Fatalf("v0 upload: %d %v", code, out)
	}
	// The page's form without its token (first field) is refused before the bundle is read.
	code, text = run.uploadForm([][2]string{{"csrf", "wrong"}}, tarV2)
	if code != http.StatusForbidden {
		t.Fatalf("upload without a valid token: %d\n%s", code, text)
	}
	code, _ = run.uploadForm(nil, tarV2)
	if code != http.StatusForbidden {
		t.Fatalf("upload without a token: %d", code)
	}
	if !bytes.Equal(b.slotBytes("b"), slotB) || !slices.Equal(b.entries(), []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("a refused upload changed the disk: entries %v", b.entries())
	}
	code, out = run.api("GET", "/api/update", "")
	if code != 200 || !strings.Contains(fmt.Sprint(out["report"]), "refused") || out["can_install"] != true {
		t.Fatalf("after the refusal: %d %v", code, out)
	}

	// v2 through the page: installed into slot b, set to be tried, the box restarts.
	code, text = run.uploadForm([][2]string{{"csrf", run.csrf}}, tarV2)
	if code != http.StatusOK || !strings.Contains(text, "Rebooting…") {
		t.Fatalf("v2 upload: %d\n%s", code, text)
	}
	select {
	case <-run.reboots:
	case <-time.After(5 * time.Second):
		t.Fatal("no reboot after the install")
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b+3.conf"}) {
		t.Fatalf("entries after the install: %v", got)
	}
	if got := b.slotBytes("b")[:len(v2.system)]; !bytes.Equal(got, v2.system) {
		t.Fatal("slot b does not hold v2's system image")
	}
	code, out = run.api("GET", "/api/update", "")
	if code != 200 || out["pending"] != "2.0.0 is installed and starts at the next restart." {
		t.Fatalf("after the install: %d %v", code, out)
	}
	hist, _ := out["history"].([]any)
	if len(hist) != 2 || hist[0].(map[string]any)["result"] != "installed" || hist[0].(map[string]any)["source"] != "upload" ||
		hist[1].(map[string]any)["result"] != "refused" {
		t.Fatalf("history: %v", hist)
	}
	if entries, err := os.ReadDir(filepath.Join(b.dir, "data", "tmp")); err != nil || len(entries) != 0 {
		t.Fatalf("spool directory after the upload: %v %v", entries, err)
	}
	run.stop()

	// systemd-boot tries b. The page says the running version is being checked and refuses
	// another install meanwhile.
	b.rename("anya-b+3.conf", "anya-b+2-1.conf")
	run = b.start("b", v2, "anya-b+2-1.conf", 0)
	code, text = run.page("/update")
	wantContains(t, "the trial's page", text, `id="update-version">2.0.0<`, "being checked after its update")
	code, out = run.uploadAPI(tarV2, "?force=1")
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "still being checked") {
		t.Fatalf("upload during the trial: %d %v", code, out)
	}
	// Its health check fails: the slot is marked bad and the box restarts.
	err := run.agent.Confirm(context.Background(), []agent.Check{{Name: "test build", Run: func(context.Context) error {
		return agent.Permanent(errors.New("made to fail"))
	}}}, agent.ConfirmOptions{Deadline: time.Minute})
	if !errors.Is(err, agent.ErrHealth) {
		t.Fatalf("Confirm: %v", err)
	}
	select {
	case <-run.reboots:
	case <-time.After(5 * time.Second):
		t.Fatal("no reboot after the failed health check")
	}
	run.stop()

	// Back on v1, the page says what happened in plain words.
	run = b.start("a", b.v1, "anya-a.conf", 0)
	code, text = run.page("/update")
	wantContains(t, "the page after the fallback", text, `id="update-fallback"`,
		"Update to 2.0.0 failed: the new version failed its health check: test build: made to fail",
		"went back to 1.0.0 by itself", "rolled-back")
	code, out = run.api("GET", "/api/update", "")
	if !strings.HasPrefix(fmt.Sprint(out["fallback"]), "Update to 2.0.0 failed") || out["version"] != "1.0.0" {
		t.Fatalf("fallback in the API: %v", out)
	}
	// The same release is not installed again unless the owner insists.
	code, out = run.uploadAPI(tarV2, "")
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "install anyway") {
		t.Fatalf("upload of the failed release: %d %v", code, out)
	}
	code, out = run.api("GET", "/api/update/history?max=1", "")
	if code != 200 {
		t.Fatalf("history: %d %v", code, out)
	}
}

// TestUpdateUnmanagedAndLimits: a development run refuses installs without reading the
// body, and an upload larger than the limit is refused without writing anything.
func TestUpdateUnmanagedAndLimits(t *testing.T) {
	b := newUpdBox(t)
	v2 := updMakeRelease(t, "2.0.0", 20)
	tarV2 := b.bundle(v2)

	dev := b.start("", b.v1, "", 0)
	code, text := dev.page("/update")
	wantContains(t, "the development run's page", text, `id="update-unavailable"`, "development mode")
	if strings.Contains(text, `action="/update/upload"`) {
		t.Error("the development run's page offers an upload")
	}
	code, out := dev.uploadAPI(tarV2, "")
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "not available on this host") {
		t.Fatalf("upload on a host: %d %v", code, out)
	}
	code, out = dev.api("POST", "/api/update/now", "")
	if code != http.StatusConflict {
		t.Fatalf("update now on a host: %d %v", code, out)
	}
	code, out = dev.api("POST", "/api/update/usb", "")
	if code != http.StatusNotImplemented {
		t.Fatalf("usb on a host: %d %v", code, out)
	}
	dev.stop()

	small := b.start("a", b.v1, "anya-a.conf", 64<<10)
	code, out = small.uploadAPI(tarV2, "")
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large upload: %d %v", code, out)
	}
	code, text = small.uploadForm([][2]string{{"csrf", small.csrf}}, tarV2)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(text, "too large") {
		t.Fatalf("large upload through the page: %d\n%s", code, text)
	}
	if got := b.entries(); !slices.Equal(got, []string{"anya-a.conf", "anya-b.conf"}) {
		t.Fatalf("entries: %v", got)
	}
	// Update now without a fleet: nothing offered.
	code, out = small.api("POST", "/api/update/now", `{"force":false}`)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "No update is offered") {
		t.Fatalf("update now without a fleet: %d %v", code, out)
	}
}

// TestUpdateFromFleetServer: the owner enrolls the box with a fleet server (tools/fleet) on
// the Updates page; the check-in loop reports the running release; the server offers v2 to
// every box of the channel; the loop installs it into slot b through the update agent,
// reports it installed and restarts the box. Bad enrollments are refused with the reason.
func TestUpdateFromFleetServer(t *testing.T) {
	b := newUpdBox(t)
	v2 := updMakeRelease(t, "2.0.0", 20)
	b.bundle(v2) // signed into b.dir/bundle-0, a release directory of the fleet server
	now := func() time.Time { return updT0.Add(time.Hour) }
	store, err := fleetserver.OpenBoltStore(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const admin = "fleet-admin-token-for-the-web-test"
	fs, err := fleetserver.New(fleetserver.Config{Store: store, Root: b.keys.Root(), Releases: b.dir, AdminToken: admin,
		Poll: time.Second, Now: now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	fts := httptest.NewServer(fs.Handler())
	defer fts.Close()
	ac := &fleetserver.AdminClient{URL: fts.URL, Token: admin, HTTP: fts.Client()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.fleet = func(run *updRun, reboot func(context.Context) error) *checkin.Runner {
		r, err := checkin.New(checkin.Config{DB: run.db, Updater: run.agent, Reboot: reboot, Now: now, Log: run.log,
			Keys: checkin.FileKeys{Path: filepath.Join(b.dir, "data", "fleet-key.pem")}})
		if err != nil {
			t.Fatal(err)
		}
		go r.Run(ctx)
		return r
	}
	run := b.start("a", b.v1, "anya-a.conf", 0)
	code, text := run.page("/update")
	if code != http.StatusOK {
		t.Fatalf("GET /update: %d", code)
	}
	wantContains(t, "the update page", text, `id="update-server"`, `action="/update/fleet"`)

	for _, bad := range []string{`{"url":"fleet.example","token":"x"}`, `{"url":"` + fts.URL + `","token":""}`,
		`{"url":"` + fts.URL + `","token":"anya-enroll-not-a-token"}`} {
		if code, out := run.api("POST", "/api/update/fleet", bad); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "could not enroll") {
			t.Fatalf("enroll %s: %d %v", bad, code, out)
		}
	}
	tok, err := ac.CreateToken(ctx, fleetserver.TokenRequest{Label: "web test"})
	if err != nil {
		t.Fatal(err)
	}
	code, out := run.api("POST", "/api/update/fleet", `{"url":"`+fts.URL+`","token":"`+tok.Secret+`"}`)
	if code != http.StatusOK || out["device_id"] == "" || out["key_blob"] != nil {
		t.Fatalf("enroll: %d %v", code, out)
	}
	device := out["device_id"].(string)
	waitDev := func(what string, ok func(fleetserver.Device) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			devs, err := ac.Devices(ctx)
			if err == nil && len(devs) == 1 && devs[0].ID == device && ok(devs[0]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("fleet inventory, waiting for %s: %+v %v", what, devs, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDev("the first check-in", func(d fleetserver.Device) bool { return d.Report.Version == "1.0.0" && d.Report.Slot == "a" })
	code, out = run.api("GET", "/api/update/fleet", "")
	if code != http.StatusOK || out["enrolled"] != true || out["last_check_in"] == nil {
		t.Fatalf("GET /api/update/fleet: %d %v", code, out)
	}

	pct := 100.0
	if _, err := ac.AddRelease(ctx, fleetserver.AddRelease{Channel: "stable", Dir: "bundle-0", Percent: &pct}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.reboots:
	case <-time.After(30 * time.Second):
		t.Fatalf("the offered release was not installed:\n%s", b.logs.String())
	}
	if got := b.slotBytes("b"); !bytes.Contains(got, v2.system[:4096]) {
		t.Fatal("slot b does not hold v2's system image")
	}
	waitDev("the install report", func(d fleetserver.Device) bool {
		return d.Report.Target != nil && d.Report.Target.Version == "2.0.0" && d.Report.Target.State == "installed"
	})
	code, text = run.page("/update")
	wantContains(t, "the update page", text, `id="fleet-url">`+fts.URL, "Last check-in")

	code, out = run.api("POST", "/api/update/fleet/leave", "")
	if code != http.StatusOK {
		t.Fatalf("leave: %d %v", code, out)
	}
	if _, out = run.api("GET", "/api/update/fleet", ""); out["enrolled"] == true {
		t.Fatalf("still enrolled after leaving: %v", out)
	}
}
