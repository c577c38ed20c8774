package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/anya-edge/anya/image/qemu"
	fleetserver "github.com/anya-edge/anya/tools/fleet"
)

// The QEMU end-to-end test of over-the-air updates (issue 7). One image v1 with the trusted
// root, and bundles signed with the root's keys: v0 (older), v2, v3 (its anyad fails its
// health check: services.failHealth=1) and v2 with one payload byte flipped. The box (with a
// software TPM holding a wallet it unlocks by itself) goes through:
//
//	boot 1, v1:  setup, TPM wallet; v0 and tampered v2 refused; power off:
//	             both slots and the ESP's boot files are byte for byte as before
//	boot 2, v1:  upload v2, power cut during the slot write
//	boot 3, v1:  still slot a, the attempt reported interrupted; plain write benchmark;
//	             the box enrolls with the fleet server (tools/fleet, on the host's loopback,
//	             reached at 10.0.2.2 through QEMU's user network) with its TPM-held key;
//	             the server offers v2 to 100 % of stable: installed, restarts by itself
//	boot 4, v2:  trial of slot b, health check, committed, reported to the server; the TPM
//	             unlocked the wallet; the server offers v3: installed, power cut right
//	             after the switch
//	boot 5, v3:  trial of slot a, health check fails, marked bad, restarts by itself
//	boot 6, v2:  slot b, /api/update reports the fallback and why; wallet unlocked; the
//	             server hears of the rollback, pauses v3's rollout, and the box does not
//	             install v3 again
//
// It logs (and writes to $ANYA_ARTIFACTS/ota-figures.txt) the bundle size, the install
// throughput against a plain sequential write of the same bytes to the same disk in the
// same run, and the time from the upload to the commit.
func TestOTAUpdates(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	requireTool(t, "swtpm")
	dir := t.TempDir()
	ota := newOTAFixture(t, dir)
	figures := &strings.Builder{}
	note := func(format string, args ...any) {
		t.Helper()
		s := fmt.Sprintf(format, args...)
		t.Log(s)
		figures.WriteString(s + "\n")
	}
	t.Cleanup(func() {
		if d := os.Getenv("ANYA_ARTIFACTS"); d != "" {
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, "ota-figures.txt"), []byte(figures.String()), 0o644)
		}
	})
	note("bundles: v2 %s (payloads %s, metadata %d bytes), v3 %s, v0 %s",
		mibs(ota.v2.size), mibs(ota.v2.payloadBytes), ota.v2.metadataBytes, mibs(ota.v3.size), mibs(ota.v0.size))

	b := newBox(t, 30*time.Minute)
	mon := filepath.Join(shortTemp(t), "mon.sock")
	tpmState := filepath.Join(dir, "tpm")
	var sw *qemu.Swtpm
	boot := func() {
		t.Helper()
		var err error
		if sw, err = qemu.StartSwtpm(tpmState); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sw.Stop)
		b.start(qemu.Config{Image: ota.img, TPM: sw.Socket, Monitor: mon})
	}
	powerOff := func() {
		t.Helper()
		b.stop()
		sw.Stop()
	}
	const password = "admin password for the ota test"
	login := func() *client {
		t.Helper()
		c := b.client()
		if code, out := c.do("POST", "/api/login", map[string]string{"password": password}); code != 200 {
			t.Fatalf("login: %d %v", code, out)
		}
		return c
	}
	walletUnlocked := func(c *client) {
		t.Helper()
		if code, st := c.do("GET", "/api/wallet", nil); code != 200 || st["state"] != "unlocked" || st["protection"] != "tpm" {
			t.Fatalf("wallet: %d %v, want unlocked by the TPM", code, st)
		}
	}

	// Boot 1, v1: setup, a TPM wallet, the refusals.
	before := slotDigests(t, ota.img)
	boot()
	b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": password}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	code, out := c.do("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandonMnemonic, "protection": "tpm", "recovery": "a long recovery passphrase"})
	if code != 200 {
		t.Fatalf("wallet setup: %d %v", code, out)
	}
	walletUnlocked(c)
	st := updateState(t, c)
	if st["version"] != "1.0.0" || st["slot"] != "a" || st["can_install"] != true {
		t.Fatalf("v1 before any update: %v", st)
	}
	for _, tc := range []struct {
		name, bundle, code string
	}{
		{"older v0", ota.v0.tar, "rollback"},
		{"tampered v2", ota.tampered, "payload-mismatch"},
	} {
		code, out, err := c.upload(tc.bundle)
		if err != nil {
			t.Fatalf("upload %s: %v", tc.name, err)
		}
		msg, _ := out["error"].(string)
		att := lastAttempt(updateState(t, c))
		note("refused %s: HTTP %d, code %v: %s (history: %v)", tc.name, code, att["code"], msg, att["text"])
		if code != http.StatusUnprocessableEntity || att["result"] != "refused" || !strings.Contains(msg, "Nothing was written") {
			t.Fatalf("%s: %d %v (last attempt %v), want 422 refused", tc.name, code, out, att)
		}
		if att["code"] != tc.code {
			t.Errorf("%s refused with code %v, want %s", tc.name, att["code"], tc.code)
		}
	}
	powerOff()
	if after := slotDigests(t, ota.img); !slotsEqual(before, after) {
		t.Fatalf("a refused bundle changed the slots:\nbefore %v\nafter  %v", before, after)
	}

	// Boot 2, v1: power cut while v2 is written into slot b.
	boot()
	_, idx := b.waitFor(qemu.ReadyLine, 0)
	c = login()
	uploadDone := make(chan struct{})
	go func() { defer close(uploadDone); c.upload(ota.v2.tar) }() // ends with the VM
	_, idx = b.waitFor(regexp.MustCompile(`installing update`), idx)
	// The slot write has begun once slot b's boot entry is gone from the disk (the agent
	// removes it, and syncs, first); cut the power once 1 MiB more reached the disk.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		names, err := image.ListESPDir(ota.img, "/loader/entries")
		if err == nil && len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "anya-b") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the install did not disable slot b in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	w0 := diskWrites(t, mon)
	for diskWrites(t, mon) < w0+1<<20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	written := diskWrites(t, mon) - w0
	powerOff()
	<-uploadDone
	if strings.Contains(b.console(), "update installed") {
		t.Fatal("the power cut came after the switch, not during the slot write")
	}
	// The ESP was mounted read-write by the guest when the power went: go-diskfs may not
	// read it (the firmware and the kernel do; the next boot is the test).
	entries, err := image.ListESPDir(ota.img, "/loader/entries")
	note("power cut during the slot write, %s written after slot b's entry was removed; boot entries left: %v (%v)", mibs(written), entries, err)
	if slices.ContainsFunc(entries, func(n string) bool { return strings.HasPrefix(n, "anya-b") }) {
		t.Fatalf("slot b still has a boot entry during its write: %v", entries)
	}
	if err != nil {
		saveESP(t, ota.img)
	}

	// Boot 3, v1: the box is on slot a; the attempt is reported; the update is retried.
	boot()
	_, idx = b.waitFor(qemu.ReadyLine, 0)
	c = login()
	walletUnlocked(c)
	st = updateState(t, c)
	last := lastAttempt(st)
	note("after the power cut: slot %v, version %v, last attempt %v/%v: %v", st["slot"], st["version"], last["result"], last["code"], last["text"])
	if st["slot"] != "a" || st["version"] != "1.0.0" || last["version"] != "2.0.0" || last["result"] != "failed" || last["code"] != "interrupted" {
		t.Fatalf("after the power cut during the write: %v", st)
	}
	plain := c.benchWrite(t, ota.v2.payloads)
	fl := startFleet(t, ota)
	pct := 100.0
	strict := &fleetserver.Policy{FailureThreshold: 0.5, MinAttempts: 1}
	if _, err := fl.admin.AddRelease(context.Background(), fleetserver.AddRelease{Channel: "stable", Dir: "v2", Percent: &pct, Policy: strict}); err != nil {
		t.Fatal(err)
	}
	tok, err := fl.admin.CreateToken(context.Background(), fleetserver.TokenRequest{Label: "ota test"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out = c.do("POST", "/api/update/fleet", map[string]any{"url": fl.guestURL, "token": tok.Secret})
	if code != 200 || out["attestation"] != "tpm" {
		t.Fatalf("enroll: %d %v, want a TPM-held device key", code, out)
	}
	device, _ := out["device_id"].(string)
	b.waitFor(regexp.MustCompile(`installing the release the fleet server offers`), idx)
	_, idx = b.waitFor(goodbye, idx)
	uploaded := time.Since(start)

	// Boot 4, v2: the trial commits.
	st = waitUpdate(t, b, password, 10*time.Minute, func(st map[string]any) bool {
		l := lastAttempt(st)
		return st["slot"] == "b" && l["version"] == "2.0.0" && l["result"] == "committed"
	})
	committed := time.Since(start)
	c = login()
	walletUnlocked(c)
	att := historyAttempt(t, c)
	installSec := attemptSeconds(t, att, "started", "switched")
	d := fl.waitDevice(t, device, func(d fleetserver.Device) bool {
		return d.Report.Counter == 20 && d.Report.Target != nil && d.Report.Target.State == "committed"
	})
	note("fleet server: device %s (%s key) reports %s committed on slot %s", device[:12], d.Attestation, d.Report.Version, d.Report.Slot)
	for _, want := range []string{"TPM approved the boot state of the new slot", "PCR 4: kernel image", "PCR 9: initramfs", "PCR 12: "} {
		if !strings.Contains(b.console(), want) {
			t.Errorf("the console does not show the TPM approval of slot b (%q)", want)
		}
	}
	n := ota.v2.payloadBytes
	note("install of v2 (%s of payloads): %.1f s from the agent's start to the switch = %.2f MiB/s; "+
		"plain sequential write of the same %s to the same disk: %.1f s = %.2f MiB/s; install/plain throughput ratio %.2f",
		mibs(n), installSec, float64(n)/installSec/(1<<20), mibs(plain.Bytes), plain.Seconds,
		float64(plain.Bytes)/plain.Seconds/(1<<20), plain.Seconds/installSec*float64(n)/float64(plain.Bytes))
	note("guest SHA-256 over the same bytes in memory: %.1f s = %.1f MiB/s (the install hashes every byte three times: verify, stream, read back)",
		plain.HashSeconds, float64(plain.Bytes)/plain.HashSeconds/(1<<20))
	note("fleet update to v2: %.1f s from enrolling to the restart (check in, fetch, verify, write); enrolling to committed: %.1f s",
		uploaded.Seconds(), committed.Seconds())
	if st["version"] != "2.0.0" || st["previous"] != "1.0.0" {
		t.Fatalf("after the commit: %v", st)
	}

	// Still boot 4: the server offers v3; the box installs it; power cut right after the
	// switch.
	v3, err := fl.admin.AddRelease(context.Background(), fleetserver.AddRelease{Channel: "stable", Dir: "v3", Percent: &pct, Policy: strict})
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor(regexp.MustCompile(`update installed`), idx)
	powerOff()
	entries, _ = image.ListESPDir(ota.img, "/loader/entries")
	note("power cut right after the switch to v3: boot entries %v", entries)

	// Boot 5, v3 fails its health check; boot 6, back on v2 by itself.
	boot()
	start = time.Now()
	st = waitUpdate(t, b, password, 15*time.Minute, func(st map[string]any) bool {
		return st["slot"] == "b" && st["fallback"] != nil
	})
	c = login()
	walletUnlocked(c)
	last = lastAttempt(st)
	note("v3 rolled back in %.0f s after power on: %v; page: %v", time.Since(start).Seconds(), last["text"], st["fallback"])
	if st["version"] != "2.0.0" || last["version"] != "3.0.0" || last["result"] != "rolled-back" ||
		!strings.Contains(fmt.Sprint(last["detail"], last["reason"], st["fallback"]), "health") {
		t.Fatalf("after v3 failed: %v", st)
	}
	if !strings.Contains(b.console(), "made to fail its health check") {
		t.Error("the console does not show v3's failing health check")
	}
	d = fl.waitDevice(t, device, func(d fleetserver.Device) bool {
		return d.Report.Counter == 20 && d.Report.Target != nil && d.Report.Target.State == "rolled-back"
	})
	rel, err := fl.admin.Release(context.Background(), v3.ID)
	if err != nil {
		t.Fatal(err)
	}
	note("fleet server: the box reports %s %s (%q); v3's rollout is %s", d.Report.Target.Version, d.Report.Target.State, d.Report.LastError, rel.Release.Rollout.State)
	if rel.Release.Rollout.State != fleetserver.StatePaused {
		t.Errorf("v3 rollout was not paused after the rollback: %+v", rel.Release.Rollout)
	}
	// A few more check-ins: the box does not install v3 again by itself.
	mark := len(b.console())
	time.Sleep(3 * fl.poll)
	if strings.Contains(b.console()[mark:], "installing the release the fleet server offers") {
		t.Error("the box installed v3 again after it rolled back")
	}
	powerOff()
	entries, _ = image.ListESPDir(ota.img, "/loader/entries")
	if !slices.Contains(entries, "anya-a+0-1.conf") && !slices.ContainsFunc(entries, func(n string) bool { return strings.HasPrefix(n, "anya-a+0-") }) {
		t.Errorf("slot a (v3) not marked bad: %v", entries)
	}
}

const abandonMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

type otaBundle struct {
	tar                               string
	size, payloadBytes, metadataBytes int64
	payloads                          []byte // system, kernel, initrd: what an install writes
}

type otaFixture struct {
	dir                string
	root               string // the trusted root (keys/roots/1.root.json)
	img                string // v1, booted
	v0, v2, v3         otaBundle
	tampered           string
	anyadGood, anyadV3 string
}

// newOTAFixture builds the images and signs the bundles.
func newOTAFixture(t *testing.T, dir string) *otaFixture {
	t.Helper()
	repo, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "keys", "roots", "1.root.json")
	if _, err := os.Stat(root); err != nil {
		t.Fatal(err)
	}
	f := &otaFixture{dir: dir, root: root,
		anyadGood: buildAnyadFlags(t, filepath.Join(dir, "anyad"), "-X github.com/anya-edge/anya/appliance/services.benchAPI=1"),
		anyadV3: buildAnyadFlags(t, filepath.Join(dir, "anyad-v3"), "-X github.com/anya-edge/anya/appliance/services.benchAPI=1 "+
			"-X github.com/anya-edge/anya/appliance/services.failHealth=1"),
	}
	build := func(name, version string, counter int, anyad string) string {
		t.Helper()
		out := filepath.Join(dir, name+".img")
		_, err := image.Build(context.Background(), image.Config{
			Anyad: anyad, CacheDir: cacheDir(), Output: out, Version: version, Counter: counter,
			Epoch: 1767225600, TrustedRoot: root,
		})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		return out
	}
	f.img = build("v1", "1.0.0", 10, f.anyadGood)
	// Signed in this order, so v0's metadata is the oldest: it is refused for its release
	// counter (older than the running one), not for stale metadata.
	for _, r := range []struct {
		b       *otaBundle
		name    string
		version string
		counter int
		anyad   string
	}{
		{&f.v0, "v0", "0.9.0", 5, f.anyadGood},
		{&f.v2, "v2", "2.0.0", 20, f.anyadGood},
		{&f.v3, "v3", "3.0.0", 30, f.anyadV3},
	} {
		img := build(r.name, r.version, r.counter, r.anyad)
		*r.b = signSlot(t, repo, img, filepath.Join(dir, "releases", r.name), filepath.Join(dir, r.name+".tar"))
		os.Remove(img)
	}
	f.tampered = filepath.Join(dir, "v2-tampered.tar")
	tamperTar(t, f.v2.tar, f.tampered)
	return f
}

