package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

// BackupsDir is the directory of the automatic backups in the data directory.
const BackupsDir = "backups"

// startBackups runs the backup scheduler until ctx ends: backups into the data partition's
// BackupsDir after changes and daily, each also copied to the backup sticks PID 1 mounted
// under stickRoot (usbstick.MountRoot on the box). It returns the scheduler for the page
// and a function that waits for it to stop.
func startBackups(ctx context.Context, db *storage.DB, custody *hsm.Custody, cfg Config) (*backup.Scheduler, func(), error) {
	dir := filepath.Join(cfg.DataDir, BackupsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("backups: %w", err)
	}
	known, err := backup.KnownSchemas(db, backup.Subsystems()...)
	if err != nil {
		return nil, nil, fmt.Errorf("backups: %w", err)
	}
	for _, s := range backup.Subsystems() {
		if _, ok := known[s]; !ok {
			known[s] = 1 // not migrated yet (no wallet yet): writing records the database's own version
		}
	}
	root := cfg.StickRoot
	if root == "" {
		root = usbstick.MountRoot
	}
	sched, err := backup.NewScheduler(backup.SchedulerConfig{DB: db, Custody: custody, Dir: dir,
		Copies: func() []string { return stickBackupDirs(root) }, Log: cfg.Log,
		Options: backup.Options{Policy: backup.DefaultPolicy(known), BoxVersion: cfg.Version, Network: network(cfg).String()}})
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx) })
	return sched, wg.Wait, nil
}

// stickBackupDirs lists the backups directories of the sticks mounted under root
// (root/<LABEL>/backups, made by PID 1 when it mounts a stick).
func stickBackupDirs(root string) []string {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if _, ok := usbstick.Ours(e.Name()); !ok || !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name(), usbstick.BackupsDir)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}
