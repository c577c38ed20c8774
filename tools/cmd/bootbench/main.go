// Command bootbench measures how fast the Anya Edge disk image boots to its page, against an
// anchor measured in the same run: a gokrazy x86-64 UEFI image serving a tiny HTTP server.
//
//	go run ./tools/cmd/bootbench [-runs 3] [-img out/anya.img] [-anchor=true] [-json out/bench/boot.json]
//
// Why an anchor: there is no KVM on the build machines, so QEMU runs under TCG and absolute
// boot times swing by ±50% with host load. A ratio against a known system booted on the same
// machine, with the same QEMU settings (package image/qemu: q35, OVMF, 2 vCPUs, 512 MiB,
// virtio disk and RNG, user networking), minutes apart, is what can be compared between runs
// and machines. The product target is anya/anchor ≤ 0.8 for QEMU start → first HTTP 200.
//
// Each of -runs rounds boots a fresh (sparse) copy of each image, alternating the order
// (anya then anchor, then anchor then anya) so that drifting load hits both alike. Measured:
//
//   - http_s: seconds from starting QEMU to the first HTTP 200 through the forwarded host port
//     (anya: GET /healthz; anchor: GET /). This is what a user waits for, firmware included.
//   - anya only: ready_s, seconds from starting QEMU to the ANYA-READY console line, and the
//     line's boot_ms (kernel start → page ready) and init_ms (PID 1 start → page ready).
//   - first anya boot: setup through the API, then /api/status for the RSS of anyad's
//     processes (PID 1 and the services child) and the guest's memory in use (total −
//     available). First anchor boot: the same guest figure and the RSS of gokrazy's init, read
//     from /proc through the anchor's HTTP server right after it answered.
//   - sizes: anya's update payload (kernel + initramfs + squashfs of one slot) and anyad's
//     binary; the anchor's boot FAT + root squashfs, which is what a gokrazy update writes.
//
// A boot that does not answer HTTP within -timeout fails; failures are reported and left out
// of the medians. Before each boot the command waits (-wait-idle) for QEMUs of other users of
// the machine to end, and marks boots that shared the CPUs with one anyway. Console logs are
// written next to the JSON report. The anchor image is built once with gok from pinned module
// versions (see anchor.go) and cached in $ANYA_CACHE or the user cache dir, under anya/gokrazy.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bootbench:", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	runs     int
	img      string
	anyad    string
	anchor   bool
	jsonPath string
	cache    string
	timeout  time.Duration
	waitIdle time.Duration
}

