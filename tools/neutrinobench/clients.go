package neutrinobench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/btcsuite/btclog"
	"github.com/btcsuite/btcwallet/walletdb"
	_ "github.com/btcsuite/btcwallet/walletdb/bdb" // neutrino's database driver
	"github.com/lightninglabs/neutrino"
	"github.com/lightninglabs/neutrino/filterdb"

	"github.com/anya-edge/anya/node/p2p"
	"github.com/anya-edge/anya/storage"
)

// Client names.
const (
	// Anya is our light client, node/p2p, storing everything in a storage database.
	Anya = "anya"
	// Neutrino is lightninglabs/neutrino writing every filter to its filter database
	// (Config.PersistToDisk), as our client does.
	Neutrino = "neutrino"
	// NeutrinoMem is neutrino keeping filters in its in-memory cache only (lnd's default).
	NeutrinoMem = "neutrino-mem"
)

// ChildEnv is the environment variable through which the benchmark hands a Spec to a copy of
// its own binary, so that each sync runs in a fresh process with its own heap.
const ChildEnv = "NEUTRINOBENCH_CHILD"

// ProfileEnv names a directory: when set, each sync writes CPU and allocation profiles of its
// process there (CLIENT-PID.cpu.pprof, CLIENT-PID.allocs.pprof; they cover shutdown and the
// checks too).
const ProfileEnv = "NEUTRINOBENCH_CPUPROFILE"

// Spec is one sync: which client, which peer, where to keep its data, and the chain it
// must reach.
type Spec struct {
	Client  string        `json:"client"`
	Peer    string        `json:"peer"`
	Dir     string        `json:"dir"` // empty: the client starts from nothing here
	Height  int32         `json:"height"`
	TipHash string        `json:"tip_hash"`
	Timeout time.Duration `json:"timeout"`
}

// Result is what one sync measured. Times are seconds since the client was created.
type Result struct {
	Client string `json:"client"`
	Height int32  `json:"height"`

	Open      float64 `json:"t_open"`      // store created and client constructed, before it connects
	Headers   float64 `json:"t_headers"`   // header tip reached the chain's tip
	CFHeaders float64 `json:"t_cfheaders"` // filter header of the tip known
	Fetched   float64 `json:"t_fetched"`   // every filter received and verified
	Total     float64 `json:"t_total"`     // ... and stored (the figure compared)

	CPU        float64 `json:"cpu_s"`       // user+system CPU of the process up to Total
	Alloc      uint64  `json:"alloc_bytes"` // bytes allocated on the heap up to Total
	Objects    uint64  `json:"alloc_objs"`  // heap objects allocated up to Total
	PeakHeap   uint64  `json:"peak_heap"`   // highest heap in use (live + unswept), sampled every 2 ms
	LiveHeap   uint64  `json:"live_heap"`   // heap still reachable after a forced GC at Total
	MaxRSS     uint64  `json:"max_rss"`     // peak resident set size of the process up to Total
	NumGC      uint32  `json:"num_gc"`      // GC cycles up to Total
	DiskBytes  int64   `json:"disk_bytes"`  // size of the data directory after shutdown
	Filters    int     `json:"filters"`     // filters found in the client's store afterwards
	TipFHeader string  `json:"tip_fheader"` // the client's filter header of the tip
	Note       string  `json:"note,omitempty"`
}

// ChildMain runs the Spec in the environment and prints its Result as JSON on stdout. It
// returns the process exit code.
func ChildMain(specJSON string) int {
	var s Spec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		fmt.Fprintln(os.Stderr, "neutrinobench child:", err)
		return 2
	}
	if dir := os.Getenv(ProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.cpu.pprof", s.Client, os.Getpid())))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		defer func() {
			if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.allocs.pprof", s.Client, os.Getpid()))); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var (
		r   Result
		err error
	)
	switch s.Client {
	case Anya:
		r, err = RunAnya(s)
	case Neutrino, NeutrinoMem:
		r, err = RunNeutrino(s)
	default:
		err = fmt.Errorf("unknown client %q", s.Client)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "neutrinobench child:", s.Client, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, "neutrinobench child:", err)
		return 1
	}
	return 0
}

// meter samples the process's heap while a client syncs.
type meter struct {
	start    time.Time
	ru0      syscall.Rusage
	alloc0   uint64
	objs0    uint64
	gc0      uint32
	mu       sync.Mutex
	peak     uint64
	stop     chan struct{}
	stopped  chan struct{}
	samples  []metrics.Sample
	finished bool
}