// buildAnyadFlags builds linux/amd64 anyad with extra -ldflags.
func buildAnyadFlags(t *testing.T, out, flags string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid= -X main.version=e2e-ota "+flags,
		"-o", out, "github.com/anya-edge/anya/appliance/cmd/anyad")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build anyad: %v\n%s", err, b)
	}
	return out
}

// signSlot signs slot a of img as anyactl release sign does.
func signSlot(t *testing.T, repo *publish.Repo, img, outDir, tarName string) otaBundle {
	t.Helper()
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var m image.Release
	if err := json.Unmarshal(sf.Release, &m); err != nil {
		t.Fatal(err)
	}
	system := make([]byte, sf.SystemSize)
	if _, err := fh.ReadAt(system, sf.SystemOffset); err != nil {
		t.Fatal(err)
	}
	bundle, err := repo.Sign(outDir, []publish.Release{{
		Arch: m.Arch, Version: m.Version, Counter: uint64(m.Counter),
		Payloads: map[release.Kind]io.Reader{
			release.KindKernel: bytes.NewReader(sf.Kernel), release.KindInitrd: bytes.NewReader(sf.Initrd),
			release.KindSystem: bytes.NewReader(system), release.KindRelease: bytes.NewReader(sf.Release),
		},
	}}, publish.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteTarFile(tarName); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tarName)
	if err != nil {
		t.Fatal(err)
	}
	payloads := slices.Concat(system, sf.Kernel, sf.Initrd)
	return otaBundle{tar: tarName, size: fi.Size(), payloadBytes: bundle.PayloadBytes, metadataBytes: bundle.MetadataBytes, payloads: payloads}
}