func run(ctx context.Context) error {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "boots of each image")
	flag.StringVar(&o.img, "img", "out/anya.img", "Anya Edge disk image (make image)")
	flag.StringVar(&o.anyad, "anyad", "", "anyad binary, for its size (default: anyad next to -img)")
	flag.BoolVar(&o.anchor, "anchor", true, "also build (once, cached) and boot the gokrazy anchor")
	flag.StringVar(&o.jsonPath, "json", "out/bench/boot.json", "write the report here")
	flag.StringVar(&o.cache, "cache", "", "cache directory (default $ANYA_CACHE or the user cache dir + /anya)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "a boot not answering HTTP by then fails")
	flag.DurationVar(&o.waitIdle, "wait-idle", 5*time.Minute, "before each boot, wait this long for other QEMUs on the host to end")
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 {
		flag.Usage()
		return errors.New("bad arguments")
	}
	if o.anyad == "" {
		o.anyad = filepath.Join(filepath.Dir(o.img), "anyad")
	}
	if o.cache == "" {
		o.cache = os.Getenv("ANYA_CACHE")
	}
	if o.cache == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		o.cache = filepath.Join(d, "anya")
	}
	if _, err := os.Stat(o.img); err != nil {
		return fmt.Errorf("anya image: %w (run make image)", err)
	}
	logDir := filepath.Join(filepath.Dir(o.jsonPath), "console")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bootbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	rep := &report{Started: time.Now().UTC(), Runs: o.runs, HostCPUs: runtime.NumCPU(), QEMU: qemuVersion(),
		Timeout: o.timeout.String()}
	rep.Anya.Image = o.img
	if rep.Anya.Payload, err = anyaPayload(o.img, o.anyad); err != nil {
		return err
	}
	var anchor *side
	if o.anchor {
		a, err := buildAnchor(ctx, filepath.Join(o.cache, "gokrazy"))
		if err != nil {
			return fmt.Errorf("anchor: %w (use -anchor=false to measure anya alone)", err)
		}
		anchor = &side{Image: a.Image, Build: &a.Build}
		if anchor.Payload, err = anchorPayload(a.Image); err != nil {
			return fmt.Errorf("anchor: %w", err)
		}
		rep.Anchor = anchor
	}

	b := bencher{work: work, logDir: logDir, timeout: o.timeout, waitIdle: o.waitIdle}
	for i := range o.runs {
		order := []string{"anya", "anchor"}
		if i%2 == 1 {
			order = []string{"anchor", "anya"}
		}
		for _, kind := range order {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			switch {
			case kind == "anya":
				r, mem := b.bootAnya(ctx, o.img, i+1, i == 0)
				rep.Anya.Boots = append(rep.Anya.Boots, r)
				if mem != nil {
					rep.Anya.Memory = mem
				}
			case anchor != nil:
				r, mem := b.bootAnchor(ctx, anchor.Image, i+1, i == 0)
				anchor.Boots = append(anchor.Boots, r)
				if mem != nil {
					anchor.Memory = mem
				}
			}
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	rep.summarize()
	rep.print(os.Stdout)
	if err := rep.write(o.jsonPath); err != nil {
		return err
	}
	fmt.Printf("\nreport: %s, console logs: %s\n", o.jsonPath, logDir)
	if rep.Anya.Median.HTTPSeconds == 0 || (anchor != nil && anchor.Median.HTTPSeconds == 0) {
		return errors.New("every boot of an image failed")
	}
	return nil
}

func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "unknown: " + err.Error()
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// report is the JSON written to -json.
type report struct {
	Started  time.Time          `json:"started"`
	QEMU     string             `json:"qemu"`
	HostCPUs int                `json:"host_cpus"`
	Runs     int                `json:"runs"`
	Timeout  string             `json:"timeout"`
	Anya     side               `json:"anya"`
	Anchor   *side              `json:"anchor,omitempty"`
	Ratios   map[string]float64 `json:"ratios_anya_over_anchor,omitempty"`
}

type side struct {
	Image   string        `json:"image"`
	Build   *anchorBuild  `json:"build,omitempty"`
	Payload payload       `json:"payload"`
	Boots   []bootResult  `json:"boots"`
	Failed  int           `json:"failed_boots"`
	Median  bootResult    `json:"median"`
	Memory  *memoryReport `json:"memory,omitempty"`
}

// payload is what an update writes, in bytes.
type payload struct {
	Total      int64 `json:"total_bytes"`
	Kernel     int64 `json:"kernel_bytes,omitempty"`
	Initramfs  int64 `json:"initramfs_bytes,omitempty"`
	System     int64 `json:"system_squashfs_bytes,omitempty"`
	Anyad      int64 `json:"anyad_bytes,omitempty"`
	BootFAT    int64 `json:"boot_fat_bytes,omitempty"`
	RootSquash int64 `json:"root_squashfs_bytes,omitempty"`
}

type memoryReport struct {
	GuestTotal     uint64    `json:"guest_total_bytes"`
	GuestAvailable uint64    `json:"guest_available_bytes"`
	GuestUsed      uint64    `json:"guest_used_bytes"`
	Processes      []process `json:"processes"`
	RSSTotal       uint64    `json:"rss_total_bytes"` // of the processes listed
	When           string    `json:"when"`
}

type process struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	RSSBytes uint64 `json:"rss_bytes"`
}

func (r *report) summarize() {
	sides := []*side{&r.Anya}
	if r.Anchor != nil {
		sides = append(sides, r.Anchor)
	}
	for _, s := range sides {
		var http, ready, boot, init []float64
		for _, b := range s.Boots {
			if b.Error != "" {
				s.Failed++
				continue
			}
			http = append(http, b.HTTPSeconds)
			if b.ReadySeconds > 0 {
				ready = append(ready, b.ReadySeconds)
				boot = append(boot, float64(b.BootMS))
				init = append(init, float64(b.InitMS))
			}
		}
		s.Median = bootResult{HTTPSeconds: median(http), ReadySeconds: median(ready),
			BootMS: int64(median(boot)), InitMS: int64(median(init))}
	}
	if a := r.Anchor; a != nil {
		r.Ratios = map[string]float64{}
		ratio := func(k string, x, y float64) {
			if x > 0 && y > 0 {
				r.Ratios[k] = x / y
			}
		}
		ratio("http", r.Anya.Median.HTTPSeconds, a.Median.HTTPSeconds)
		ratio("payload", float64(r.Anya.Payload.Total), float64(a.Payload.Total))
		if r.Anya.Memory != nil && a.Memory != nil {
			ratio("guest_used", float64(r.Anya.Memory.GuestUsed), float64(a.Memory.GuestUsed))
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if n := len(xs); n%2 == 1 {
		return xs[n/2]
	} else {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