const (
	mHeapObjects = "/memory/classes/heap/objects:bytes"
	mAllocBytes  = "/gc/heap/allocs:bytes"
	mAllocObjs   = "/gc/heap/allocs:objects"
)

func newMeter() *meter {
	m := &meter{stop: make(chan struct{}), stopped: make(chan struct{}),
		samples: []metrics.Sample{{Name: mHeapObjects}, {Name: mAllocBytes}, {Name: mAllocObjs}}}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.gc0 = ms.NumGC
	metrics.Read(m.samples)
	m.peak = m.samples[0].Value.Uint64()
	m.alloc0, m.objs0 = m.samples[1].Value.Uint64(), m.samples[2].Value.Uint64()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &m.ru0)
	m.start = time.Now()
	go m.sample()
	return m
}

func (m *meter) sample() {
	defer close(m.stopped)
	s := []metrics.Sample{{Name: mHeapObjects}}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		m.mu.Lock()
		m.peak = max(m.peak, s[0].Value.Uint64())
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

func (m *meter) since() float64 { return time.Since(m.start).Seconds() }

// finish records the totals at the end of the sync into r (before any clean-up work).
func (m *meter) finish(r *Result) {
	r.Total = m.since()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	close(m.stop)
	<-m.stopped
	metrics.Read(m.samples)
	r.PeakHeap = max(m.peak, m.samples[0].Value.Uint64())
	r.Alloc = m.samples[1].Value.Uint64() - m.alloc0
	r.Objects = m.samples[2].Value.Uint64() - m.objs0
	r.CPU = tv(ru.Utime) + tv(ru.Stime) - tv(m.ru0.Utime) - tv(m.ru0.Stime)
	r.MaxRSS = uint64(ru.Maxrss) * 1024 // kilobytes on Linux
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.LiveHeap = ms.HeapAlloc
	r.NumGC = ms.NumGC - m.gc0 - 1 // not the GC just forced
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// poll calls cond every 2 ms until it is true or the deadline passes.
func poll(deadline time.Time, what string, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// RunAnya syncs our light client (node/p2p.Manager with a storage database) from an empty
// data directory until it holds and has verified every header, filter header and filter of
// the chain up to s.Height.
func RunAnya(s Spec) (Result, error) {
	r := Result{Client: Anya, Height: s.Height}
	tip, err := chainhash.NewHashFromStr(s.TipHash)
	if err != nil {
		return r, err
	}
	deadline := time.Now().Add(s.Timeout)
	meter := newMeter()

	db, err := storage.Open(filepath.Join(s.Dir, "anya.db"), storage.Options{})
	if err != nil {
		return r, err
	}
	m, err := p2p.New(p2p.Config{
		Params: &chaincfg.RegressionNetParams,
		Peers:  []string{s.Peer},
		DB:     db,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		db.Close()
		return r, err
	}
	r.Open = meter.since()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	shutdown := func() { cancel(); <-done; db.Close() }

	err = poll(deadline, "headers", func() (bool, error) { return m.Chain().Tip().Hash == *tip, nil })
	if err == nil {
		r.Headers = meter.since()
		err = poll(deadline, "filter headers", func() (bool, error) { _, ok := m.FilterHeader(*tip); return ok, nil })
	}
	if err == nil {
		r.CFHeaders = meter.since()
		// Each filter is checked against its filter header and written to the database
		// before it counts, so the filters are stored once the counter reaches the tip.
		err = poll(deadline, "filters", func() (bool, error) {
			return m.Stats().CFilters >= int64(s.Height)+1 && m.FilterTip().Hash == *tip, nil
		})
	}
	if err != nil {
		shutdown()
		return r, err
	}
	meter.finish(&r)
	r.Fetched = r.Total

	fh, _ := m.FilterHeader(*tip)
	r.TipFHeader = fh.String()
	for h := int32(0); h <= s.Height; h++ {
		hash, _ := m.Chain().HashAt(h)
		if _, err := m.Filter(hash); err == nil {
			r.Filters++
		}
	}
	if st := m.Stats(); st.CFilters != int64(s.Height)+1 || st.Headers != int64(s.Height) {
		r.Note = fmt.Sprintf("received %d headers, %d filters", st.Headers, st.CFilters)
	}
	shutdown()
	r.DiskBytes = dirSize(s.Dir)
	return r, nil
}

// RunNeutrino syncs lightninglabs/neutrino (ChainService with its bbolt database and header
// files) from an empty data directory: its block manager syncs headers and filter headers by
// itself; then GetCFilter is called for every block from height 1 to the tip with
// OptimisticBatch (one getcfilters of up to 1000 filters per cache miss, as neutrino's own
// rescan does), and, for client Neutrino (not NeutrinoMem), until every filter is in its
// filter database.
func RunNeutrino(s Spec) (Result, error) {
	r := Result{Client: s.Client, Height: s.Height}
	persist := s.Client == Neutrino
	tip, err := chainhash.NewHashFromStr(s.TipHash)
	if err != nil {
		return r, err
	}
	deadline := time.Now().Add(s.Timeout)
	if lvl, ok := btclog.LevelFromString(os.Getenv("NEUTRINOBENCH_NEUTRINO_LOG")); ok {
		l := btclog.NewBackend(os.Stderr).Logger("NTRN")
		l.SetLevel(lvl)
		neutrino.UseLogger(l)
	}
	meter := newMeter()

	db, err := walletdb.Create("bdb", filepath.Join(s.Dir, "neutrino.db"), true, time.Minute, false)
	if err != nil {
		return r, err
	}
	cs, err := neutrino.NewChainService(neutrino.Config{
		DataDir:       s.Dir,
		Database:      db,
		ChainParams:   chaincfg.RegressionNetParams,
		ConnectPeers:  []string{s.Peer},
		PersistToDisk: persist,
	})
	if err != nil {
		db.Close()
		return r, err
	}
	r.Open = meter.since()
	if err := cs.Start(context.Background()); err != nil {
		db.Close()
		return r, err
	}
	shutdown := func() { _ = cs.Stop(); db.Close() }

	var hashes []chainhash.Hash // by height, from 1
	err = poll(deadline, "headers", func() (bool, error) {
		h, _, err := cs.BlockHeaders.ChainTip()
		return err == nil && h.BlockHash() == *tip, nil
	})
	if err == nil {
		r.Headers = meter.since()
		err = poll(deadline, "filter headers", func() (bool, error) {
			_, h, err := cs.RegFilterHeaders.ChainTip()
			return err == nil && h == uint32(s.Height), nil
		})
	}
	if err == nil {
		r.CFHeaders = meter.since()
		for h := int32(1); h <= s.Height && err == nil; h++ {
			var hdr *wire.BlockHeader
			hdr, err = cs.BlockHeaders.FetchHeaderByHeight(uint32(h))
			if err != nil {
				break
			}
			hashes = append(hashes, hdr.BlockHash())
			_, err = cs.GetCFilter(hashes[h-1], wire.GCSFilterRegular, neutrino.OptimisticBatch())
			if err != nil {
				err = fmt.Errorf("GetCFilter at %d: %w", h, err)
			}
		}
	}
	if err == nil {
		r.Fetched = meter.since()
		if persist {
			// Every filter was queued to the batch writer (10 per transaction, or
			// after 500 ms) before its GetCFilter query finished, but not in height
			// order: neutrino hands each received message to its query in a goroutine
			// of its own. So wait until every filter is in the database, checking each
			// height once, in order, from the lowest not yet seen.
			next := 0
			err = poll(deadline, "filters in the database", func() (bool, error) {
				for ; next < len(hashes); next++ {
					_, err := cs.FilterDB.FetchFilter(&hashes[next], filterdb.RegularFilter)
					if errors.Is(err, filterdb.ErrFilterNotFound) {
						return false, nil
					}
					if err != nil {
						return false, err
					}
				}
				return true, nil
			})
		}
	}
	if err != nil {
		shutdown()
		return r, err
	}
	meter.finish(&r)

	fh, _, _ := cs.RegFilterHeaders.ChainTip()
	r.TipFHeader = fh.String()
	for i := 0; i < len(hashes) && persist; i++ {
		if _, err := cs.FilterDB.FetchFilter(&hashes[i], filterdb.RegularFilter); err == nil {
			r.Filters++
		} else if len(r.Note) < 200 {
			r.Note += fmt.Sprintf(" missing %d (%v);", i+1, err)
		}
	}
	if !persist {
		r.Filters = cs.FilterCache.Len()
	}
	shutdown()
	r.DiskBytes = dirSize(s.Dir)
	return r, nil
}

// GOMAXPROCS reports the parallelism the clients run with.
func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
