// Command anyactl is the host-side tool of Anya Edge.
//
//	anyactl image build -anyad out/anyad -o out/anya.img   build the disk image, print its SHA-256
//	        [-trusted-root keys/roots/1.root.json]          ship the update trusted root
//	anyactl image run -img out/anya.img -port 8080          boot it in QEMU, print the page's URL
//	        [-stick stick.img [-boot-stick]] [-blank MiB]      with a USB stick; onto a blank disk
//	anyactl audit verify -db /data/anya.db                  check the signer's audit chain
//	anyactl release keygen -keys keys                        offline signing keys and root 1
//	anyactl release sign -keys keys -img out/anya.img -o out/release -tar out/release.tar
//	anyactl release verify -keys keys -bundle out/release    verify a bundle as a box would
//	anyactl release refresh|rotate                           renew the timestamp, rotate keys
//	anyactl fleet serve -data fleet-data -root keys/roots/1.root.json   the fleet server
//	anyactl fleet token -uses 10 -channel stable             an enrollment token
//	anyactl fleet release add -channel stable -dir BUNDLE    offer a release (staged rollout)
//	anyactl fleet release list|show|pause|resume|widen       rollouts
//	anyactl fleet devices                                    the inventory
//	anyactl fleet loadtest -devices 2000 -requests 20000     check-ins per second on loopback
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/qemu"
	"github.com/anya-edge/anya/storage"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  anyactl image build [flags]   build the disk image and print its SHA-256
  anyactl image run [flags]     boot the image in QEMU and print the setup page URL
  anyactl audit verify -db FILE check the signer's audit chain in a database (or a backup of it)
  anyactl release keygen        create offline signing keys and the first trusted root
  anyactl release rotate        new keys for some roles, in a new root signed by the old one
  anyactl release sign          sign a built image's slot into a bundle directory (and a tar)
  anyactl release refresh       renew a bundle's timestamp (the freshness window)
  anyactl release verify        verify a bundle (directory, tar or URL) with the box's code
  anyactl fleet serve           run the fleet server (enrollment, check-ins, rollouts, admin page)
  anyactl fleet token           create (or -list, -revoke) enrollment tokens
  anyactl fleet release SUB     add, list, show, pause, resume, widen releases and their rollouts
  anyactl fleet devices         list (or -remove) enrolled boxes
  anyactl fleet loadtest        measure check-ins per second on loopback against a no-op anchor
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] + " " + os.Args[2] {
	case "image build":
		err = build(ctx, os.Args[3:])
	case "image run":
		err = run(ctx, os.Args[3:])
	case "audit verify":
		err = auditVerify(os.Args[3:])
	case "release keygen":
		err = releaseKeygen(os.Args[3:])
	case "release rotate":
		err = releaseRotate(os.Args[3:])
	case "release sign":
		err = releaseSign(os.Args[3:])
	case "release refresh":
		err = releaseRefresh(os.Args[3:])
	case "release verify":
		err = releaseVerify(ctx, os.Args[3:])
	case "recovery build":
		err = recoveryBuild(ctx, os.Args[3:])
	case "fleet serve":
		err = fleetServe(ctx, os.Args[3:])
	case "fleet token":
		err = fleetToken(ctx, os.Args[3:])
	case "fleet release":
		err = fleetRelease(ctx, os.Args[3:])
	case "fleet devices":
		err = fleetDevices(ctx, os.Args[3:])
	case "fleet loadtest":
		err = fleetLoadtest(ctx, os.Args[3:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "anyactl:", err)
		os.Exit(1)
	}
}

// DefaultCacheDir is where Debian packages are kept between builds.
func defaultCacheDir() string {
	if d := os.Getenv("ANYA_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ".cache"
	}
	return filepath.Join(d, "anya")
}

func auditVerify(args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ExitOnError)
	path := fs.String("db", "/data/anya.db", "database file or backup")
	fs.Parse(args)
	db, err := storage.Open(*path, storage.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	l, err := audit.Open(db)
	if err != nil {
		return err
	}
	n, err := l.Verify()
	if err != nil {
		return err
	}
	fmt.Printf("audit chain intact: %d records\n", n)
	return nil
}

