package image_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/image/qemu"
)

// TestTPMSealsAndUnlocksAtBoot boots the image with a software TPM attached, creates a wallet
// protected by the TPM through the API, and checks that after a reboot, and after a full
// power cycle, the box unlocks the wallet by itself.
func TestTPMSealsAndUnlocksAtBoot(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	requireTool(t, "swtpm")
	dir := t.TempDir()
	res := buildImage(t, filepath.Join(dir, "anya.img"))
	tpmState := filepath.Join(dir, "tpm")
	b := newBox(t, 10*time.Minute)
	var sw *qemu.Swtpm
	boot := func() {
		t.Helper()
		var err error
		if sw, err = qemu.StartSwtpm(tpmState); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sw.Stop)
		b.start(qemu.Config{Image: res.Path, TPM: sw.Socket})
	}
	const password = "admin password for the tpm test"
	walletState := func(c *client) map[string]any {
		t.Helper()
		code, out := c.do("GET", "/api/wallet", nil)
		if code != 200 {
			t.Fatalf("GET /api/wallet: %d %v", code, out)
		}
		return out
	}
	loginAndCheck := func() {
		t.Helper()
		c := b.client()
		if code, out := c.do("POST", "/api/login", map[string]string{"password": password}); code != 200 {
			t.Fatalf("login: %d %v", code, out)
		}
		if st := walletState(c); st["state"] != "unlocked" {
			t.Fatalf("wallet not unlocked by the TPM after boot: %v", st)
		}
	}

	boot()
	_, idx := b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": password}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	if avail := fmt.Sprint(walletState(c)["available"]); !strings.Contains(avail, "tpm") {
		t.Fatalf("the box does not offer TPM protection (available: %s)", avail)
	}
	code, out := c.do("POST", "/api/wallet/setup", map[string]string{
		"mnemonic":   "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
		"protection": "tpm", "recovery": "a long recovery passphrase",
	})
	if code != 200 {
		t.Fatalf("wallet setup: %d %v", code, out)
	}
	if st := walletState(c); st["state"] != "unlocked" || st["protection"] != "tpm" || st["fingerprint"] != "73c5da0a" {
		t.Fatalf("wallet after setup: %v", st)
	}

	// Reboot through the API: the services start again and the TPM opens the wallet.
	if code, out := c.do("POST", "/api/reboot", nil); code != 200 {
		t.Fatalf("reboot: %d %v", code, out)
	}
	b.waitFor(goodbye, idx+1)
	b.waitFor(qemu.ReadyLine, idx+1)
	loginAndCheck()

	// Power cycle: QEMU and swtpm stop; the TPM's state survives on disk.
	b.stop()
	sw.Stop()
	boot()
	b.waitFor(qemu.ReadyLine, 0)
	loginAndCheck()
	if n := strings.Count(b.console(), "wallet unlocked by the TPM"); n != 2 {
		t.Fatalf("the console says the TPM unlocked the wallet %d times, want 2", n)
	}
}
