package services

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/node/backend"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

func cheapPassphrase(t *testing.T) func(map[string]seal.Sealer) map[string]seal.Sealer {
	t.Helper()
	pass, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return func(map[string]seal.Sealer) map[string]seal.Sealer {
		return map[string]seal.Sealer{seal.KindPassphrase: pass}
	}
}

// TestRunUpdatesOnAHost runs the services as "anyad dev" does: the update agent is
// unmanaged (the page says updates are not available here, installs are refused), the boot
// counts as committed (the file PID 1 reads is written), and no subsystem applied a breaking
// migration outside the agent's gate.
func TestRunUpdatesOnAHost(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "run", "update-committed")
	logs := &browsertest.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	host := &control.Host{Version: "t", DataDir: dir, Logs: logring.New(100), Started: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", System: host, Log: log, Version: "t",
			Network: keys.Regtest, CommittedFile: marker, Ready: func(a net.Addr) { ready <- a }, sealers: cheapPassphrase(t)})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("services: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("services not ready\n%s", logs)
	}
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("services: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("services did not stop")
		}
	}

	c := newAPIClient(t, "http://"+addr.String())
	m := c.want("POST", "/api/setup", map[string]string{"password": testPassword, "name": "host"}, http.StatusOK)
	c.csrf, _ = m["csrf"].(string)
	m = c.want("GET", "/api/update", nil, http.StatusOK)
	if !strings.Contains(m["unavailable"].(string), "development mode") || m["can_install"] != false {
		t.Errorf("GET /api/update on a host: %v", m)
	}
	c.want("POST", "/api/update/now", nil, http.StatusConflict)
	if b, err := os.ReadFile(marker); err != nil || string(b) != "committed\n" {
		t.Errorf("committed file: %q %v", b, err)
	}
	stop()
	if !strings.Contains(logs.String(), "updates unavailable: not running from an update slot") {
		t.Errorf("the log does not say updates are unavailable:\n%s", logs)
	}

	// Every subsystem that migrated (and those that migrate once a wallet or a backend is
	// set up) applied no breaking migration: those must go through agent.Migrate.
	db, err := storage.Open(filepath.Join(dir, DBFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := backend.Load(db); err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.OpenStore(db, nil); err != nil {
		t.Fatal(err)
	}
	gated := map[string]bool{"web": true, agent.Subsystem: true} // migrated through agent.Migrate
	var subs []string
	db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if string(name) != storage.MetaBucket {
				subs = append(subs, string(name))
			}
			return nil
		})
	})
	if len(subs) < 5 {
		t.Fatalf("subsystems: %v", subs)
	}
	for _, sub := range subs {
		sch, err := db.Schema(sub)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sch.History {
			if m.Breaking && !gated[sub] {
				t.Errorf("subsystem %s has the breaking migration %d (%s), which runs on a trial boot: migrate it through agent.Migrate (see Run)",
					sub, m.Version, m.Name)
			}
		}
	}
}

// TestHealthChecks runs the health checks of a trial boot against real services on a host:
// they pass; a configured chain backend that does not answer fails them; a build made to
// fail (failHealth) fails them for good.
func TestHealthChecks(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := storage.Open(filepath.Join(dir, DBFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	host := &control.Host{Version: "t", DataDir: dir, Logs: logring.New(10), Started: time.Now()}
	cfg := Config{DataDir: dir, System: host, Log: log, Network: keys.Regtest, sealers: cheapPassphrase(t)}
	upd := startUpdates(ctx, db, cfg)
	custody, closeSealers, err := openCustody(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSealers()
	srv, err := web.New(web.Config{DB: db, System: host, Logger: log, Migrations: upd.gate()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	node := newNodeService(db, custody, keys.Regtest, log)
	env := healthEnv{db: db, sys: host, custody: custody, node: node, addr: ln.Addr()}

	run := func() map[string]error {
		out := map[string]error{}
		for _, c := range healthChecks(env) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			out[c.Name] = c.Run(cctx)
			cancel()
		}
		return out
	}
	for name, err := range run() {
		if err != nil {
			t.Errorf("check %s: %v", name, err)
		}
	}

	// A node that does not answer: the chain check fails (and is retried by Confirm).
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	if err := backend.Save(db, backend.Settings{Kind: backend.KindRPC, RPC: backend.RPCSettings{Host: closed, User: "u", Pass: "p", NoTLS: true}}); err != nil {
		t.Fatal(err)
	}
	if err := run()["chain backend"]; err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("chain check with a node down: %v", err)
	}

	failHealth = "1"
	defer func() { failHealth = "" }()
	err = run()["test build"]
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("failHealth: %v", err)
	}
	// Confirm on an unmanaged agent decides nothing (not a trial) and returns at once.
	if err := upd.confirm(ctx, healthChecks(env)); err != nil {
		t.Errorf("confirm on a host: %v", err)
	}
}
