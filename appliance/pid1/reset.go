package pid1

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/appliance/kmod"
	"github.com/anya-edge/anya/appliance/recovery/reset"
	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/appliance/uevent"
	"golang.org/x/sys/unix"
)

// resetIfRequested carries out a factory reset the services requested (reset.Request, after
// the admin password and the typed confirmation, or a valid request on a USB stick) before
// anything opens the data: every file is overwritten, the partition zeroed and formatted
// again, and mounted empty. The firmware is not touched; the services start with the setup
// wizard. It reports whether the partition was erased.
func (p *init1) resetIfRequested(dev string) bool {
	if !reset.Pending(DataDir) {
		return false
	}
	p.log.Warn("FACTORY RESET requested: erasing the data partition", "dev", dev)
	res, err := reset.Erase(reset.EraseOptions{DataDir: DataDir, Device: dev, Label: LabelData, Log: p.log,
		Unmount: func() error { unix.Sync(); return unix.Unmount(DataDir, 0) }})
	if err != nil {
		p.log.Error("factory reset failed", "err", err)
	} else {
		p.log.Warn("factory reset done: the box starts with the setup wizard", "files", res.FilesOverwritten,
			"bytes", res.BytesZeroed, "took", res.Took.Round(time.Millisecond))
	}
	if err := datapart.Mount(dev, DataDir); err != nil && !errors.Is(err, unix.EBUSY) {
		p.log.Error("mount the data partition after the reset", "err", err)
	}
	return err == nil
}

// watchSticks mounts the box's USB sticks (ANYA-BACKUP, ANYA-RECOVERY) when they are
// plugged in, and present at start, under usbstick.MountRoot, where the backup scheduler
// finds them; and it acts on a factory-reset request found on one (see package reset).
func (p *init1) watchSticks(ctx context.Context, dataDir string, loader *kmod.Loader) {
	var mu sync.Mutex
	mounted := map[string]string{} // device → directory
	ignored := map[string]bool{}   // USB devices already reported as not ours
	add := func(dev, partname string) {
		if !usbstick.OnUSB(dev) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, done := mounted[dev]; done || ignored[dev] {
			return
		}
		label, err := usbstick.Label(dev, partname)
		which, ok := usbstick.Ours(label)
		if err != nil || !ok {
			ignored[dev] = true
			p.log.Info("USB storage ignored: not labelled "+usbstick.LabelBackup+" or a recovery stick", "dev", dev, "label", label, "err", err)
			return
		}
		dir, err := usbstick.Mount(dev, which)
		if err != nil {
			p.log.Warn("USB stick", "err", err)
			return
		}
		mounted[dev] = dir
		os.MkdirAll(filepath.Join(dir, usbstick.BackupsDir), 0o700)
		p.log.Info("USB stick mounted", "label", which, "dev", dev, "dir", dir)
		switch err := reset.CheckRequest(dir, dataDir); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			p.log.Warn("factory reset request on the USB stick refused", "err", err)
		default:
			p.log.Warn("FACTORY RESET requested on a USB stick with this box's reset token: restarting to erase the data partition")
			os.Rename(filepath.Join(dir, reset.RequestFile), filepath.Join(dir, reset.RequestFile+".done"))
			if err := reset.Request(dataDir, "request file on a USB stick"); err != nil {
				p.log.Error("factory reset", "err", err)
				return
			}
			p.request(actReboot)
		}
	}
	// Sticks present at start sent their events before anyone listened, and a stick whose
	// disk driver is loaded only now (sd_mod, by the events below) may appear between two
	// events: look at the block devices at start and every few seconds.
	scan := func() {
		uevents, _ := filepath.Glob("/sys/class/block/*/uevent")
		for _, u := range uevents {
			b, err := os.ReadFile(u)
			if err != nil {
				continue
			}
			env := map[string]string{"SUBSYSTEM": "block"}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					env[k] = v
				}
			}
			if dev, ok := usbstick.BlockAdded(uevent.Event{Action: "add", Env: env}); ok && !strings.HasPrefix(env["DEVNAME"], "loop") {
				add(dev, env["PARTNAME"])
			}
		}
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			// Devices that appeared after the boot's coldplug and before the listener below
			// (a stick's SCSI disk, whose driver sd_mod only its own event would load): for
			// the first half minute, when that can happen.
			if loader != nil && i < 6 {
				if loaded, _ := loader.Coldplug("/sys"); len(loaded) > 0 {
					p.log.Info("drivers loaded for new devices", "modules", strings.Join(loaded, " "))
				}
			}
			scan()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	err := uevent.Listen(ctx, func(e uevent.Event) {
		// Without udevd, a device plugged in later (a USB stick's storage interface) gets its
		// driver here.
		if alias := e.Env["MODALIAS"]; e.Action == "add" && alias != "" && loader != nil {
			go func() {
				for _, m := range loader.Match(alias) {
					if err := loader.Load(m); err != nil {
						p.log.Warn("module", "err", err)
					} else {
						p.log.Debug("driver loaded for a new device", "module", m, "modalias", alias)
					}
				}
			}()
		}
		if dev, ok := usbstick.BlockAdded(e); ok {
			go add(dev, e.Env["PARTNAME"])
		}
		if dev, ok := usbstick.BlockRemoved(e); ok {
			mu.Lock()
			delete(ignored, dev)
			if dir, ok := mounted[dev]; ok {
				usbstick.Unmount(dir)
				delete(mounted, dev)
				p.log.Info("USB stick removed", "dir", dir)
			}
			mu.Unlock()
		}
	})
	if err != nil {
		p.log.Warn("USB sticks: device events", "err", err)
	}
}
