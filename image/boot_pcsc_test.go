package image_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/image/qemu"
)

// TestPCSCDaemonSeesUSBReader boots the image with QEMU's USB CCID smart-card reader attached:
// the system slot's pcscd (Debian's, with the CCID driver, supervised by PID 1) must find the
// reader, and the page must offer YubiKey protection. Then a second reader is plugged in while
// the box runs: PID 1 sees the kernel's uevent and restarts pcscd, which finds it. (QEMU
// emulates no PIV card, so the PIV applet itself is tested through pcscd + vpcd + an emulated
// card in hsm/piv.)
func TestPCSCDaemonSeesUSBReader(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	res := buildImage(t, filepath.Join(t.TempDir(), "anya.img"))
	b := newBox(t, 4*time.Minute)
	monitor := filepath.Join(t.TempDir(), "monitor.sock")
	b.start(qemu.Config{Image: res.Path, Monitor: monitor, Extra: []string{"-device", "qemu-xhci,id=xhci", "-device", "usb-ccid,bus=xhci.0"}})
	b.waitFor(regexp.MustCompile(`pcsc-lite .* daemon ready`), 0)
	b.waitFor(regexp.MustCompile(`Reader supports 1 slot`), 0)
	b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	if code, out := c.do("POST", "/api/setup", map[string]string{"password": "a long enough password"}); code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	code, st := c.do("GET", "/api/wallet", nil)
	if code != 200 || !strings.Contains(fmt.Sprint(st["available"]), "piv") {
		t.Fatalf("wallet protections offered: %d %v", code, st)
	}
	_, status := c.do("GET", "/api/status", nil)
	if !strings.Contains(fmt.Sprint(status["services"]), "pcscd") {
		t.Fatalf("pcscd is not among the supervised services: %v", status["services"])
	}

	// Hot-plug a second reader.
	_, from := b.waitFor(regexp.MustCompile(`Reader supports 1 slot`), 0)
	if out, err := qemu.Monitor(monitor, "device_add usb-ccid,bus=xhci.0,id=second"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b.waitFor(regexp.MustCompile(`smart-card reader add`), from+1)
	b.waitFor(regexp.MustCompile(`restarting service.*pcscd`), from+1)
	_, n := b.waitFor(regexp.MustCompile(`pcsc-lite .* daemon ready`), from+1)
	// After the restart pcscd starts both readers.
	_, r := b.waitFor(regexp.MustCompile(`Reader supports 1 slot`), n+1)
	b.waitFor(regexp.MustCompile(`Reader supports 1 slot`), r+1)
}
