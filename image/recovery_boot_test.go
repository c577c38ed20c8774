package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/anya-edge/anya/image/qemu"
)

// signImage signs slot a of a built image into a bundle directory with new keys, as
// anyactl release sign does, and returns the bundle and the trusted root file.
func signImage(t *testing.T, img string, version string, counter uint64) (string, string) {
	t.Helper()
	dir := t.TempDir()
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if _, err := keys.Sign(bundle, []publish.Release{{Arch: "amd64", Version: version, Counter: counter,
		Payloads: map[release.Kind]io.Reader{release.KindRelease: bytes.NewReader(sf.Release), release.KindKernel: bytes.NewReader(sf.Kernel),
			release.KindInitrd: bytes.NewReader(sf.Initrd), release.KindSystem: io.NewSectionReader(f, sf.SystemOffset, sf.SystemSize)}}},
		publish.SignOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, keys.Root(), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle, root
}

// TestRecoveryStickReinstallsBlankDisk boots the recovery stick (qemu-xhci + usb-storage)
// in front of a blank internal disk, reinstalls the firmware through the recovery page, then
// boots the internal disk alone: it starts with the setup wizard. Then it sets the box up,
// makes a USB reset token, asks for a factory reset through the API, and once the box is
// back at the wizard scans every byte of the disk for the box's name and the token's hash:
// none is left, and the firmware is still there.
func TestRecoveryStickReinstallsBlankDisk(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	res := buildImage(t, filepath.Join(dir, "anya.img"))
	bundle, root := signImage(t, res.Path, res.Release.Version, uint64(res.Release.Counter))
	stick, err := image.BuildRecovery(context.Background(), image.RecoveryConfig{Bundle: bundle, TrustedRoot: root,
		CacheDir: cacheDir(), Output: filepath.Join(dir, "stick.img"), BackupSpace: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovery stick: %d MiB, bundle %.1f MiB", stick.Size>>20, float64(stick.BundleBytes)/(1<<20))
	internal := filepath.Join(dir, "internal.img")
	if err := os.WriteFile(internal, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(internal, 1<<30); err != nil {
		t.Fatal(err)
	}

	b := newBox(t, 12*time.Minute)
	b.start(qemu.Config{Image: internal, MemoryMB: 768, Extra: []string{
		"-device", "qemu-xhci,id=xhci",
		"-drive", "if=none,id=stick,format=raw,file=" + stick.Path,
		"-device", "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=1",
	}})
	line, _ := b.waitFor(qemu.ReadyLine, 0)
	t.Logf("recovery stick: page ready after %.1f s of QEMU", line.At.Seconds())
	if !strings.Contains(b.console(), "ANYA EDGE RECOVERY MODE") {
		t.Fatal("no recovery code banner on the console")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", b.port)
	hc := &http.Client{Timeout: 8 * time.Minute}
	resp, err := hc.Get(base + "/api/recovery")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("recovery status: %s", st)
	if !strings.Contains(string(st), `"disk":"/dev/vda"`) || !strings.Contains(string(st), `"bundle":"`+res.Release.Version+`"`) {
		t.Fatalf("recovery status: %s", st)
	}
	start := time.Now()
	resp, err = hc.PostForm(base+"/reinstall", url.Values{"data": {"keep"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("installed on both slots")) {
		t.Fatalf("reinstall: %d\n%s", resp.StatusCode, page)
	}
	t.Logf("reinstall through the page (TCG): %.1f s", took.Seconds())
	b.stop()

	// The stick is out: the internal disk boots, formats its data partition and shows the wizard.
	b.start(qemu.Config{Image: internal})
	line, idx := b.waitFor(qemu.ReadyLine, 0)
	t.Logf("internal disk: ready after %.1f s of QEMU", line.At.Seconds())
	b.waitFor(regexp.MustCompile(`data partition formatted`), 0)
	c := b.client()
	if code, out := c.do("GET", "/api/status", nil); code != http.StatusConflict {
		t.Fatalf("reinstalled box: /api/status = %d %v, want 409 (setup required)", code, out)
	}

	// Factory reset: set the box up with a name to look for, make a USB reset token, reset
	// through the API, and scan the whole disk for what the box held.
	const password, name = "correct horse battery staple", "zq7-marker-box"
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": password, "name": name}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	code, tok := c.do("POST", "/api/reset/token", nil)
	token, _ := tok["token"].(string)
	if code != 200 || token == "" {
		t.Fatalf("reset token: %d %v", code, tok)
	}
	sum := sha256.Sum256([]byte(strings.ToUpper(strings.ReplaceAll(token, "-", ""))))
	tokenHash := hex.EncodeToString(sum[:])
	if code, out := c.do("POST", "/api/reset", map[string]string{"password": password, "confirm": "erase this box"}); code != 200 {
		t.Fatalf("factory reset: %d %v", code, out)
	}
	start = time.Now()
	b.waitFor(goodbye, idx+1)
	b.waitFor(regexp.MustCompile(`factory reset done`), idx+1)
	line, _ = b.waitFor(qemu.ReadyLine, idx+1)
	t.Logf("factory reset: back at the wizard %.1f s after the request (TCG)", time.Since(start).Seconds())
	c = b.client()
	if code, out := c.do("GET", "/api/status", nil); code != http.StatusConflict {
		t.Fatalf("after the factory reset: /api/status = %d %v, want 409 (setup required)", code, out)
	}
	b.stop()
	disk, err := os.ReadFile(internal)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{name, tokenHash} {
		if i := bytes.Index(disk, []byte(secret)); i >= 0 {
			t.Errorf("the disk still holds %q at byte %d after the factory reset", secret, i)
		}
	}
	if sf, err := image.ReadSlot(internal, "a"); err != nil || sf.SystemSize == 0 {
		t.Errorf("the firmware did not survive the factory reset: %v", err)
	}
}
