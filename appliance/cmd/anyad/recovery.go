package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/pid1"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
)

// recovery runs the recovery page as PID 1's child in recovery mode (see package
// appliance/recovery/rescue). The one-time code comes from PID 1 in the environment.
func recovery(args []string) error {
	fs := flag.NewFlagSet("recovery", flag.ContinueOnError)
	listen := fs.String("listen", pid1.ListenAddr, "address of the recovery page")
	network := fs.String("network", "", "the box's Bitcoin network")
	stick := fs.String("stick", "", "mounted files partition of the recovery stick")
	stickESP := fs.String("stick-esp", "", "the recovery stick's ESP device")
	scratch := fs.String("scratch", pid1.VolatileDir, "scratch directory (tmpfs)")
	data := fs.String("data", pid1.RecoveryDataDir, "where to mount the internal data partition")
	cmdline := fs.String("cmdline", "", "extra kernel command line of reinstalled entries")
	sock := fs.String("control", control.DefaultSocket, "PID 1's control socket")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("svc", "recovery")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sys := control.NewClient(*sock)
	self, _ := os.Executable()
	os.MkdirAll(*scratch, 0o700)
	return rescue.Run(ctx, rescue.RunConfig{
		Code: os.Getenv(pid1.EnvRecoveryCode), Listen: *listen, Log: log,
		Ready: func(a net.Addr) { readyLine(os.Stdout, a) },
		Machine: rescue.MachineConfig{
			Reason: os.Getenv(pid1.EnvRecoveryReason), StickDir: *stick, StickESP: *stickESP, SystemDir: pid1.SystemDir,
			Scratch: *scratch, DataMount: *data, Network: *network, Cmdline: *cmdline,
			Logs: func() []string {
				ents, _ := sys.Log(ctx, 0, 2000)
				lines := make([]string, 0, len(ents))
				for _, e := range ents {
					lines = append(lines, e.Text)
				}
				return lines
			},
			Reboot:  sys.Reboot,
			CheckDB: rescue.ProcessChecker(func(path string) *exec.Cmd { return exec.Command(self, "check-db", path) }),
		},
	})
}

// checkDB checks a database for the recovery page in a process of its own (bbolt may panic
// on a damaged file).
func checkDB(args []string) error {
	if len(args) != 1 {
		return flag.ErrHelp
	}
	return rescue.ServeCheckDB(os.Stdout, args[0])
}
