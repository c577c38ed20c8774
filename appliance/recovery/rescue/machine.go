package rescue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/reset"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"golang.org/x/sys/unix"
)

// MachineConfig describes the box in recovery mode.
type MachineConfig struct {
	Reason string
	// StickDir is where the stick's files partition is mounted (read-write), "" without a
	// stick; StickESP is the stick's ESP device (systemd-boot is copied from it).
	StickDir, StickESP string
	// SystemDir is the recovery system (/system): its trusted root is preferred to the
	// stick's root.json, since it came inside the verified release.
	SystemDir string
	// Sysfs and DevDir are "/sys" and "/dev".
	Sysfs, DevDir string
	// Scratch is a tmpfs directory; DataMount where the internal data partition is mounted.
	Scratch, DataMount string
	// Network is the box's network, for restores ("" accepts the backup's).
	Network string
	// Cmdline is the extra kernel command line of the installed entries.
	Cmdline string
	// Logs returns the log lines to export; Reboot restarts the box (PID 1).
	Logs   func() []string
	Reboot func(ctx context.Context) error
	// CheckDB checks a database (ProcessChecker on the box).
	CheckDB func(path string) DBResult
	Log     *slog.Logger
}

// Machine is the Box of a real box in recovery mode.
type Machine struct {
	cfg         MachineConfig
	mu          sync.Mutex
	mounted, rw bool
}

// NewMachine returns the Box for cfg.
func NewMachine(cfg MachineConfig) *Machine {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sysfs == "" {
		cfg.Sysfs = "/sys"
	}
	if cfg.DevDir == "" {
		cfg.DevDir = "/dev"
	}
	return &Machine{cfg: cfg}
}

func (m *Machine) disk() (string, error) {
	name, err := FindInternalDisk(m.cfg.Sysfs)
	if err != nil {
		return "", err
	}
	return filepath.Join(m.cfg.DevDir, name), nil
}

// Status implements Box.
func (m *Machine) Status(ctx context.Context) (Status, error) {
	st := Status{Reason: m.cfg.Reason}
	if d, err := m.disk(); err == nil {
		st.Disk = d
		if f, err := os.Open(d); err == nil {
			st.DiskBytes, _ = f.Seek(0, 2)
			f.Close()
		}
	}
	if dev, err := datapart.Find(m.cfg.Sysfs, slot.LabelData); err == nil {
		c, _ := datapart.Probe(dev)
		st.Data = c.String()
		if c == datapart.Ext4 {
			if dir, err := m.mountData(false); err == nil {
				_, err := os.Stat(filepath.Join(dir, "anya.db"))
				st.HasDB = err == nil
			} else {
				st.Data = "unknown" // an ext4 that does not mount: maybe the owner's data
			}
		}
	}
	if esp, err := datapart.Find(m.cfg.Sysfs, slot.LabelESP); err == nil {
		// Mounted by the kernel: go-diskfs v1.9.4 pads what it reads from a FAT.
		if e, err := slot.MountESP(esp, filepath.Join(m.cfg.Scratch, "internal-esp"), false); err == nil {
			for _, s := range slot.Slots() {
				if b, err := e.ReadFile(slot.BootDir(s) + "/" + slot.ReleaseFile); err == nil {
					var r struct{ Version string }
					if json.Unmarshal(b, &r) == nil && r.Version != "" {
						st.Installed = r.Version
						break
					}
				}
			}
			e.Close()
		}
	}
	if m.cfg.StickDir != "" {
		if b, err := os.ReadFile(filepath.Join(m.cfg.StickDir, StickInfoFile)); err == nil {
			var info struct{ Version string }
			json.Unmarshal(b, &info)
			st.Bundle = info.Version
		}
		st.Backups, _ = ListBackups(filepath.Join(m.cfg.StickDir, BackupsDir))
	}
	return st, nil
}

// mountData mounts the internal data partition at DataMount, read-only unless rw (then a
// blank partition is formatted first), and returns the directory. A read-only mount is
// made writable again when rw is asked later.
func (m *Machine) mountData(rw bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	const flags = unix.MS_NOATIME | unix.MS_NOSUID | unix.MS_NODEV
	if m.mounted {
		if rw && !m.rw {
			if err := unix.Mount("", m.cfg.DataMount, "", unix.MS_REMOUNT|flags, ""); err != nil {
				return "", fmt.Errorf("remount the data partition writable: %w", err)
			}
			m.rw = true
		}
		return m.cfg.DataMount, nil
	}
	dev, err := datapart.Find(m.cfg.Sysfs, slot.LabelData)
	if err != nil {
		return "", err
	}
	c, err := datapart.Probe(dev)
	if err != nil {
		return "", err
	}
	if c == datapart.Blank && rw {
		if err := datapart.Format(dev, slot.LabelData); err != nil {
			return "", err
		}
	} else if c != datapart.Ext4 {
		return "", fmt.Errorf("the data partition is %s", c)
	}
	if err := os.MkdirAll(m.cfg.DataMount, 0o755); err != nil {
		return "", err
	}
	fl := uintptr(flags)
	if !rw {
		fl |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, m.cfg.DataMount, "ext4", fl, ""); err != nil {
		return "", fmt.Errorf("mount the data partition: %w", err)
	}
	m.mounted, m.rw = true, rw
	return m.cfg.DataMount, nil
}

func (m *Machine) unmountData() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mounted {
		return nil
	}
	unix.Sync()
	if err := unix.Unmount(m.cfg.DataMount, 0); err != nil {
		return fmt.Errorf("unmount the data partition: %w", err)
	}
	m.mounted = false
	return nil
}

