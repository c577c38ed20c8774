package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/storage"
)

// DBFile is the name of the database in the data directory.
const DBFile = "anya.db"

// Config says where the services keep their state and listen.
type Config struct {
	DataDir string
	Listen  string // e.g. ":80" or "127.0.0.1:8080"
	System  control.System
	Log     *slog.Logger
	Version string
	// Ready is called once the page is being served, with the address it listens on.
	Ready func(addr net.Addr)
}

// Run serves until ctx is done, then shuts the web server down and closes the database.
func Run(ctx context.Context, cfg Config) error {
	db, err := storage.Open(filepath.Join(cfg.DataDir, DBFile), storage.Options{})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	srv, err := web.New(web.Config{DB: db, System: cfg.System, Logger: cfg.Log, Version: cfg.Version})
	if err != nil {
		return fmt.Errorf("start web page: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for the web page: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve web page: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		cfg.Log.Warn("web server shutdown", "err", err)
	}
	return nil
}