// tamperTar copies the bundle tar src to dst with one byte of its largest file (the system
// image) flipped: the signed metadata stays valid, the payload's hash does not match.
func tamperTar(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var largest string
	var size int64
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Size > size {
			largest, size = h.Name, h.Size
		}
	}
	in.Seek(0, io.SeekStart)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == largest {
			body[len(body)/2] ^= 0x01
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// slotDigests hashes both slot partitions and the ESP's boot files and entries of img.
func slotDigests(t *testing.T, img string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range []string{"a", "b"} {
		sf, err := image.ReadSlot(img, s)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"kernel": sf.Kernel, "initrd": sf.Initrd, "release": sf.Release} {
			out[s+"/"+name] = sha(b)
		}
		out[s+"/partition"] = partitionSHA(t, img, s)
	}
	entries, err := image.ListESPDir(img, "/loader/entries")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(entries)
	out["entries"] = strings.Join(entries, ",")
	return out
}

func slotsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// partitionSHA hashes the whole partition of slot s (not only its squashfs).
func partitionSHA(t *testing.T, img, s string) string {
	t.Helper()
	off, size, err := image.SlotPartition(img, s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, off, size))
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

func mibs(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// shortTemp is a temporary directory with a short path, for unix sockets.
func shortTemp(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ota")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

var wrBytes = regexp.MustCompile(`wr_bytes=(\d+)`)

// diskWrites returns the bytes the guest wrote to its disk (QEMU's block statistics).
func diskWrites(t *testing.T, mon string) int64 {
	t.Helper()
	out, err := qemu.Monitor(mon, "info blockstats")
	if err != nil {
		t.Fatal(err)
	}
	m := wrBytes.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no wr_bytes in %q", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// upload posts a bundle tar to the update API; transport errors are returned (the VM may be
// powered off on purpose).
func (c *client) upload(name string) (int, map[string]any, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	req, _ := http.NewRequest("POST", c.base+"/api/update/upload", f)
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("X-CSRF-Token", c.csrf)
	hc := *c.hc
	hc.Timeout = 20 * time.Minute
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer %q: %w", raw, err)
	}
	return resp.StatusCode, out, nil
}

type benchResult struct {
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	HashSeconds float64 `json:"hash_seconds"`
}

// benchWrite asks the test build of anyad for a plain sequential write of b to the disk.
func (c *client) benchWrite(t *testing.T, b []byte) benchResult {
	t.Helper()
	resp, err := c.hc.Post(c.base+"/debug/bench/slotwrite", "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r benchResult
	if resp.StatusCode != 200 || json.Unmarshal(raw, &r) != nil || r.Bytes != int64(len(b)) {
		t.Fatalf("bench write: %s %s", resp.Status, raw)
	}
	return r
}

func updateState(t *testing.T, c *client) map[string]any {
	t.Helper()
	code, st := c.do("GET", "/api/update", nil)
	if code != 200 {
		t.Fatalf("GET /api/update: %d %v", code, st)
	}
	return st
}

func lastAttempt(st map[string]any) map[string]any {
	h, _ := st["history"].([]any)
	if len(h) == 0 {
		return map[string]any{}
	}
	a, _ := h[0].(map[string]any)
	return a
}

func attemptSeconds(t *testing.T, att map[string]any, from, to string) float64 {
	t.Helper()
	a, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(att[from]))
	b, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(att[to]))
	if err1 != nil || err2 != nil {
		t.Fatalf("attempt times %v %v: %v %v", att[from], att[to], err1, err2)
	}
	return b.Sub(a).Seconds()
}

// waitUpdate polls /api/update (logging in again whenever the box restarted) until cond
// holds, through the box's restarts.
func waitUpdate(t *testing.T, b *testBox, password string, timeout time.Duration, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		if st, err := pollUpdate(b.port, password); err == nil {
			last = st
			if cond(st) {
				return st
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("update state not reached in %s; last seen: %v", timeout, last)
	return nil
}

var pollMu sync.Mutex

func pollUpdate(port int, password string) (map[string]any, error) {
	pollMu.Lock()
	defer pollMu.Unlock()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	body, _ := json.Marshal(map[string]string{"password": password})
	resp, err := hc.Post(base+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("login: %s", resp.Status)
	}
	resp, err = hc.Get(base + "/api/update")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st, nil
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// saveESP keeps the ESP region of img as an artifact, for a look with fsck.vfat or mtools.
func saveESP(t *testing.T, img string) {
	d := os.Getenv("ANYA_ARTIFACTS")
	if d == "" {
		return
	}
	f, err := os.Open(img)
	if err != nil {
		return
	}
	defer f.Close()
	b := make([]byte, 200<<20)
	n, _ := io.ReadFull(f, b)
	os.WriteFile(filepath.Join(d, "ota-after-cut-head.img"), b[:n], 0o644)
}

// otaFleet is the fleet server of the update test, on the host's loopback.
type otaFleet struct {
	admin    *fleetserver.AdminClient
	guestURL string // the server as the guest reaches it
	poll     time.Duration
}

// startFleet runs the fleet server on the fixture's releases directory (v0, v2, v3 signed
// there) with a short check-in interval.
func startFleet(t *testing.T, ota *otaFixture) *otaFleet {
	t.Helper()
	root, err := os.ReadFile(ota.root)
	if err != nil {
		t.Fatal(err)
	}
	store, err := fleetserver.OpenBoltStore(filepath.Join(ota.dir, "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const token = "ota-test-admin-token-0123456789abcdef"
	fl := &otaFleet{poll: 5 * time.Second}
	srv, err := fleetserver.New(fleetserver.Config{Store: store, Root: root, Releases: filepath.Join(ota.dir, "releases"),
		AdminToken: token, Poll: fl.poll, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	fl.admin = &fleetserver.AdminClient{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Token: token}
	fl.guestURL = fmt.Sprintf("http://10.0.2.2:%d/", port)
	return fl
}

// waitDevice waits until the inventory's entry for device satisfies ok.
func (fl *otaFleet) waitDevice(t *testing.T, device string, ok func(fleetserver.Device) bool) fleetserver.Device {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		devs, err := fl.admin.Devices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if d.ID == device && ok(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet inventory: %+v", devs)
		}
		time.Sleep(time.Second)
	}
}

// historyAttempt returns the box's latest update attempt from GET /api/update/history.
func historyAttempt(t *testing.T, c *client) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", c.base+"/api/update/history?max=1", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) == 0 {
		t.Fatalf("update history: %v %v", out, err)
	}
	return out[0]
}
