package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/anya-edge/anya/appliance/update/slot"
)

// Paths on a running box.
const (
	// RunningRelease is the running release's manifest, from the initramfs.
	RunningRelease = "/etc/anya/release.json"
	// SystemDir is where PID 1 mounts the running slot's system partition.
	SystemDir = "/system"
)

// BoxConfig returns the parts of a Config that describe the running box: the running slot
// (kernel command line, LoaderEntrySelected), the boot disk (sysfs, the device mounted at
// /system), the ESP (mounted at slot.MountDir while in use), the running release and the
// trusted root shipped in the system slot. The caller adds DB, Log, Reboot and BeforeSwitch.
//
// Off a box (no anya.slot on the command line: a development run) it returns a Config
// without a Slot, with which the agent keeps records but never installs; a box whose disk
// cannot be made out is an error.
func BoxConfig(log *slog.Logger) (Config, error) {
	var cfg Config
	if r, err := ReadRunning(RunningRelease); err == nil {
		cfg.Running = r
	} else if log != nil {
		log.Warn("running release unknown", "err", err)
	}
	booted, err := slot.DetectBooted("/proc/cmdline", slot.EFIVarsDir)
	if errors.Is(err, slot.ErrUnknownSlot) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("update agent: %w", err)
	}
	if booted.Warning != "" && log != nil {
		log.Warn("running slot: " + booted.Warning)
	}
	cfg.Slot, cfg.LoaderEntry = booted.Slot, booted.Entry
	sysDev, _ := slot.SystemDevice() // "" when /system is not mounted: found by label then
	if cfg.Layout, err = slot.Discover("/sys", "/dev", sysDev, booted.Slot); err != nil {
		return cfg, fmt.Errorf("update agent: %w", err)
	}
	cfg.OpenESP = slot.DeviceOpener(cfg.Layout.ESP, slot.MountDir, log)
	switch root, err := os.ReadFile(filepath.Join(SystemDir, slot.TrustedRootFile)); {
	case err == nil:
		cfg.TrustedRoot = root
	case !errors.Is(err, fs.ErrNotExist):
		return cfg, fmt.Errorf("update agent: trusted root: %w", err)
	}
	return cfg, nil
}