func (m *Machine) trustedRoot() ([]byte, error) {
	if b, err := os.ReadFile(filepath.Join(m.cfg.SystemDir, slot.TrustedRootFile)); err == nil {
		return b, nil
	}
	b, err := os.ReadFile(filepath.Join(m.cfg.StickDir, RootFile))
	if err != nil {
		return nil, fmt.Errorf("no trusted root on the stick: %w", err)
	}
	return b, nil
}

// Reinstall implements Box.
func (m *Machine) Reinstall(ctx context.Context, keepData bool) (ReinstallResult, error) {
	if m.cfg.StickDir == "" {
		return ReinstallResult{}, errors.New("no recovery stick with a release")
	}
	d, err := m.disk()
	if err != nil {
		return ReinstallResult{}, err
	}
	root, err := m.trustedRoot()
	if err != nil {
		return ReinstallResult{}, err
	}
	espDev := m.cfg.StickESP
	if dev, err := datapart.Find(m.cfg.Sysfs, LabelStickESP); err == nil {
		espDev = dev // found again: the stick may have been pulled and put back
	}
	esp, err := slot.MountESP(espDev, filepath.Join(m.cfg.Scratch, "stick-esp"), false)
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("the stick's boot loader: %w", err)
	}
	efi, err := esp.ReadFile("EFI/BOOT/BOOTX64.EFI")
	esp.Close()
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("the stick's boot loader: %w", err)
	}
	f, err := os.Open(filepath.Join(m.cfg.StickDir, BundleFile))
	if err != nil {
		return ReinstallResult{}, fmt.Errorf("the stick's release: %w", err)
	}
	defer f.Close()
	if err := m.unmountData(); err != nil {
		return ReinstallResult{}, err
	}
	return Reinstall(ctx, ReinstallOptions{Disk: d, Bundle: release.NewTar(f), TrustedRoot: root, BootEFI: efi,
		KeepData: keepData, Cmdline: m.cfg.Cmdline, Scratch: m.cfg.Scratch, Log: m.cfg.Log})
}

// Restore implements Box.
func (m *Machine) Restore(ctx context.Context, file, mnemonic string, passphrase []byte) (*backup.Manifest, error) {
	if m.cfg.StickDir == "" || file == "" || strings.ContainsAny(file, `/\`) || strings.HasPrefix(file, ".") {
		return nil, errors.New("choose a backup on the stick")
	}
	path := filepath.Join(m.cfg.StickDir, BackupsDir, file)
	if _, err := CheckBackup(path, mnemonic, passphrase, m.cfg.Network); err != nil {
		return nil, err // refused before the internal disk is touched
	}
	dir, err := m.mountData(true)
	if err != nil {
		return nil, fmt.Errorf("the internal data partition: %w", err)
	}
	// A damaged database can crash bbolt: check it in a child process first.
	db := filepath.Join(dir, "anya.db")
	if _, err := os.Stat(db); err == nil && m.cfg.CheckDB != nil {
		if res := m.cfg.CheckDB(db); !res.Opens || res.Problem != "" {
			return nil, fmt.Errorf("the box's database is damaged (%s): erase the data partition first", res.Problem)
		}
	}
	start := time.Now()
	man, err := RestoreBackup(RestoreOptions{File: path, DBPath: db,
		Mnemonic: mnemonic, Passphrase: passphrase, Network: m.cfg.Network})
	if err == nil {
		unix.Sync()
		m.cfg.Log.Info("recovery: backup restored", "file", file, "took", time.Since(start).Round(time.Millisecond))
	}
	return man, err
}

// CheckData implements Box.
func (m *Machine) CheckData(ctx context.Context) DataReport {
	dev, err := datapart.Find(m.cfg.Sysfs, slot.LabelData)
	if err != nil {
		return DataReport{Advice: "The internal disk has no data partition: reinstall the firmware.", DBProblem: err.Error()}
	}
	dir, err := m.mountData(false)
	if err != nil {
		dir = ""
	}
	return CheckData(dev, dir, m.cfg.CheckDB)
}

// ExportLogs implements Box.
func (m *Machine) ExportLogs(ctx context.Context) (string, error) {
	if m.cfg.StickDir == "" {
		return "", errors.New("no stick to write to")
	}
	var lines []string
	if m.cfg.Logs != nil {
		lines = m.cfg.Logs()
	}
	st, _ := m.Status(ctx)
	rep := m.CheckData(ctx)
	name, err := ExportLogs(filepath.Join(m.cfg.StickDir, LogsDir), time.Now(), lines, map[string]any{"status": st, "data": rep})
	unix.Sync()
	return name, err
}

// EraseData implements Box: the factory reset of the internal data partition.
func (m *Machine) EraseData(ctx context.Context) error {
	dev, err := datapart.Find(m.cfg.Sysfs, slot.LabelData)
	if err != nil {
		return err
	}
	dir := ""
	if d, err := m.mountData(true); err == nil {
		dir = d
	}
	_, err = reset.Erase(reset.EraseOptions{DataDir: dir, Device: dev, Label: slot.LabelData, Log: m.cfg.Log,
		Unmount: m.unmountData})
	return err
}

// Reboot implements Box.
func (m *Machine) Reboot(ctx context.Context) error {
	m.unmountData()
	if m.cfg.Reboot == nil {
		return errors.New("restart is not available")
	}
	return m.cfg.Reboot(ctx)
}
