package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/appliance/recovery/usbstick"
	"github.com/anya-edge/anya/appliance/update/checkin"
	"github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/storage"
)

// FleetKeyFile is the device key of a box without a TPM, in the data directory.
const FleetKeyFile = "fleet-device-key.pem"

// tpmKeys keeps the fleet device key in the TPM (hsm/tpm's signing key): the database holds
// only the TPM-wrapped blob, which no other TPM can load.
type tpmKeys struct{ t *tpm.Sealer }

func (k tpmKeys) Create(ctx context.Context) (fleet.Key, []byte, error) {
	sk, err := k.t.CreateSigningKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	return fleet.TPMKey(sk), sk.Blob(), nil
}

func (k tpmKeys) Load(ctx context.Context, blob []byte) (fleet.Key, error) {
	if len(blob) == 0 {
		return nil, fmt.Errorf("the enrollment has no TPM key: enroll again")
	}
	sk, err := k.t.LoadSigningKey(ctx, blob)
	if err != nil {
		return nil, err
	}
	return fleet.TPMKey(sk), nil
}

// startFleet runs the check-ins with the fleet server the owner enrolled the box with (none
// until then) until ctx ends. It returns the loop and a function that waits for it to stop;
// nil when the box has no update agent.
func startFleet(ctx context.Context, db *storage.DB, cfg Config, upd *updates, sealers map[string]seal.Sealer) (*checkin.Runner, func(), error) {
	if upd.agent == nil {
		return nil, func() {}, nil
	}
	var keys checkin.KeyStore = checkin.FileKeys{Path: filepath.Join(cfg.DataDir, FleetKeyFile)}
	if t, ok := sealers[seal.KindTPM].(*tpm.Sealer); ok {
		keys = tpmKeys{t}
	}
	r, err := checkin.New(checkin.Config{DB: db, Updater: upd.agent, Keys: keys, Reboot: cfg.System.Reboot,
		Log: cfg.Log.With("svc", "fleet")})
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	return r, wg.Wait, nil
}

// fleetOffer is the update page's Offer hook: it checks in now and describes the release the
// server offers, if any.
func fleetOffer(r *checkin.Runner) func(ctx context.Context) (*web.UpdateOffer, error) {
	return func(ctx context.Context) (*web.UpdateOffer, error) {
		if !r.Status().Enrolled {
			return nil, nil
		}
		o, err := r.CheckNow(ctx)
		if err != nil || !o.Available() {
			return nil, err
		}
		return &web.UpdateOffer{Version: o.Version, Counter: o.Counter, Channel: o.Channel,
			Source: func(ctx context.Context) (release.Fetcher, error) { return release.NewHTTP(o.BaseURL, nil) }}, nil
	}
}

// stickBundle is the update page's USB hook: the signed bundle on a stick PID 1 mounted (a
// recovery stick's bundle.tar, or the one .tar file at the top of a backup stick).
func stickBundle(cfg Config) func(ctx context.Context) (release.Fetcher, func(), error) {
	root := cfg.StickRoot
	if root == "" {
		root = usbstick.MountRoot
	}
	return func(ctx context.Context) (release.Fetcher, func(), error) {
		var found []string
		for _, backups := range stickBackupDirs(root) {
			dir := filepath.Dir(backups)
			if p := filepath.Join(dir, rescue.BundleFile); fileExists(p) {
				found = append(found, p)
				continue
			}
			tars, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
			found = append(found, tars...)
		}
		switch len(found) {
		case 0:
			return nil, nil, fmt.Errorf("no stick labelled %s or recovery stick with a bundle (.tar) is plugged in", usbstick.LabelBackup)
		case 1:
		default:
			return nil, nil, fmt.Errorf("several bundles on the USB sticks (%s): leave one", strings.Join(found, ", "))
		}
		f, err := os.Open(found[0])
		if err != nil {
			return nil, nil, err
		}
		return release.NewTar(f), func() { f.Close() }, nil
	}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
