package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
)

// days is a duration flag that also takes a number of days ("30d").
type days struct{ d *time.Duration }

func (f days) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*f.d/(24*time.Hour)), 10) + "d"
	}
	return f.d.String()
}

func (f days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return err
		}
		*f.d = time.Duration(v * float64(24*time.Hour))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(days{p}, name, usage+" (Go duration or days, e.g. 30d)")
}

func roleFlags(fs *flag.FlagSet, role string, rk *publish.RoleKeys) {
	fs.IntVar(&rk.Keys, role+"-keys", 1, "number of "+role+" keys")
	fs.IntVar(&rk.Threshold, role+"-threshold", 1, "signatures needed for "+role+" metadata")
}

func releaseKeygen(args []string) error {
	fs := flag.NewFlagSet("release keygen", flag.ExitOnError)
	dir := fs.String("keys", "keys", "signing directory to create (keep it offline)")
	var o publish.KeygenOptions
	roleFlags(fs, "root", &o.Root)
	roleFlags(fs, "targets", &o.Targets)
	roleFlags(fs, "snapshot", &o.Snapshot)
	roleFlags(fs, "timestamp", &o.Timestamp)
	durationVar(fs, &o.RootExpires, "root-expires", publish.DefaultRootExpires, "validity of the root metadata")
	fs.Parse(args)
	r, err := publish.Keygen(*dir, o)
	if err != nil {
		return err
	}
	fmt.Printf("signing directory %s: root version %d (%d of %d root keys must sign)\n", r.Dir(), r.RootVersion(), o.Root.Threshold, o.Root.Keys)
	fmt.Printf("trusted root to build into images: %s\n", filepath.Join(r.Dir(), "roots", "1.root.json"))
	return nil
}

func releaseRotate(args []string) error {
	fs := flag.NewFlagSet("release rotate", flag.ExitOnError)
	dir := fs.String("keys", "keys", "signing directory (needs a threshold of the current root keys)")
	roles := fs.String("roles", "", "comma-separated roles that get new keys: root,targets,snapshot,timestamp")
	var rk publish.RoleKeys
	fs.IntVar(&rk.Keys, "n", 1, "number of new keys per role")
	fs.IntVar(&rk.Threshold, "threshold", 1, "signatures needed per role")
	var o publish.RotateOptions
	durationVar(fs, &o.Expires, "expires", publish.DefaultRootExpires, "validity of the new root metadata")
	fs.Parse(args)
	if *roles == "" {
		return errors.New("release rotate: -roles is required")
	}
	o.Roles = map[string]publish.RoleKeys{}
	for _, role := range strings.Split(*roles, ",") {
		o.Roles[strings.TrimSpace(role)] = rk
	}
	r, err := publish.Open(*dir)
	if err != nil {
		return err
	}
	if err := r.Rotate(o); err != nil {
		return err
	}
	fmt.Printf("root version %d written to %s; the next signed bundle carries it\n", r.RootVersion(),
		filepath.Join(r.Dir(), "roots", strconv.FormatInt(r.RootVersion(), 10)+".root.json"))
	return nil
}

func signOptions(fs *flag.FlagSet, o *publish.SignOptions) {
	durationVar(fs, &o.TargetsExpires, "targets-expires", publish.DefaultTargetsExpires, "validity of the targets metadata")
	durationVar(fs, &o.SnapshotExpires, "snapshot-expires", publish.DefaultSnapshotExpires, "validity of the snapshot metadata")
	durationVar(fs, &o.TimestampExpires, "timestamp-expires", publish.DefaultTimestampExpires, "validity of the timestamp (freshness window)")
}

