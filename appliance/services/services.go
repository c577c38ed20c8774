package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/wallet"
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
	Network keys.Network // the wallet's network; zero means mainnet
	TPM     string       // TPM device; "" means /dev/tpmrm0
	// Ready is called once the page is being served, with the address it listens on.
	Ready func(addr net.Addr)

	// Box is set when the services run on the box, as PID 1's child ("anyad serve"): the
	// update agent then works on the running slot and the boot disk, and checks the health
	// of a trial boot. Otherwise (anyad dev on a host) it is unmanaged: it keeps records,
	// and the page says updates are not available on this host.
	Box bool
	// CommittedFile, when set, is created once this boot is known to be committed (PID 1's
	// trial deadline reads it, see pid1.CommittedFile).
	CommittedFile string
	// UpdateOffer, when set, asks the fleet server which release it offers this box (the
	// hook of appliance/update/fleet); nil: the page says no update server is configured.
	UpdateOffer func(ctx context.Context) (*web.UpdateOffer, error)
	// StickRoot is where PID 1 mounts the box's USB sticks; "" means usbstick.MountRoot.
	StickRoot string

	// For tests: sealers replaces the seal providers found on the host, walletConfig
	// adjusts the wallet service's configuration.
	sealers      func(found map[string]seal.Sealer) map[string]seal.Sealer
	walletConfig func(*wallet.Config)
}

// network is the wallet's network: mainnet unless cfg says otherwise.
func network(cfg Config) keys.Network {
	if !cfg.Network.Valid() {
		return keys.Mainnet
	}
	return cfg.Network
}

// openCustody opens the key custody with the seal providers of this box and, when the wallet
// is protected by the TPM alone, unlocks it.
func openCustody(ctx context.Context, db *storage.DB, cfg Config) (*hsm.Custody, func(), error) {
	custody, _, closeSealers, err := openCustodySealers(ctx, db, cfg)
	return custody, closeSealers, err
}

// openCustodySealers is openCustody that also returns the seal providers (the update agent's
// TPM approval needs the TPM's).
func openCustodySealers(ctx context.Context, db *storage.DB, cfg Config) (*hsm.Custody, map[string]seal.Sealer, func(), error) {
	sealers, closeSealers := detectSealers(cfg.Log, cfg.TPM)
	if cfg.sealers != nil {
		sealers = cfg.sealers(sealers)
	}
	custody, err := hsm.New(hsm.Config{DB: db, Network: network(cfg), Sealers: sealers, Log: cfg.Log, Policy: DefaultPolicy})
	if err != nil {
		closeSealers()
		return nil, nil, nil, fmt.Errorf("open key custody: %w", err)
	}
	switch err := custody.AutoUnlock(ctx); {
	case err == nil:
		if st, _ := custody.Status(); st.State == hsm.StateUnlocked {
			cfg.Log.Info("wallet unlocked by the TPM", "fingerprint", st.Fingerprint)
		}
	case errors.Is(err, hsm.ErrLocked):
		cfg.Log.Info("wallet locked: waiting for the owner to unlock it on the page")
	default:
		cfg.Log.Warn("wallet could not unlock itself", "err", err)
	}
	return custody, sealers, closeSealers, nil
}

// DefaultPolicy is the signing policy until the owner sets one: no fee above 10% of the
// amount sent or above 1000 sat/vB.
var DefaultPolicy = sign.Policy{MaxFeePercent: 10, MaxFeeRate: 1000}

// ErrRestart ends Run after an update was committed while migrations were held back: the
// supervisor (or anyad dev) starts the services again, and they run them.
var ErrRestart = errors.New("restarting the services to run the migrations held back during the update's trial")

