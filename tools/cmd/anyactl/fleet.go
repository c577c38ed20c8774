package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anya-edge/anya/tools/fleet"
)

const (
	defaultFleetData   = "fleet-data"
	defaultFleetServer = "http://127.0.0.1:8443"
)

func defaultAdminTokenFile() string { return filepath.Join(defaultFleetData, "admin.token") }

// readAdminToken reads the admin token file; create makes one (0600) if there is none.
func readAdminToken(path string, create bool) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		tok := base64.RawURLEncoding.EncodeToString(raw)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		if _, err := f.WriteString(tok + "\n"); err != nil {
			f.Close()
			return "", fmt.Errorf("admin token: %w", err)
		}
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		fmt.Fprintf(os.Stderr, "created admin token file %s\n", path)
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func fleetServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	data := fs.String("data", defaultFleetData, "state directory (fleet.db; admin.token by default)")
	releases := fs.String("releases", "", "bundle directories: a local directory served under /releases/, or the http(s) base URL of a CDN (default DATA/releases)")
	tokenFile := fs.String("admin-token", "", "admin bearer token file, created if missing (default DATA/admin.token)")
	rootFile := fs.String("root", "", "the fleet's trusted root metadata (1.root.json of the signing directory; default DATA/root.json)")
	poll := fs.Duration("poll", time.Hour, "check-in interval suggested to boxes")
	window := fs.Duration("window", 5*time.Minute, "accepted clock difference of signed requests")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM); with -tls-key serves HTTPS")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	fs.Parse(args)
	if *releases == "" {
		*releases = filepath.Join(*data, "releases")
	}
	if *tokenFile == "" {
		*tokenFile = filepath.Join(*data, "admin.token")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	tok, err := readAdminToken(*tokenFile, true)
	if err != nil {
		return err
	}
	var root []byte
	if *rootFile == "" {
		p := filepath.Join(*data, "root.json")
		if _, err := os.Stat(p); err == nil {
			*rootFile = p
		}
	}
	if *rootFile != "" {
		if root, err = os.ReadFile(*rootFile); err != nil {
			return fmt.Errorf("fleet serve: trusted root: %w", err)
		}
	} else {
		log.Warn("no trusted root (-root): releases cannot be added until there is one")
	}
	store, err := fleet.OpenBoltStore(filepath.Join(*data, "fleet.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := fleet.New(fleet.Config{Store: store, Root: root, Releases: *releases, AdminToken: tok,
		Poll: *poll, Window: *window, Log: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("fleet serve: %w", err)
	}
	hs := fleet.NewHTTPServer(*listen, srv.Handler(), log)
	go srv.Run(ctx, time.Minute)
	errc := make(chan error, 1)
	go func() {
		if *cert != "" || *key != "" {
			errc <- hs.ServeTLS(ln, *cert, *key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	log.Info("fleet server up", "url", scheme+"://"+ln.Addr().String()+"/", "admin", scheme+"://"+ln.Addr().String()+"/admin/",
		"data", *data, "releases", *releases, "admin_token_file", *tokenFile)
	select {
	case err := <-errc:
		return fmt.Errorf("fleet serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// adminFlags adds -server and -admin-token and returns a function making the client.
func adminFlags(fs *flag.FlagSet) func() (*fleet.AdminClient, error) {
	server := fs.String("server", defaultFleetServer, "fleet server URL")
	tokenFile := fs.String("admin-token", defaultAdminTokenFile(), "admin bearer token file")
	return func() (*fleet.AdminClient, error) {
		tok, err := readAdminToken(*tokenFile, false)
		if err != nil {
			return nil, err
		}
		return &fleet.AdminClient{URL: *server, Token: tok, HTTP: &http.Client{Timeout: 2 * time.Minute}}, nil
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fleetToken(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet token", flag.ExitOnError)
	client := adminFlags(fs)
	var req fleet.TokenRequest
	fs.IntVar(&req.Uses, "uses", 1, "how many boxes may enroll with it")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity")
	fs.StringVar(&req.Channel, "channel", "stable", "channel of the boxes it enrolls")
	fs.StringVar(&req.Label, "label", "", "note for the inventory")
	list := fs.Bool("list", false, "list the tokens instead")
	revoke := fs.String("revoke", "", "revoke the token with this id instead")
	fs.Parse(args)
	c, err := client()
	if err != nil {
		return err
	}
	switch {
	case *list:
		ts, err := c.Tokens(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tLABEL\tCHANNEL\tUSED\tEXPIRES")
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\n", t.ID, t.Label, t.Channel, t.Used, t.Uses, t.Expires.Format(time.RFC3339))
		}
		return w.Flush()
	case *revoke != "":
		return c.RevokeToken(ctx, *revoke)
	}
	req.TTL = fleet.Duration(*ttl)
	t, err := c.CreateToken(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "token %s: channel %s, %d use(s), valid until %s\n", t.Token.ID, t.Token.Channel, t.Token.Uses, t.Token.Expires.Format(time.RFC3339))
	fmt.Println(t.Secret)
	return nil
}

func parseSteps(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("-steps: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

func fleetRelease(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("fleet release: add, list, show, pause, resume or widen")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("fleet release "+sub, flag.ExitOnError)
	client := adminFlags(fs)
	def := fleet.DefaultPolicy()
	var (
		channel    = fs.String("channel", "stable", "channel (add)")
		dir        = fs.String("dir", "", "bundle directory, relative to the server's releases directory or URL (add)")
		percent    = fs.Float64("percent", -1, "initial rollout percentage (add; default: the first step) or target (widen; default: the next step)")
		steps      = fs.String("steps", "5,25,100", "automatic rollout steps in percent, empty for manual widening (add)")
		minSucc    = fs.Int("min-successes", def.MinSuccesses, "successes per step before the next (add)")
		soak       = fs.Duration("soak", time.Duration(def.Soak), "time per step before the next (add)")
		threshold  = fs.Float64("failure-threshold", def.FailureThreshold, "pause when more than this share of attempts failed (add)")
		minAttempt = fs.Int("min-attempts", def.MinAttempts, "attempts before the failure rate counts (add)")
		paused     = fs.Bool("paused", false, "add the release paused")
		id         = fs.String("id", "", "release id, e.g. stable-12 (show, pause, resume, widen)")
		reason     = fs.String("reason", "", "why (pause)")
		asJSON     = fs.Bool("json", false, "print JSON")
	)
	fs.Parse(args)
	c, err := client()
	if err != nil {
		return err
	}
	var pct *float64
	if *percent >= 0 {
		pct = percent
	}
	var r fleet.Release
	switch sub {
	case "add":
		st, err := parseSteps(*steps)
		if err != nil {
			return err
		}
		p := fleet.Policy{Steps: st, MinSuccesses: *minSucc, Soak: fleet.Duration(*soak), FailureThreshold: *threshold, MinAttempts: *minAttempt}
		if r, err = c.AddRelease(ctx, fleet.AddRelease{Channel: *channel, Dir: *dir, Percent: pct, Policy: &p, Paused: *paused}); err != nil {
			return err
		}
	case "list":
		rs, err := c.Releases(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(rs)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tVERSION\tARCHS\tPERCENT\tSTATE\tATTEMPTED\tOK\tFAILED\tDIR")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%g%%\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Version, strings.Join(r.Archs, ","), r.Rollout.Percent,
				r.Rollout.State, r.Rollout.Attempted, r.Rollout.Succeeded, r.Rollout.Failed, r.Dir)
		}
		return w.Flush()
	case "show":
		d, err := c.Release(ctx, *id)
		if err != nil {
			return err
		}
		return printJSON(d)
	case "pause":
		r, err = c.Pause(ctx, *id, *reason)
	case "resume":
		r, err = c.Resume(ctx, *id)
	case "widen":
		r, err = c.Widen(ctx, *id, pct)
	default:
		return fmt.Errorf("fleet release: unknown subcommand %q (add, list, show, pause, resume, widen)", sub)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	fmt.Printf("%s: %s (#%d) for %s, %g%% %s", r.ID, r.Version, r.Counter, strings.Join(r.Archs, ","), r.Rollout.Percent, r.Rollout.State)
	if r.Rollout.PausedReason != "" {
		fmt.Printf(" (%s)", r.Rollout.PausedReason)
	}
	fmt.Println()
	return nil
}

func fleetDevices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet devices", flag.ExitOnError)
	client := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	remove := fs.String("remove", "", "remove the device with this id instead")
	fs.Parse(args)
	c, err := client()
	if err != nil {
		return err
	}
	if *remove != "" {
		return c.RemoveDevice(ctx, *remove)
	}
	ds, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(ds)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tCHANNEL\tVERSION\tSLOT\tHEALTH\tLAST CHECK-IN\tKEY\tLAST ERROR")
	for _, d := range ds {
		seen := "never"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Channel, d.Report.Version, d.Report.Slot, d.Report.Health,
			seen, d.Attestation, d.Report.LastError)
	}
	return w.Flush()
}

func fleetLoadtest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet loadtest", flag.ExitOnError)
	var cfg fleet.LoadConfig
	fs.IntVar(&cfg.Devices, "devices", 2000, "simulated devices (each checks in requests/devices times)")
	fs.IntVar(&cfg.Requests, "requests", 20000, "signed check-ins in all, split over the rounds")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "alternations of the no-op anchor and the fleet server")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "upper bound of each measured phase")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "requests in flight")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Parse(args)
	res, err := fleet.LoadTest(ctx, cfg)
	if *asJSON && err == nil {
		return printJSON(res)
	}
	fmt.Printf("fleet server load test on loopback: %d devices, %d in flight, %d pre-signed check-ins in %d rounds\n",
		res.Devices, res.Concurrency, cfg.Requests, cfg.Rounds)
	fmt.Println(res.Enroll)
	for i := range res.CheckIns {
		fmt.Println(res.Anchors[i])
		fmt.Println(res.CheckIns[i])
	}
	fmt.Println(res.Anchor)
	fmt.Println(res.CheckIn)
	if res.CheckIn.Requests > 0 {
		rr := slices.Clone(res.RoundRatios)
		slices.Sort(rr)
		fmt.Printf("check-ins per second: %.0f; no-op anchor: %.0f/s; ratio %.3f (per round: median %.3f, range %.3f-%.3f)\n",
			res.CheckIn.PerSecond, res.Anchor.PerSecond, res.Ratio, rr[len(rr)/2], rr[0], rr[len(rr)-1])
	}
	return err
}