func releaseSign(args []string) error {
	fs := flag.NewFlagSet("release sign", flag.ExitOnError)
	dir := fs.String("keys", "keys", "signing directory")
	img := fs.String("img", "", "built disk image to take the slot's payloads from")
	slot := fs.String("slot", "a", "slot of the image to take")
	kernel := fs.String("kernel", "", "kernel (instead of -img)")
	initrd := fs.String("initrd", "", "initramfs (instead of -img)")
	system := fs.String("system", "", "system squashfs (instead of -img)")
	manifest := fs.String("manifest", "", "release.json (instead of -img)")
	out := fs.String("o", "out/release", "bundle directory to write (may hold earlier bundles)")
	tarFile := fs.String("tar", "", "also write the bundle as this single tar file")
	minFrom := fs.Uint64("min-from", 0, "lowest installed release counter this release may update from")
	minFromVersion := fs.String("min-from-version", "", "version string of -min-from, for the box's message")
	var o publish.SignOptions
	signOptions(fs, &o)
	fs.Parse(args)

	payloads := map[release.Kind]io.Reader{}
	var manifestBytes []byte
	switch {
	case *img != "":
		sf, err := image.ReadSlot(*img, *slot)
		if err != nil {
			return err
		}
		f, err := os.Open(*img)
		if err != nil {
			return err
		}
		defer f.Close()
		manifestBytes = sf.Release
		payloads[release.KindKernel] = bytes.NewReader(sf.Kernel)
		payloads[release.KindInitrd] = bytes.NewReader(sf.Initrd)
		payloads[release.KindSystem] = io.NewSectionReader(f, sf.SystemOffset, sf.SystemSize)
	case *kernel != "" && *initrd != "" && *system != "" && *manifest != "":
		var err error
		if manifestBytes, err = os.ReadFile(*manifest); err != nil {
			return err
		}
		for k, p := range map[release.Kind]string{release.KindKernel: *kernel, release.KindInitrd: *initrd, release.KindSystem: *system} {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			payloads[k] = f
		}
	default:
		return errors.New("release sign: give -img, or all of -kernel, -initrd, -system and -manifest")
	}
	var m image.Release
	if err := json.Unmarshal(manifestBytes, &m); err != nil {
		return fmt.Errorf("release sign: release.json: %w", err)
	}
	if m.Counter <= 0 {
		return fmt.Errorf("release sign: release.json has counter %d; build with -counter N (N > 0)", m.Counter)
	}
	payloads[release.KindRelease] = bytes.NewReader(manifestBytes)
	r, err := publish.Open(*dir)
	if err != nil {
		return err
	}
	b, err := r.Sign(*out, []publish.Release{{
		Arch: m.Arch, Version: m.Version, Counter: uint64(m.Counter),
		MinFrom: *minFrom, MinFromVersion: *minFromVersion, Payloads: payloads,
	}}, o)
	if err != nil {
		return err
	}
	fmt.Printf("signed %s #%d for %s into %s: metadata %d bytes (targets v%d, snapshot v%d, timestamp v%d, root v%d), payloads %d bytes\n",
		m.Version, m.Counter, m.Arch, b.Dir, b.MetadataBytes, b.Targets, b.Snapshot, b.Timestamp, b.RootVersion, b.PayloadBytes)
	return writeTar(b, *tarFile)
}

func writeTar(b *publish.Bundle, name string) error {
	if name == "" {
		return nil
	}
	if err := b.WriteTarFile(name); err != nil {
		return err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	fmt.Printf("tar bundle %s: %d bytes\n", name, fi.Size())
	return nil
}

func releaseRefresh(args []string) error {
	fs := flag.NewFlagSet("release refresh", flag.ExitOnError)
	dir := fs.String("keys", "keys", "signing directory (needs the timestamp key)")
	out := fs.String("o", "out/release", "bundle directory whose timestamp to renew")
	tarFile := fs.String("tar", "", "also rewrite the bundle as this single tar file")
	var o publish.SignOptions
	signOptions(fs, &o)
	fs.Parse(args)
	r, err := publish.Open(*dir)
	if err != nil {
		return err
	}
	b, err := r.Refresh(*out, o)
	if err != nil {
		return err
	}
	fmt.Printf("re-stamped %s: timestamp v%d\n", b.Dir, b.Timestamp)
	return writeTar(b, *tarFile)
}

// openSource opens a bundle directory, a tar bundle file or an http(s) URL.
func openSource(s string) (release.Fetcher, func(), error) {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		h, err := release.NewHTTP(s, nil)
		return h, func() {}, err
	}
	fi, err := os.Stat(s)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		d, err := release.OpenDir(s)
		if err != nil {
			return nil, nil, err
		}
		return d, func() { d.Close() }, nil
	}
	f, err := os.Open(s)
	if err != nil {
		return nil, nil, err
	}
	return release.NewTar(f), func() { f.Close() }, nil
}