// Run serves until ctx is done, then shuts the web server down and closes the database.
//
// Start-up order, for updates (see package appliance/update/agent): the database opens, the
// update agent settles what this boot is (a committed slot, a trial of a new one, or the
// fallback after a failed update) before any subsystem migrates its schema, then the
// subsystems migrate, the services start, and on a trial boot the health check runs and
// commits the slot or marks it bad and reboots.
//
// Breaking migrations and rollback: while the boot is a trial, a breaking schema migration
// must not run, or the previous firmware could not read the data after a fallback. The web
// subsystem migrates through agent.Migrate, which holds breaking migrations back until the
// commit (then Run returns ErrRestart and the services start again to run them). The other
// subsystems (hsm, audit, backend, wallet, p2p) migrate inside their packages with
// storage.DB.Migrate and have no breaking migration; TestRunUpdatesOnAHost fails
// when one gets one, and the place to gate it is its Open function (take an agent.Gate, or
// export the migrations so that this function runs agent.Migrate before opening it).
func Run(ctx context.Context, cfg Config) error {
	db, err := storage.Open(filepath.Join(cfg.DataDir, DBFile), storage.Options{})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	upd := startUpdates(ctx, db, cfg)
	// Uploads are spooled unlinked; a crash between creating and unlinking one leaves a file.
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, SpoolDir)); err != nil {
		cfg.Log.Warn("clean the upload spool directory", "err", err)
	}
	custody, sealers, closeSealers, err := openCustodySealers(ctx, db, cfg)
	if err != nil {
		return err
	}
	defer closeSealers()
	defer custody.Lock()
	upd.approveWith(custody, sealers)
	defer upd.approveWith(nil, nil)

	// The wallet service follows the chain beside the page, until ctx ends; the database
	// is closed only after it stopped.
	node := newNodeService(db, custody, network(cfg), cfg.Log)
	node.wcfg = cfg.walletConfig
	nodeCtx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan struct{})
	go func() { defer close(nodeDone); node.run(nodeCtx) }()
	defer func() { stopNode(); <-nodeDone }()

	// The Lightning gossip node starts once the wallet is unlocked (its key comes from the
	// seed) and stops before the database closes.
	lnSvc := newLightningService(db, custody, network(cfg).Params(), node.currentBackend, cfg.Log)
	lnCtx, stopLn := context.WithCancel(ctx)
	lnDone := make(chan struct{})
	go func() { defer close(lnDone); lnSvc.run(lnCtx) }()
	defer func() { stopLn(); <-lnDone }()

	backupCtx, stopBackups := context.WithCancel(ctx)
	backups, backupsDone, err := startBackups(backupCtx, db, custody, cfg)
	if err != nil {
		stopBackups()
		return err
	}
	defer func() { stopBackups(); backupsDone() }()

	fleetCtx, stopFleet := context.WithCancel(ctx)
	checkins, fleetDone, err := startFleet(fleetCtx, db, cfg, upd, sealers)
	if err != nil {
		stopFleet()
		return err
	}
	defer func() { stopFleet(); fleetDone() }()
	updCfg := &web.UpdateConfig{Agent: upd.agent, Unavailable: upd.unavailable, Offer: cfg.UpdateOffer,
		USB: stickBundle(cfg), SpoolDir: filepath.Join(cfg.DataDir, SpoolDir)}
	if checkins != nil {
		updCfg.Fleet = checkins
		if updCfg.Offer == nil {
			updCfg.Offer = fleetOffer(checkins)
		}
	}

	srv, err := web.New(web.Config{DB: db, System: cfg.System, Logger: cfg.Log, Version: cfg.Version, Wallet: custody,
		Node: node, Lightning: lnSvc, Migrations: upd.gate(), Backups: backups, Update: updCfg})
	if err != nil {
		return fmt.Errorf("start web page: %w", err)
	}
	held := srv.HeldMigrations()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for the web page: %w", err)
	}
	handler := srv.Handler()
	if benchAPI != "" {
		handler = upd.benchHandler(handler)
	}
	hs := &http.Server{
		Handler:           handler,
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

	// A trial boot: the health check decides it, beside the running services.
	confirmCtx, stopConfirm := context.WithCancel(ctx)
	confirmDone := make(chan struct{})
	go func() {
		defer close(confirmDone)
		checks := healthChecks(healthEnv{db: db, sys: cfg.System, custody: custody, node: node, addr: ln.Addr(), box: cfg.Box})
		if err := upd.confirm(confirmCtx, checks); err != nil && confirmCtx.Err() == nil {
			upd.log.Error("update health check", "err", err)
		}
	}()
	defer func() { stopConfirm(); <-confirmDone }()
	var committed <-chan struct{}
	if held > 0 && upd.agent != nil {
		committed = upd.agent.Committed()
	}

	var runErr error
	select {
	case err := <-errc:
		return fmt.Errorf("serve web page: %w", err)
	case <-ctx.Done():
	case <-committed:
		cfg.Log.Info("update committed: restarting the services to run the migrations held back", "held", held)
		runErr = ErrRestart
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		cfg.Log.Warn("web server shutdown", "err", err)
	}
	return runErr
}