func build(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image build", flag.ExitOnError)
	var cfg image.Config
	fs.StringVar(&cfg.Anyad, "anyad", "out/anyad", "anyad binary (linux/amd64, static)")
	fs.StringVar(&cfg.Output, "o", "out/anya.img", "image file to write")
	fs.StringVar(&cfg.CacheDir, "cache", defaultCacheDir(), "cache of Debian packages")
	fs.StringVar(&cfg.KernelPackage, "kernel", image.DefaultKernelPackage, "Debian kernel package")
	fs.StringVar(&cfg.Version, "version", "0.0.0-dev", "release version")
	fs.IntVar(&cfg.Counter, "counter", 1, "monotonic release counter")
	fs.Int64Var(&cfg.Epoch, "epoch", 0, "timestamp of every file (default $SOURCE_DATE_EPOCH)")
	fs.StringVar(&cfg.Cmdline, "cmdline", "", "extra kernel command line")
	fs.StringVar(&cfg.TrustedRoot, "trusted-root", "", "update trusted root to ship (e.g. keys/roots/1.root.json); without it the image's updates are disabled")
	fs.Parse(args)
	if err := os.MkdirAll(filepath.Dir(cfg.Output), 0o755); err != nil {
		return err
	}
	t := time.Now()
	res, err := image.Build(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built %s in %v: %d MiB disk, kernel %s (%s) %.1f MiB, initramfs %.1f MiB, system %.1f MiB\n",
		res.Path, time.Since(t).Round(time.Millisecond), res.Size>>20, res.Release.KernelRelease, res.Release.KernelVersion,
		float64(res.KernelBytes)/(1<<20), float64(res.InitramfsBytes)/(1<<20), float64(res.SystemBytes)/(1<<20))
	if res.TrustedRootVersion == 0 {
		fmt.Fprintln(os.Stderr, "updates disabled: no trusted root (build with -trusted-root keys/roots/1.root.json to enable them)")
	} else {
		fmt.Fprintf(os.Stderr, "updates enabled: trusted root version %d\n", res.TrustedRootVersion)
	}
	fmt.Printf("%s  %s\n", res.SHA256, res.Path)
	return nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image run", flag.ExitOnError)
	img := fs.String("img", "out/anya.img", "disk image (the VM writes to it)")
	port := fs.Int("port", 8080, "host port for the setup page")
	mem := fs.Int("m", 512, "memory in MiB")
	quiet := fs.Bool("q", false, "do not copy the serial console to stdout")
	stick := fs.String("stick", "", "a USB stick image to plug in (a recovery stick, or a stick labelled ANYA-BACKUP)")
	bootStick := fs.Bool("boot-stick", false, "boot from the -stick (a recovery stick) rather than the disk")
	blank := fs.Int64("blank", 0, "create -img as a blank disk of this many MiB first (a new internal disk to recover onto)")
	fs.Parse(args)
	if *blank > 0 {
		if _, err := os.Stat(*img); err == nil {
			return fmt.Errorf("image run: -blank: %s exists; remove it first", *img)
		}
		f, err := os.Create(*img)
		if err != nil {
			return fmt.Errorf("image run: %w", err)
		}
		err = f.Truncate(*blank << 20)
		f.Close()
		if err != nil {
			return fmt.Errorf("image run: %w", err)
		}
	}
	cfg := qemu.Config{Image: *img, HostPort: *port, MemoryMB: *mem}
	if *stick != "" {
		idx := ",bootindex=1"
		cfg.DiskFirst = !*bootStick
		cfg.Extra = []string{"-device", "qemu-xhci,id=xhci", "-drive", "if=none,id=stick,format=raw,file=" + *stick,
			"-device", "usb-storage,bus=xhci.0,drive=stick,removable=on" + idx}
		if cfg.MemoryMB < 768 {
			cfg.MemoryMB = 768 // as the QEMU recovery tests run it
		}
	} else if *bootStick {
		return fmt.Errorf("image run: -boot-stick needs -stick")
	}
	if !*quiet {
		cfg.Console = os.Stdout
	}
	vm, err := qemu.Start(cfg)
	if err != nil {
		return err
	}
	defer vm.Stop()
	go func() {
		<-ctx.Done()
		vm.Stop()
	}()
	from := 0
	for {
		line, i, m, err := vm.WaitFor(ctx, qemu.ReadyLine, from)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		from = i + 1
		fmt.Printf("\n==> Anya Edge is up after %.1f s (anyad ready %s ms after kernel start).\n==> Setup page: http://127.0.0.1:%d/   (Ctrl-C stops the VM)\n\n",
			line.At.Seconds(), m[1], *port)
	}
}
