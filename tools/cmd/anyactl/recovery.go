package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/anya-edge/anya/image"
)

// recoveryBuild writes a recovery stick image (see image.BuildRecovery):
//
//	anyactl recovery build -bundle out/release.tar -trusted-root keys/roots/1.root.json -o stick.img
//	        [-cmdline anya.network=regtest] [-backup-space 256] [-backup FILE.anyabak ...]
//	        [-cache out/cache] [-bootloader FILE]
//
// then, for example, dd if=stick.img of=/dev/sdX bs=4M conv=fsync.
func recoveryBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recovery build", flag.ContinueOnError)
	bundle := fs.String("bundle", "", "signed release bundle: a directory or its tar (anyactl release sign)")
	root := fs.String("trusted-root", "", "the trusted root the bundle must verify against (keys/roots/N.root.json)")
	out := fs.String("o", "out/anya-recovery.img", "the stick image to write")
	cmdline := fs.String("cmdline", "", "extra kernel command line of the recovery entry and of reinstalled boxes")
	space := fs.Int64("backup-space", 256, "MiB of free room for backups and logs on the stick")
	cache := fs.String("cache", "out/cache", "where Debian packages are downloaded (systemd-boot)")
	loader := fs.String("bootloader", "", "systemd-bootx64.efi to use instead of Debian's")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	var backups []string
	fs.Func("backup", "a backup file (.anyabak, downloaded from the box's Backups page) to put on the stick; repeat for more", func(v string) error {
		backups = append(backups, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bundle == "" || *root == "" {
		return fmt.Errorf("recovery build: -bundle and -trusted-root are required")
	}
	cfg := image.RecoveryConfig{Bundle: *bundle, TrustedRoot: *root, Output: *out, Cmdline: *cmdline,
		BackupSpace: *space << 20, CacheDir: *cache}
	for _, p := range backups {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("recovery build: %w", err)
		}
		if cfg.Backups == nil {
			cfg.Backups = map[string][]byte{}
		}
		cfg.Backups[filepath.Base(p)] = b
	}
	if *loader != "" {
		b, err := os.ReadFile(*loader)
		if err != nil {
			return fmt.Errorf("recovery build: %w", err)
		}
		cfg.BootEFI = b
	}
	res, err := image.BuildRecovery(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%s  %s\nrecovery stick for release %s (counter %d), %d bytes, bundle %d bytes\n",
		res.SHA256, res.Path, res.Version, res.Counter, res.Size, res.BundleBytes)
	return nil
}
