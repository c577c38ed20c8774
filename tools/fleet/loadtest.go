package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
)

// LoadConfig configures LoadTest.
type LoadConfig struct {
	Devices     int           // simulated devices (2000 when zero)
	Requests    int           // signed check-ins in all, split over the rounds (20000 when zero)
	Rounds      int           // alternations of anchor and fleet phases (5 when zero)
	Duration    time.Duration // upper bound of each measured phase (30 s when zero)
	Concurrency int           // requests in flight (32 when zero; at most Devices/2)
	Dir         string        // work directory; a temporary one (removed after) when empty
}

// Phase is the result of one measured phase.
type Phase struct {
	Name      string        `json:"name"`
	Requests  int           `json:"requests"`
	Errors    int           `json:"errors"`
	Elapsed   time.Duration `json:"elapsed"`
	PerSecond float64       `json:"per_second"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	FirstErr  string        `json:"first_error,omitempty"`
	marked    int
}

func (p Phase) String() string {
	s := fmt.Sprintf("%-22s %8d requests in %6.2fs = %8.0f/s   p50 %7v  p99 %7v  errors %d", p.Name, p.Requests,
		p.Elapsed.Seconds(), p.PerSecond, p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond), p.Errors)
	if p.FirstErr != "" {
		s += " (first: " + p.FirstErr + ")"
	}
	return s
}

// LoadResult is what LoadTest measured.
type LoadResult struct {
	Devices, Concurrency int
	Enroll               Phase
	// Rounds alternate the anchor (the no-op handler) and the fleet server on the same
	// requests: Anchors[i] ran just before CheckIns[i].
	Anchors, CheckIns []Phase
	// Anchor and CheckIn sum the rounds; Ratio is CheckIn.PerSecond / Anchor.PerSecond, and
	// RoundRatios the same per round (their spread shows how noisy the machine was).
	Anchor, CheckIn Phase
	Ratio           float64
	RoundRatios     []float64
	Offered         int // check-ins answered with an offer
}

// total sums phases.
func total(name string, ps []Phase) Phase {
	t := Phase{Name: name}
	var lat50, lat99 []time.Duration
	for _, p := range ps {
		t.Requests += p.Requests
		t.Errors += p.Errors
		t.Elapsed += p.Elapsed
		t.marked += p.marked
		lat50, lat99 = append(lat50, p.P50), append(lat99, p.P99)
		if t.FirstErr == "" {
			t.FirstErr = p.FirstErr
		}
	}
	if t.Elapsed > 0 {
		t.PerSecond = float64(t.Requests) / t.Elapsed.Seconds()
	}
	// Medians of the rounds' percentiles.
	slices.Sort(lat50)
	slices.Sort(lat99)
	if len(ps) > 0 {
		t.P50, t.P99 = lat50[len(lat50)/2], lat99[len(lat99)/2]
	}
	return t
}

// LoadTest measures the server's check-ins per second on loopback: a server on a bbolt store
// in a temporary directory, with a signed release in the stable channel at 20 %, and Devices
// simulated devices with software keys, enrolled first (through the client, measured too).
// Then Requests check-ins, round-robin over the devices, are signed before the clock starts
// (each with its own nonce; the phases take seconds, well within the freshness window) and
// sent from Concurrency workers over keep-alive connections, until all are answered or
// Duration passes. The anchor is a plain net/http server on another loopback port, with the
// same timeouts, whose handler reads the body and answers {"offer":null}; it gets the same
// bytes from the same workers, before and after the fleet phase, in the same run. So the
// ratio is the server's own cost: parsing, signature verification, the replay check, the
// rollout decision and the durable commit. Clients and server share this machine's CPUs.
func LoadTest(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 2000
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 20000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	cfg.Rounds = min(cfg.Rounds, cfg.Requests)
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	cfg.Concurrency = max(1, min(cfg.Concurrency, cfg.Devices/2))
	res := LoadResult{Devices: cfg.Devices, Concurrency: cfg.Concurrency}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "anya-fleet-load-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	relDir := filepath.Join(dir, "releases")
	root, err := SignDemo(filepath.Join(dir, "keys"), relDir, "amd64", 2)
	if err != nil {
		return res, err
	}
	store, err := OpenBoltStore(filepath.Join(dir, "fleet.db"))
	if err != nil {
		return res, err
	}
	defer store.Close()
	adminToken := "load-test-admin-token-0123456789"
	srv, err := New(Config{Store: store, Root: root, Releases: relDir, AdminToken: adminToken,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return res, err
	}
	defer srv.Close()

	fleetURL, stopFleet, err := serveLoopback(srv.Handler())
	if err != nil {
		return res, err
	}
	defer stopFleet()
	anchorURL, stopAnchor, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"offer":null}`)
	}))
	if err != nil {
		return res, err
	}
	defer stopAnchor()

	p20 := 20.0
	if _, err := srv.AddRelease(ctx, AddRelease{Channel: "stable", Dir: "stable-2", Percent: &p20}); err != nil {
		return res, err
	}
	tok, err := srv.CreateToken(ctx, TokenRequest{Label: "load test", Uses: cfg.Devices})
	if err != nil {
		return res, err
	}

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, IdleConnTimeout: time.Minute}}
	keys := make([]*dev.SoftwareKey, cfg.Devices)
	ids := make([]string, cfg.Devices)
	for i := range keys {
		if keys[i], err = dev.GenerateSoftwareKey(); err != nil {
			return res, err
		}
		ids[i], _ = dev.DeviceID(keys[i].Public())
	}
	hw := dev.Hardware{Arch: "amd64", Model: "load test"}
	res.Enroll = runPhase(ctx, "enroll (client)", cfg.Concurrency, time.Hour, len(keys), func(i int) (bool, error) {
		c, err := dev.NewClient(fleetURL, keys[i], dev.Options{HTTP: hc})
		if err != nil {
			return false, err
		}
		_, err = c.Enroll(ctx, tok.Secret, hw, "")
		return false, err
	})
	if res.Enroll.Errors > 0 {
		return res, fmt.Errorf("load test: %d enrollments failed: %s", res.Enroll.Errors, res.Enroll.FirstErr)
	}

	// The signed check-ins, round-robin over the devices.
	body, err := json.Marshal(dev.Report{Version: "1.1.0", Counter: 1, Slot: "a", Arch: "amd64", Health: dev.HealthOK})
	if err != nil {
		return res, err
	}
	auths := make([]string, cfg.Requests)
	var signWG sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		signWG.Go(func() {
			for i := w; i < len(auths); i += runtime.GOMAXPROCS(0) {
				a, err := dev.SignRequest(keys[i%len(keys)], rand.Reader, http.MethodPost, dev.CheckInPath, ids[i%len(keys)], time.Now(), body)
				if err == nil {
					auths[i] = a.Header()
				}
			}
		})
	}
	signWG.Wait()
	send := func(base string) func(i int) (bool, error) {
		url := strings.TrimSuffix(base, "/") + dev.CheckInPath
		return func(i int) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return false, err
			}
			req.Header.Set("Authorization", auths[i])
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			var r dev.CheckInResponse
			err = json.NewDecoder(io.LimitReader(resp.Body, dev.MaxBodySize)).Decode(&r)
			if resp.StatusCode != http.StatusOK {
				return false, fmt.Errorf("%s", resp.Status)
			}
			return r.Offer != nil, err
		}
	}
	// Each round sends one slice of the signed requests, to the anchor and then to the server.
	per := len(auths) / cfg.Rounds
	for r := range cfg.Rounds {
		lo, hi := r*per, (r+1)*per
		if r == cfg.Rounds-1 {
			hi = len(auths)
		}
		slice := func(f func(int) (bool, error)) func(int) (bool, error) {
			return func(i int) (bool, error) { return f(lo + i) }
		}
		a := runPhase(ctx, fmt.Sprintf("round %d: anchor", r+1), cfg.Concurrency, cfg.Duration, hi-lo, slice(send(anchorURL)))
		c := runPhase(ctx, fmt.Sprintf("round %d: fleet", r+1), cfg.Concurrency, cfg.Duration, hi-lo, slice(send(fleetURL)))
		res.Anchors, res.CheckIns = append(res.Anchors, a), append(res.CheckIns, c)
		if a.PerSecond > 0 {
			res.RoundRatios = append(res.RoundRatios, c.PerSecond/a.PerSecond)
		}
	}
	res.Anchor = total("anchor (no-op handler)", res.Anchors)
	res.CheckIn = total("fleet check-in", res.CheckIns)
	res.Offered = res.CheckIn.marked
	if res.Anchor.PerSecond > 0 {
		res.Ratio = res.CheckIn.PerSecond / res.Anchor.PerSecond
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.CheckIn.Errors > 0 {
		return res, fmt.Errorf("load test: %d check-ins failed: %s", res.CheckIn.Errors, res.CheckIn.FirstErr)
	}
	return res, nil
}

