package rescue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/appliance/uevent"
)

// RunConfig configures Run: the recovery page of a box in recovery mode.
type RunConfig struct {
	Machine MachineConfig
	Code    string
	Listen  string
	// Ready is called once the page listens.
	Ready func(net.Addr)
	Log   *slog.Logger
}

// Run serves the recovery page until ctx is done. It follows the kernel's device events:
// when the recovery stick's files partition comes back after being pulled out, it is mounted
// again and the browser waiting for physical presence is let in.
func Run(ctx context.Context, cfg RunConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Machine.Log = cfg.Log
	m := NewMachine(cfg.Machine)
	srv, err := NewServer(Config{Box: m, Code: cfg.Code, Log: cfg.Log})
	if err != nil {
		return err
	}
	if cfg.Machine.StickDir != "" {
		go func() {
			gone := false
			err := uevent.Listen(ctx, func(e uevent.Event) {
				if _, ok := usbstick.BlockRemoved(e); ok && strings.EqualFold(e.Env["PARTNAME"], LabelStickFiles) {
					gone = true
					usbstick.Unmount(cfg.Machine.StickDir)
					cfg.Log.Info("recovery stick removed")
				}
				if dev, ok := usbstick.BlockAdded(e); ok && strings.EqualFold(e.Env["PARTNAME"], LabelStickFiles) && gone {
					gone = false
					if err := mountAt(dev, cfg.Machine.StickDir); err != nil {
						cfg.Log.Error("recovery stick", "err", err)
					}
					srv.Present()
				}
			})
			if err != nil {
				cfg.Log.Warn("device events", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("recovery page: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	cfg.Log.Info("recovery page ready", "addr", ln.Addr(), "reason", cfg.Machine.Reason)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("recovery page: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	m.unmountData()
	return nil
}

// mountAt mounts the stick's files partition at dir again.
func mountAt(dev, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// usbstick.Mount mounts at its own directory for the label; dir is that directory.
	got, err := usbstick.Mount(dev, usbstick.LabelRecovery)
	if err != nil {
		return err
	}
	if got != dir {
		return errors.New("recovery stick mounted at " + got + ", not " + dir)
	}
	return nil
}
