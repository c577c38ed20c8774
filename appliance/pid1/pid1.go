package pid1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/appliance/kmod"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/appliance/netconf"
	"github.com/anya-edge/anya/appliance/reaper"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/supervisor"
	"github.com/anya-edge/anya/appliance/uevent"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/board/watchdog"
	"golang.org/x/sys/unix"
)

// Paths and labels of the running system.
const (
	DataDir     = "/data"
	SystemDir   = "/system"
	VolatileDir = "/run/anya/volatile" // state directory when the data partition is unusable
	LabelData   = "anya-data"
	ListenAddr  = ":80"
	PCSCDaemon  = "/usr/sbin/pcscd" // from the system slot
)

// Env var through which PID 1 tells the services when it started (CLOCK_BOOTTIME, ns).
const EnvInitStart = "ANYA_INIT_BOOTTIME_NS"

// alwaysModules are loaded whatever hardware is present: the filesystems.
var alwaysModules = []string{"crc32c_generic", "squashfs", "ext4", "vfat", "nls_cp437", "nls_ascii", "efivarfs"}

// BootTime returns CLOCK_BOOTTIME: time since the kernel started, suspend included.
func BootTime() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano())
}

type action int

const (
	actReboot action = iota
	actPowerOff
)

// init is the state of PID 1.
type init1 struct {
	version string
	start   time.Duration
	log     *slog.Logger
	ring    *logring.Ring
	slot    string
	reaper  *reaper.Reaper
	sup     *supervisor.Supervisor
	net     *netconf.Manager

	mu   sync.Mutex
	data control.DataStatus

	shutdown chan action
	// trialExpired: the running slot's trial passed TrialDeadline uncommitted; the shutdown
	// marks it bad (failTrial).
	trialExpired atomic.Bool
}

// Main runs PID 1. It never returns: it ends in reboot(2).
func Main(version string) {
	start := BootTime()
	errMounts := mountKernelFilesystems()
	console := openConsole()
	ring := logring.New(2000)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(console, ring), &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := &init1{version: version, start: start, log: log, ring: ring, shutdown: make(chan action, 1)}
	log.Info("anyad starting as PID 1", "version", version, "boot_ms", start.Milliseconds())
	if errMounts != nil {
		log.Error("kernel filesystems", "err", errMounts)
	}
	p.run(console)
}

// openConsole makes /dev/console the standard streams if the kernel could not.
func openConsole() io.Writer {
	f, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return os.Stderr
	}
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			unix.Dup3(int(f.Fd()), fd, 0)
		}
	}
	return f
}