// runPhase calls fn(i) for i = 0, 1, ..., n-1 from workers goroutines, stopping early when
// d has passed, and measures it. fn's true results are counted in Phase.marked.
func runPhase(ctx context.Context, name string, workers int, d time.Duration, n int, fn func(i int) (bool, error)) Phase {
	var (
		next     atomic.Int64
		errs     atomic.Int64
		marked   atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n || !time.Now().Before(deadline) {
					break
				}
				t := time.Now()
				m, err := fn(i)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if m {
					marked.Add(1)
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	p := Phase{Name: name, Requests: len(lat), Errors: int(errs.Load()), Elapsed: time.Since(start), marked: int(marked.Load())}
	if s, ok := firstErr.Load().(string); ok {
		p.FirstErr = s
	}
	p.PerSecond = float64(p.Requests) / p.Elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		p.P50 = lat[len(lat)/2]
		p.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return p
}

// serveLoopback serves h on a free loopback port with NewHTTPServer's settings.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := NewHTTPServer(ln.Addr().String(), h, nil)
	srv.ErrorLog = nil
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String() + "/", stop, nil
}

// SignDemo creates a signing directory in keys (if there is none) and signs one release per
// counter into releases/stable-<counter>/, with small payloads: release n is version
// "1.<n>.0". It returns the trusted root. For the load test and the tests.
func SignDemo(keys, releases, arch string, counters ...uint64) ([]byte, error) {
	repo, err := publish.Open(keys)
	if errors.Is(err, os.ErrNotExist) {
		repo, err = publish.Keygen(keys, publish.KeygenOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("demo release keys: %w", err)
	}
	for _, n := range counters {
		version := "1." + strconv.FormatUint(n, 10) + ".0"
		m, err := json.Marshal(release.Manifest{Version: version, Counter: n, Arch: arch, Epoch: 1767225600})
		if err != nil {
			return nil, err
		}
		payload := func(kind string) io.Reader {
			return bytes.NewReader(bytes.Repeat([]byte(kind+" "+version+"\n"), 64))
		}
		_, err = repo.Sign(filepath.Join(releases, "stable-"+strconv.FormatUint(n, 10)), []publish.Release{{
			Arch: arch, Version: version, Counter: n,
			Payloads: map[release.Kind]io.Reader{release.KindRelease: bytes.NewReader(m),
				release.KindKernel: payload("kernel"), release.KindInitrd: payload("initrd"), release.KindSystem: payload("system")},
		}}, publish.SignOptions{})
		if err != nil {
			return nil, fmt.Errorf("sign demo release %d: %w", n, err)
		}
	}
	root, err := os.ReadFile(filepath.Join(keys, "roots", "1.root.json"))
	if err != nil {
		return nil, fmt.Errorf("demo release root: %w", err)
	}
	return root, nil
}