func releaseVerify(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("release verify", flag.ExitOnError)
	rootFile := flags.String("root", "", "trusted root metadata (default: KEYS/roots/1.root.json)")
	keys := flags.String("keys", "keys", "signing directory whose first root to trust when -root is not given")
	bundle := flags.String("bundle", "out/release", "bundle directory, tar file or http(s) URL")
	arch := flags.String("arch", "amd64", "architecture of the box")
	counter := flags.Uint64("installed-counter", 0, "release counter of the installed release")
	instVersion := flags.String("installed-version", "", "version of the installed release")
	stateFile := flags.String("state", "", "trust state file kept between runs, like a box's (created from the root)")
	nowFlag := flags.String("now", "", "pretend the clock says this (RFC 3339)")
	flags.Parse(args)

	if *rootFile == "" {
		*rootFile = filepath.Join(*keys, "roots", "1.root.json")
	}
	var store release.Store
	newState := func() (release.State, error) {
		root, err := os.ReadFile(*rootFile)
		if err != nil {
			return release.State{}, err
		}
		return release.NewState(root)
	}
	if *stateFile != "" {
		fst := release.FileStore{Path: *stateFile}
		if _, err := os.Stat(*stateFile); errors.Is(err, fs.ErrNotExist) {
			st, err := newState()
			if err != nil {
				return err
			}
			if err := fst.Save(st); err != nil {
				return err
			}
		}
		store = fst
	} else {
		st, err := newState()
		if err != nil {
			return err
		}
		store = release.NewMemStore(st)
	}
	now := time.Now
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("release verify: -now: %w", err)
		}
		now = func() time.Time { return t }
	}
	v, err := release.NewVerifier(release.Config{Store: store, Arch: *arch, Now: now})
	if err != nil {
		return err
	}
	src, closeSrc, err := openSource(*bundle)
	if err != nil {
		return err
	}
	defer closeSrc()
	t := time.Now()
	r, err := v.Update(ctx, src, release.Installed{Version: *instVersion, Counter: *counter})
	if err != nil {
		return explain(err)
	}
	fmt.Printf("release %s for %s: metadata verified (root v%d, timestamp v%d, snapshot v%d, targets v%d; expires %s)\n",
		r, r.Arch, r.RootVersion, r.TimestampVersion, r.SnapshotVersion, r.TargetsVersion, r.Expires.Format(time.RFC3339))
	for _, p := range r.Payloads {
		pr, err := r.Open(ctx, p.Kind)
		if err != nil {
			return explain(err)
		}
		n, err := io.Copy(io.Discard, pr)
		pr.Close()
		if err != nil {
			return explain(err)
		}
		fmt.Printf("  %-8s %-24s %10d bytes  sha256 %x  ok\n", p.Kind, p.Path, n, p.SHA256)
	}
	fmt.Printf("verified in %v\n", time.Since(t).Round(time.Millisecond))
	return nil
}

// explain adds the owner-facing words to a refusal.
func explain(err error) error {
	if r := release.ReasonOf(err); r != 0 {
		return fmt.Errorf("%s\n  %w", r.Text(), err)
	}
	return err
}
