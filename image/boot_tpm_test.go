package image_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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
	port := freePort(t)
	var console bytes.Buffer
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	boot := func() (*qemu.VM, *qemu.Swtpm) {
		t.Helper()
		sw, err := qemu.StartSwtpm(tpmState)
		if err != nil {
			t.Fatal(err)
		}
		vm, err := qemu.Start(qemu.Config{Image: res.Path, HostPort: port, TPM: sw.Socket, Console: lockedWriter{&mu, &console}})
		if err != nil {
			sw.Stop()
			t.Fatal(err)
		}
		return vm, sw
	}
	dump := func() string { mu.Lock(); defer mu.Unlock(); return console.String() }
	newClient := func() *client {
		jar, _ := cookiejar.New(nil)
		c := &client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), hc: &http.Client{Jar: jar, Timeout: 2 * time.Minute}}
		c.waitHTTP(time.Minute)
		return c
	}
	const password = "admin password for the tpm test"
	walletState := func(c *client) map[string]any {
		t.Helper()
		code, out := c.do("GET", "/api/wallet", nil)
		if code != 200 {
			t.Fatalf("GET /api/wallet: %d %v\n%s", code, out, dump())
		}
		return out
	}

	vm, sw := boot()
	defer func() { vm.Stop(); sw.Stop() }()
	_, idx, _, err := vm.WaitFor(ctx, qemu.ReadyLine, 0)
	if err != nil {
		t.Fatalf("%v\n%s", err, dump())
	}
	c := newClient()
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": password}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	if avail := fmt.Sprint(walletState(c)["available"]); !strings.Contains(avail, "tpm") {
		t.Fatalf("the box does not offer TPM protection (available: %s)\n%s", avail, dump())
	}
	code, out := c.do("POST", "/api/wallet/setup", map[string]string{
		"mnemonic":   "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
		"protection": "tpm", "recovery": "a long recovery passphrase",
	})
	if code != 200 {
		t.Fatalf("wallet setup: %d %v\n%s", code, out, dump())
	}
	if st := walletState(c); st["state"] != "unlocked" || st["protection"] != "tpm" || st["fingerprint"] != "73c5da0a" {
		t.Fatalf("wallet after setup: %v", st)
	}

	// Reboot through the API: the wallet opens by itself.
	if code, out := c.do("POST", "/api/reboot", nil); code != 200 {
		t.Fatalf("reboot: %d %v", code, out)
	}
	if _, _, _, err := vm.WaitFor(ctx, regexp.MustCompile(`goodbye`), idx+1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := vm.WaitFor(ctx, qemu.ReadyLine, idx+1); err != nil {
		t.Fatalf("%v\n%s", err, dump())
	}
	loginAndCheck := func() {
		t.Helper()
		c := newClient()
		if code, out := c.do("POST", "/api/login", map[string]string{"password": password}); code != 200 {
			t.Fatalf("login: %d %v", code, out)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			st := walletState(c)
			if st["state"] == "unlocked" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("wallet not unlocked by the TPM after boot: %v\n%s", st, dump())
			}
			time.Sleep(time.Second)
		}
	}
	loginAndCheck()

	// Power cycle: QEMU and swtpm stop; the TPM's state survives on disk.
	vm.Stop()
	sw.Stop()
	vm, sw = boot()
	mu.Lock()
	from := len(vm.Lines())
	mu.Unlock()
	if _, _, _, err := vm.WaitFor(ctx, qemu.ReadyLine, from); err != nil {
		t.Fatalf("%v\n%s", err, dump())
	}
	loginAndCheck()
	if n := strings.Count(dump(), "wallet unlocked by the TPM"); n != 2 {
		t.Fatalf("the console says the TPM unlocked the wallet %d times, want 2", n)
	}
}
