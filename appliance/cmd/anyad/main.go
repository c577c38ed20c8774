// Command anyad is the Anya Edge appliance daemon.
//
// Started by the kernel as PID 1 it is the init of the box (see package pid1). Otherwise:
//
//	anyad serve -data DIR -listen ADDR -control SOCK   the services, as PID 1 runs them
//	anyad dev [-data ./var] [-listen 127.0.0.1:8080]    the same services on a host, no root
//
// Both take -network (mainnet, testnet, testnet4, signet, regtest), the Bitcoin network of the
// wallet and its chain backend: "anyad dev -network regtest" runs the wallet pages against a
// local regtest node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/appliance/pid1"
	"github.com/anya-edge/anya/appliance/services"
	"github.com/anya-edge/anya/hsm/keys"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() {
	if os.Getpid() == 1 {
		pid1.Main(version)
		return
	}
	args := os.Args[1:]
	cmd := "dev"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "dev" || args[0] == "version" || args[0] == "recovery" || args[0] == "check-db") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "dev":
		err = dev(args)
	case "version":
		fmt.Println(version)
	case "recovery":
		err = recovery(args)
	case "check-db":
		err = checkDB(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "anyad:", err)
		os.Exit(1)
	}
}

// readyLine prints the machine-readable line tests and benchmarks wait for.
func readyLine(w io.Writer, addr net.Addr) {
	boot := pid1.BootTime()
	line := fmt.Sprintf("ANYA-READY boot_ms=%d", boot.Milliseconds())
	if ns, err := strconv.ParseInt(os.Getenv(pid1.EnvInitStart), 10, 64); err == nil {
		line += fmt.Sprintf(" init_ms=%d", (boot - time.Duration(ns)).Milliseconds())
	}
	fmt.Fprintf(w, "%s addr=%s\n", line, addr)
}

// serve runs the services as PID 1's child: logs to stderr (PID 1 copies them to the console
// and the ring), PID 1 reached through the control socket.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	data := fs.String("data", pid1.DataDir, "data directory")
	listen := fs.String("listen", pid1.ListenAddr, "address of the web page")
	sock := fs.String("control", control.DefaultSocket, "PID 1's control socket")
	network := fs.String("network", "mainnet", "Bitcoin network of the wallet: mainnet, testnet, testnet4, signet, regtest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	btcnet, err := keys.ParseNetwork(*network)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("svc", "services")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return services.Run(ctx, services.Config{
		DataDir: *data, Listen: *listen, System: control.NewClient(*sock), Log: log, Version: version,
		Network: btcnet, Ready: func(a net.Addr) { readyLine(os.Stdout, a) },
		// On the box: the update agent works on the boot disk and tells PID 1 when this
		// boot is committed.
		Box: true, CommittedFile: pid1.CommittedFile,
	})
}

// dev runs the services on a host. The reboot button restarts them; power off exits.
func dev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", "./var", "data directory")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the web page")
	network := fs.String("network", "mainnet", "Bitcoin network of the wallet: mainnet, testnet, testnet4, signet, regtest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	btcnet, err := keys.ParseNetwork(*network)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ring := logring.New(2000)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, ring), nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var mu sync.Mutex
	var restart context.CancelFunc
	started := time.Now()
	state := control.ServiceStatus{Name: "services", State: control.ServiceStarting, PID: os.Getpid(), Since: started}
	host := &control.Host{
		Version: version, DataDir: *data, Logs: ring, Started: started,
		Services: func() []control.ServiceStatus { mu.Lock(); defer mu.Unlock(); return []control.ServiceStatus{state} },
		Restart: func() {
			mu.Lock()
			defer mu.Unlock()
			log.Info("reboot requested: restarting services")
			if restart != nil {
				restart()
			}
		},
		Stop: stop,
	}
	ready := false
	for ctx.Err() == nil {
		runCtx, cancel := context.WithCancel(ctx)
		mu.Lock()
		restart = cancel
		state.State, state.Since = control.ServiceRunning, time.Now()
		mu.Unlock()
		err := services.Run(runCtx, services.Config{
			DataDir: *data, Listen: *listen, System: host, Log: log, Version: version, Network: btcnet,
			Ready: func(a net.Addr) {
				if !ready {
					ready = true
					readyLine(os.Stdout, a)
					fmt.Printf("Setup page: http://%s/\n", a)
				}
			},
		})
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, services.ErrRestart) {
			return err
		}
		mu.Lock()
		state.Restarts++
		mu.Unlock()
	}
	return nil
}
