package pid1

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/appliance/kmod"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/slot"
	"golang.org/x/sys/unix"
)

// Recovery mode (see package appliance/recovery/rescue).
const (
	// EnvRecoveryCode passes the one-time recovery code to the recovery page's process; it is
	// printed on the console only, never into the log ring (which the page exports).
	EnvRecoveryCode = "ANYA_RECOVERY_CODE"
	// EnvRecoveryReason says why the box is in recovery mode.
	EnvRecoveryReason = "ANYA_RECOVERY_REASON"
	// RecoveryStickDir is where the recovery stick's files partition is mounted.
	RecoveryStickDir = "/run/anya/usb/ANYA-RECOVERY"
	// RecoveryDataDir is where the recovery page mounts the internal data partition.
	RecoveryDataDir = "/run/anya/internal-data"
)

// recoveryReason says why this boot is a recovery boot, "" for a normal one: the kernel
// command line asks for it (the recovery stick's entry), or both slots of the internal disk
// have used up their tries (systemd-boot then still boots one of them, last).
func (p *init1) recoveryReason(params map[string]string) string {
	if params[rescue.ModeParam] == rescue.ModeValue {
		return "Started from the recovery stick."
	}
	if p.slot == "" {
		return ""
	}
	cfg, err := agent.BoxConfig(nil)
	if err != nil || cfg.Slot == "" {
		return ""
	}
	esp, err := slot.OpenFAT(cfg.Layout.ESP, false)
	if err != nil {
		return ""
	}
	defer esp.Close()
	cur, other, err := slotEntries(esp, cfg.Slot, cfg.LoaderEntry)
	if err != nil || cur == nil || other == nil {
		return ""
	}
	if cur.State() == slot.Bad && other.State() == slot.Bad {
		p.log.Error("BOTH SYSTEM SLOTS FAILED: starting the recovery page", "entry", cur.file, "other", other.file)
		return "Both system slots of the internal disk failed to start (" + cur.file + ", " + other.file + "). Insert a recovery stick to reinstall the firmware."
	}
	return ""
}

// prepareRecovery mounts what recovery mode needs: the stick's system partition at /system
// (its further kernel modules and trusted root) when the box booted from the stick, and the
// stick's files partition. The internal data partition is not mounted: the recovery page
// mounts it when an action needs it. It prints the recovery code on the console.
func (p *init1) prepareRecovery(console io.Writer, loader *kmod.Loader, code string) {
	fromStick := p.slot == ""
	// The stick's drivers, whatever the cold plug found when it ran: a USB disk appears only
	// after its host controller's driver has enumerated the bus.
	if loader != nil {
		for _, m := range []string{"xhci_pci", "ehci_pci", "usb_storage", "uas", "sd_mod"} {
			if loader.Known(m) {
				if err := loader.Load(m); err != nil {
					p.log.Warn("module", "err", err)
				}
			}
		}
	}
	if fromStick {
		// USB disks appear a few seconds after the drivers load.
		if dev, err := p.findPartition(rescue.LabelStickSystem, 20*time.Second); err != nil {
			p.log.Error("recovery stick: system partition", "err", err)
		} else if err := os.MkdirAll(SystemDir, 0o755); err == nil {
			if err := unix.Mount(dev, SystemDir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
				p.log.Error("mount the recovery system", "dev", dev, "err", err)
			} else if loader != nil {
				if err := loader.AddDir(filepath.Join(SystemDir, "lib/modules", kernelRelease())); err == nil {
					go p.coldplug(loader)
				}
			}
		}
	}
	wait := 2 * time.Second
	if fromStick {
		wait = 20 * time.Second
	}
	if dev, err := p.findPartition(rescue.LabelStickFiles, wait); err != nil {
		p.log.Warn("no recovery stick", "err", err)
	} else if dir, err := usbstick.Mount(dev, usbstick.LabelRecovery); err != nil {
		p.log.Error("recovery stick: files", "err", err)
	} else {
		p.log.Info("recovery stick mounted", "dev", dev, "dir", dir)
	}
	os.MkdirAll(RecoveryDataDir, 0o755)
	// Straight to the console: the code must not reach the log ring.
	fmt.Fprintf(console, "\n\n"+
		"  ==========================================================\n"+
		"   ANYA EDGE RECOVERY MODE\n"+
		"   Open http://<this box>/ and enter the recovery code:\n\n"+
		"                         %s\n\n"+
		"   (valid until the box restarts)\n"+
		"  ==========================================================\n\n", code)
}

// recoveryCommand is the services process of recovery mode: the recovery page.
func (p *init1) recoveryCommand(self, network, reason, code string, params map[string]string) *exec.Cmd {
	args := []string{"recovery", "-listen", ListenAddr, "-network", network, "-scratch", VolatileDir,
		"-data", RecoveryDataDir}
	if _, err := os.Stat(RecoveryStickDir); err == nil {
		args = append(args, "-stick", RecoveryStickDir)
		if dev, err := datapart.Find("/sys", rescue.LabelStickESP); err == nil {
			args = append(args, "-stick-esp", dev)
		}
	}
	b, _ := os.ReadFile("/proc/cmdline")
	if c := installCmdline(string(b)); c != "" {
		args = append(args, "-cmdline", c)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), EnvRecoveryCode+"="+code, EnvRecoveryReason+"="+reason)
	return cmd
}

// installCmdline is the extra kernel command line of the entries a reinstall writes: the
// recovery entry's own parameters (network, static address, …) without those every slot
// entry sets itself (slot.KernelCmdline) and without the recovery mode.
func installCmdline(cmdline string) string {
	var out []string
	for _, f := range strings.Fields(cmdline) {
		k, _, _ := strings.Cut(f, "=")
		switch k {
		case "console", "loglevel", "panic", "BOOT_IMAGE", "initrd", rescue.ModeParam, slot.SlotParam:
			continue
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}