func (p *init1) run(console io.Writer) {
	params := readCmdline()
	p.slot = params["anya.slot"]
	hostname := params["anya.hostname"]
	if hostname == "" {
		hostname = "anya-edge"
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		p.log.Error("set hostname", "err", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.reaper = reaper.New(p.log)
	go p.reaper.Run(ctx)

	// Ctrl-Alt-Del then sends SIGINT to PID 1 (an orderly reboot) instead of an instant reset.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		p.log.Warn("ctrl-alt-del to SIGINT", "err", err)
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	go func() {
		for s := range sig {
			p.log.Info("signal received", "signal", s)
			if s == syscall.SIGUSR2 {
				p.request(actPowerOff)
			} else {
				p.request(actReboot)
			}
		}
	}()

	loader := p.loadModules()
	if err := mountEFIVars(); err != nil {
		p.log.Warn("efivars", "err", err)
	}
	p.mountSystem(loader)
	var dataDir, recoveryCode string
	recovery := p.recoveryReason(params)
	if recovery == "" {
		dataDir = p.mountData()
	} else {
		recoveryCode = rescue.NewCode()
		p.prepareRecovery(console, loader, recoveryCode)
		dataDir = VolatileDir
		os.MkdirAll(VolatileDir, 0o700)
	}

	static, err := netconf.LoadStatic(filepath.Join(dataDir, "network.json"))
	if err != nil {
		p.log.Error("network config", "err", err)
	}
	if s := params["anya.static"]; s != "" {
		if static, err = netconf.ParseStatic(s); err != nil {
			p.log.Error("anya.static", "err", err)
		}
	}
	p.net = &netconf.Manager{Log: p.log, Static: static}
	go p.net.Run(ctx)

	wd, err := watchdog.Open(watchdog.DefaultPath)
	switch {
	case err == nil:
		p.log.Info("hardware watchdog armed")
		go wd.Run(ctx, 5*time.Second)
	case !errors.Is(err, watchdog.ErrNone):
		p.log.Warn("watchdog", "err", err)
	}

	if err := p.serveControl(); err != nil {
		p.log.Error("control socket", "err", err)
	}

	// All services write into one pipe that PID 1 copies to the console and the ring; it is
	// never closed, so restarts leak nothing.
	pr, pw, err := os.Pipe()
	if err != nil {
		p.log.Error("service output pipe", "err", err)
		pr, pw = nil, os.Stderr
	} else {
		go io.Copy(io.MultiWriter(console, p.ring), pr)
	}
	self, _ := os.Executable()
	p.sup = &supervisor.Supervisor{Starter: p.reaper, Log: p.log}
	svcCtx, stopServices := context.WithCancel(ctx)
	supDone := make(chan struct{})
	var extra []supervisor.Service
	if _, err := os.Stat(PCSCDaemon); err == nil {
		// pcsc-lite's daemon, through which the signer reaches a YubiKey.
		extra = append(extra, supervisor.Service{Name: "pcscd", Command: func() *exec.Cmd {
			cmd := exec.Command(PCSCDaemon, "--foreground", "--info")
			cmd.Stdout, cmd.Stderr = pw, pw
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			return cmd
		}})
	}
	if len(extra) > 0 {
		// Without udevd, pcscd only sees the readers present when it starts: restart it when
		// a smart-card interface (a YubiKey) comes or goes.
		go func() {
			err := uevent.Listen(ctx, func(e uevent.Event) {
				if e.SmartCardReader() {
					p.log.Info("smart-card reader "+e.Action, "device", e.DevPath)
					p.sup.Restart("pcscd")
				}
			})
			if err != nil {
				p.log.Warn("device events", "err", err)
			}
		}()
	}
	go func() {
		defer close(supDone)
		p.sup.Run(svcCtx, append(extra, supervisor.Service{Name: "services", Command: func() *exec.Cmd {
			network := params["anya.network"]
			if network == "" {
				network = "mainnet"
			}
			if recovery != "" {
				cmd := p.recoveryCommand(self, network, recovery, recoveryCode, params)
				cmd.Stdout, cmd.Stderr = pw, pw
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				return cmd
			}
			cmd := exec.Command(self, "serve", "-data", dataDir, "-listen", ListenAddr, "-control", control.DefaultSocket, "-network", network)
			cmd.Stdout, cmd.Stderr = pw, pw
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", EnvInitStart, p.start.Nanoseconds()), "ANYA_SLOT="+p.slot)
			// A new session: a signal aimed at PID 1's group never hits the services.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			return cmd
		}})...)
	}()

	if recovery == "" {
		go p.watchSticks(ctx, dataDir, loader)
	}
	if p.slot != "" && recovery == "" {
		// A trial boot of an update must be committed by a deadline, even when the services
		// never get as far as their health check.
		go p.watchTrial(ctx)
	}

	act := <-p.shutdown
	p.log.Info("shutting down", "reboot", act == actReboot)
	stopServices()
	stopped := true
	select {
	case <-supDone:
	case <-time.After(20 * time.Second):
		stopped = false
		p.log.Error("services did not stop in time")
	}
	if p.trialExpired.Load() {
		if stopped {
			p.failTrial(dataDir)
		} else {
			// The database may still be in use: only the boot entry is marked.
			p.log.Error("services still running: marking the update's boot entry bad without its records")
			if cfg, err := agent.BoxConfig(p.log); err != nil {
				p.log.Error("mark the update bad", "err", err)
			} else if err := markEntryBad(cfg); err != nil {
				p.log.Error("mark the update bad", "err", err)
			}
		}
	}
	if act == actPowerOff && wd != nil {
		wd.Disarm()
	}
	p.finish(act)
}

func (p *init1) request(a action) {
	select {
	case p.shutdown <- a:
	default: // a shutdown is already under way
	}
}

// loadModules starts loading the drivers of the hardware present (in the background: some
// drivers wait for hardware while probing) and loads the filesystems before returning.
func (p *init1) loadModules() *kmod.Loader {
	loader, err := kmod.New(filepath.Join("/lib/modules", kernelRelease()))
	if err != nil {
		p.log.Error("kernel modules", "err", err)
		return nil
	}
	loader.Loaded = func(name string, took time.Duration) {
		p.log.Debug("module loaded", "module", name, "took", took.Round(time.Millisecond))
	}
	go p.coldplug(loader)
	var wg sync.WaitGroup
	for _, m := range alwaysModules {
		if !loader.Known(m) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loader.Load(m); err != nil {
				p.log.Warn("module", "err", err)
			}
		}()
	}
	wg.Wait()
	return loader
}

func (p *init1) coldplug(loader *kmod.Loader) {
	t := time.Now()
	loaded, errs := loader.Coldplug("/sys")
	for _, err := range errs {
		p.log.Warn("module", "err", err)
	}
	p.log.Info("device drivers loaded", "modules", strings.Join(loaded, " "), "took", time.Since(t).Round(time.Millisecond))
}

func kernelRelease() string {
	var uts unix.Utsname
	unix.Uname(&uts)
	return unix.ByteSliceToString(uts.Release[:])
}

// findPartition waits for a labelled partition: disk drivers probe asynchronously.
func (p *init1) findPartition(label string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		dev, err := datapart.Find("/sys", label)
		if err == nil || time.Now().After(deadline) {
			return dev, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *init1) mountSystem(loader *kmod.Loader) {
	if p.slot == "" {
		p.log.Warn("no anya.slot on the kernel command line; system partition not mounted")
		return
	}
	dev, err := p.findPartition("anya-"+p.slot, 10*time.Second)
	if err != nil {
		p.log.Error("system partition", "slot", p.slot, "err", err)
		return
	}
	os.MkdirAll(SystemDir, 0o755)
	if err := unix.Mount(dev, SystemDir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		p.log.Error("mount system partition", "dev", dev, "err", err)
		return
	}
	p.log.Info("system partition mounted", "slot", p.slot, "dev", dev)
	// The slot's Debian programs (pcscd) and their libraries appear at their usual paths.
	for _, l := range []struct{ link, target string }{
		{"/usr", SystemDir + "/usr"},
		{"/lib64", SystemDir + "/lib64"},
		{"/lib/x86_64-linux-gnu", SystemDir + "/lib/x86_64-linux-gnu"},
	} {
		if _, err := os.Stat(l.target); err != nil {
			continue
		}
		if err := os.Symlink(l.target, l.link); err != nil && !errors.Is(err, os.ErrExist) {
			p.log.Warn("link system directory", "link", l.link, "err", err)
		}
	}
	if loader == nil {
		return
	}
	if err := loader.AddDir(filepath.Join(SystemDir, "lib/modules", kernelRelease())); err != nil {
		p.log.Warn("system modules", "err", err)
		return
	}
	go p.coldplug(loader)
}

// mountData finds, checks, formats if blank, and mounts the data partition. It returns the
// directory the services keep their state in: /data, or a volatile directory when the
// partition is missing or damaged (the page then says so).
func (p *init1) mountData() string {
	st := control.DataStatus{Path: DataDir}
	defer func() {
		p.mu.Lock()
		p.data = st
		p.mu.Unlock()
	}()
	volatile := func(state, detail string) string {
		st.State, st.Detail, st.Path = state, detail, VolatileDir
		p.log.Error("DATA PARTITION UNUSABLE: state is kept in memory only", "state", state, "detail", detail)
		os.MkdirAll(VolatileDir, 0o700)
		return VolatileDir
	}
	dev, err := p.findPartition(LabelData, 10*time.Second)
	if err != nil {
		return volatile(control.DataMissing, err.Error())
	}
	st.Device = dev
	content, err := datapart.Probe(dev)
	if err != nil {
		return volatile(control.DataDamaged, err.Error())
	}
	switch content {
	case datapart.Blank:
		p.log.Info("data partition is blank, formatting", "dev", dev)
		t := time.Now()
		if err := datapart.Format(dev, LabelData); err != nil {
			return volatile(control.DataDamaged, err.Error())
		}
		p.log.Info("data partition formatted", "took", time.Since(t).Round(time.Millisecond))
		st.State = control.DataFormatted
	case datapart.Ext4:
		st.State = control.DataOK
	default:
		return volatile(control.DataDamaged, fmt.Sprintf("%s holds data that is not an ext4 filesystem; it was left untouched", dev))
	}
	if err := datapart.Mount(dev, DataDir); err != nil {
		return volatile(control.DataDamaged, err.Error()+"; the partition was left untouched")
	}
	p.log.Info("data partition mounted", "dev", dev, "state", st.State)
	if p.resetIfRequested(dev) {
		st.State = control.DataFormatted
	}
	return DataDir
}

func (p *init1) serveControl() error {
	os.MkdirAll(filepath.Dir(control.DefaultSocket), 0o755)
	os.Remove(control.DefaultSocket)
	ln, err := net.Listen("unix", control.DefaultSocket)
	if err != nil {
		return err
	}
	os.Chmod(control.DefaultSocket, 0o600)
	go (&http.Server{Handler: control.Handler(p), ReadHeaderTimeout: 5 * time.Second}).Serve(ln)
	return nil
}

// Status implements control.System.
func (p *init1) Status(ctx context.Context) (control.Status, error) {
	name, _ := os.Hostname()
	p.mu.Lock()
	data := p.data
	p.mu.Unlock()
	data.TotalBytes, data.FreeBytes, _ = control.DiskUsage(data.Path)
	links := control.Links()
	methods := p.net.Methods()
	for i := range links {
		links[i].Method = methods[links[i].Name]
	}
	services := p.sup.Status()
	procs := map[string]int{"anyad (pid 1)": 1}
	for _, s := range services {
		name := s.Name
		if name == "services" {
			name = "anyad services"
		}
		procs[name] = s.PID
	}
	return control.Status{
		Version: p.version, Mode: "appliance", Slot: p.slot, Hostname: name,
		Uptime: BootTime(), Data: data, Services: services, Network: links,
		Memory: control.ReadMemory(procs),
	}, nil
}

// Log implements control.System.
func (p *init1) Log(ctx context.Context, after uint64, max int) ([]control.LogEntry, error) {
	return p.ring.Since(after, max), nil
}

// Reboot implements control.System.
func (p *init1) Reboot(ctx context.Context) error {
	p.log.Info("reboot requested through the control socket")
	time.AfterFunc(control.ShutdownGrace, func() { p.request(actReboot) })
	return nil
}

// PowerOff implements control.System.
func (p *init1) PowerOff(ctx context.Context) error {
	p.log.Info("power off requested through the control socket")
	time.AfterFunc(control.ShutdownGrace, func() { p.request(actPowerOff) })
	return nil
}

// finish syncs, unmounts and reboots or powers off. It does not return.
func (p *init1) finish(a action) {
	unix.Sync()
	for _, dir := range []string{DataDir, SystemDir} {
		if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			p.log.Warn("unmount failed, remounting read-only", "dir", dir, "err", err)
			unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if a == actPowerOff {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	p.log.Info("goodbye")
	for {
		if err := unix.Reboot(cmd); err != nil {
			p.log.Error("reboot(2)", "err", err)
		}
		time.Sleep(time.Second)
	}
}
