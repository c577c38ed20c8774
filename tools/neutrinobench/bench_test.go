package neutrinobench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/regtest"
)

var (
	flagBlocks  = flag.Int("blocks", 4000, "height of the regtest chain to sync")
	flagRuns    = flag.Int("runs", 3, "syncs per client, in rotating order")
	flagTxs     = flag.Int("txs", 10, "transactions in each block from height 100+txs on")
	flagOuts    = flag.Int("outs", 4, "outputs (to fresh P2WPKH/P2TR scripts) of each transaction, plus change")
	flagMem     = flag.Bool("mem", true, "also run neutrino-mem: neutrino keeping filters in memory only (lnd's default)")
	flagOut     = flag.String("out", "", "also write the report (markdown) to this file")
	flagTimeout = flag.Duration("sync-timeout", 10*time.Minute, "limit of one sync")
	flagDataDir = flag.String("datadir", "", "parent of the clients' data directories (default: the test's temporary directory; /dev/shm takes fsync out)")
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(ChildEnv); spec != "" {
		os.Exit(ChildMain(spec))
	}
	os.Exit(m.Run())
}

// runSync runs one client in a fresh copy of this binary and returns what it measured.
func runSync(t *testing.T, spec Spec) Result {
	t.Helper()
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(js))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, os.Stderr)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s sync: %v\n%s", spec.Client, err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%s sync: %v\n%s\n%s", spec.Client, err, stdout.String(), stderr.String())
	}
	return r
}

// TestNeutrinoBench builds a regtest chain in one btcd and syncs it with each client from an
// empty data directory, -runs times each in rotating order, then prints the report.
func TestNeutrinoBench(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark")
	}
	n := regtest.Start(t)
	t0 := time.Now()
	hashes, txs, err := buildChain(n, *flagBlocks, *flagTxs, *flagOuts)
	if err != nil {
		t.Fatal(err)
	}
	best, height := n.Best()
	if *best != hashes[len(hashes)-1] || int(height) != *flagBlocks {
		t.Fatalf("btcd at %d/%v, built %d/%v", height, best, *flagBlocks, hashes[len(hashes)-1])
	}
	fbytes, err := filterBytes(n, hashes)
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(t0)
	t.Logf("chain: %d blocks, %d transactions besides coinbases, %d bytes of basic filters, built in %v",
		height, txs, fbytes, built.Round(time.Millisecond))

	// What every client must end with: btcd's filter header of the tip.
	cfh, err := n.RPC().GetCFilterHeader(best, wire.GCSFilterRegular)
	if err != nil {
		t.Fatal(err)
	}
	wantFH := cfh.PrevFilterHeader.String()

	clients := []string{Anya, Neutrino}
	if *flagMem {
		clients = append(clients, NeutrinoMem)
	}
	results := map[string][]Result{}
	for i := range *flagRuns {
		order := append(slices.Clone(clients[i%len(clients):]), clients[:i%len(clients)]...)
		for _, c := range order {
			dir := t.TempDir()
			if *flagDataDir != "" {
				if dir, err = os.MkdirTemp(*flagDataDir, "neutrinobench-"+c+"-"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
			}
			spec := Spec{Client: c, Peer: n.P2PAddr, Dir: dir, Height: height,
				TipHash: best.String(), Timeout: *flagTimeout}
			r := runSync(t, spec)
			if r.TipFHeader != wantFH {
				t.Fatalf("%s: filter header of the tip %s, btcd says %s", c, r.TipFHeader, wantFH)
			}
			wantFilters := int(height) + 1 // genesis too
			if c != Anya {
				wantFilters = int(height) // neutrino never fetches the genesis filter
			}
			if r.Filters != wantFilters {
				t.Fatalf("%s: %d filters stored, want %d;%s", c, r.Filters, wantFilters, r.Note)
			}
			if r.Note != "" {
				t.Logf("%s: %s", c, r.Note)
			}
			t.Logf("run %d %-12s %6.2fs (open %.2f, headers %.2f, cfheaders %.2f, filters verified %.2f) cpu %.2fs alloc %.1f MiB peak heap %.1f MiB live %.1f MiB rss %.1f MiB gc %d disk %.1f MiB",
				i+1, c, r.Total, r.Open, r.Headers, r.CFHeaders, r.Fetched, r.CPU, mib(r.Alloc), mib(r.PeakHeap),
				mib(r.LiveHeap), mib(r.MaxRSS), r.NumGC, float64(r.DiskBytes)/(1<<20))
			results[c] = append(results[c], r)
		}
	}

	report := formatReport(clients, int(height), txs, fbytes, built, results)
	fmt.Print(report)
	if *flagOut != "" {
		if err := os.MkdirAll(filepath.Dir(*flagOut), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*flagOut, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func median(rs []Result, f func(Result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func formatReport(clients []string, height, txs, fbytes int, built time.Duration, results map[string][]Result) string {
	var b strings.Builder
	runs := len(results[Anya])
	fmt.Fprintf(&b, "\n## Light client sync: anya node/p2p vs lightninglabs/neutrino v0.17.1 (lnd v0.21.3-beta's)\n\n")
	fmt.Fprintf(&b, "One btcd %s on loopback serving a regtest chain of %d blocks with %d transactions besides "+
		"coinbases (%d per block from height %d on, each with %d outputs to fresh P2WPKH/P2TR scripts + change; "+
		"built and submitted in %.1fs), %.1f KiB of basic filters in all. Each client syncs from an empty data "+
		"directory (%s) in a fresh process, %d times, in rotating order. Medians; ratio = client / neutrino.\n\n",
		regtest.BtcdVersion, height, txs, *flagTxs, 100+*flagTxs, *flagOuts, built.Seconds(),
		float64(fbytes)/1024, dataFS(), runs)

	get := map[string]func(Result) float64{
		"total": func(r Result) float64 { return r.Total },
		"open":  func(r Result) float64 { return r.Open },
		"sync":  func(r Result) float64 { return r.Total - r.Open },
		"hdr":   func(r Result) float64 { return r.Headers },
		"cfh":   func(r Result) float64 { return r.CFHeaders },
		"fetch": func(r Result) float64 { return r.Fetched },
		"cpu":   func(r Result) float64 { return r.CPU },
		"alloc": func(r Result) float64 { return mib(r.Alloc) },
		"objs":  func(r Result) float64 { return float64(r.Objects) / 1e6 },
		"peak":  func(r Result) float64 { return mib(r.PeakHeap) },
		"live":  func(r Result) float64 { return mib(r.LiveHeap) },
		"rss":   func(r Result) float64 { return mib(r.MaxRSS) },
		"disk":  func(r Result) float64 { return float64(r.DiskBytes) / (1 << 20) },
	}
	ratio := func(c, k string) string {
		n := median(results[Neutrino], get[k])
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", median(results[c], get[k])/n)
	}
	fmt.Fprintf(&b, "| client | blocks | seconds | min–max | ratio | s after open | ratio | CPU s | ratio | allocated MiB | ratio | peak heap MiB | ratio | live heap MiB | max RSS MiB | disk MiB |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range clients {
		rs := results[c]
		lo, hi := rs[0].Total, rs[0].Total
		for _, r := range rs {
			lo, hi = min(lo, r.Total), max(hi, r.Total)
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f–%.2f | %s | %.2f | %s | %.2f | %s | %.1f | %s | %.1f | %s | %.1f | %.1f | %.1f |\n",
			c, height, median(rs, get["total"]), lo, hi, ratio(c, "total"),
			median(rs, get["sync"]), ratio(c, "sync"),
			median(rs, get["cpu"]), ratio(c, "cpu"),
			median(rs, get["alloc"]), ratio(c, "alloc"),
			median(rs, get["peak"]), ratio(c, "peak"),
			median(rs, get["live"]), median(rs, get["rss"]), median(rs, get["disk"]))
	}
	fmt.Fprintf(&b, "\nPhases, seconds since the client was created (medians):\n\n")
	fmt.Fprintf(&b, "| client | store opened | headers at tip | filter headers at tip | all filters verified | all filters stored | heap objects allocated (M) | GCs |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range clients {
		rs := results[c]
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.0f |\n", c, median(rs, get["open"]),
			median(rs, get["hdr"]), median(rs, get["cfh"]), median(rs, get["fetch"]), median(rs, get["total"]),
			median(rs, get["objs"]), median(rs, func(r Result) float64 { return float64(r.NumGC) }))
	}
	fmt.Fprintf(&b, `
What each client did (all: one peer, the same btcd, GOMAXPROCS = %[3]d, logging off, default GOGC,
no wallet scripts, so no filter matching and no block downloads):
- anya (node/p2p.Manager with a storage bbolt DB): headers-first sync validating every header
  with btcd's CheckBlockHeaderSanity/Context; getcfheaders 2000 at a time, chained onto its own
  filter headers; getcfilters 1000 at a time, each filter checked against its filter header and
  stored (node/p2p as of 2026-11: one bbolt transaction per batch of filters), heights 0..%[1]d
  (%[2]d filters). Done when the last filter is stored.
- neutrino (ChainService, walletdb/bdb + header files, PersistToDisk=true): its block manager
  syncs and validates headers, then filter headers (getcfcheckpt, getcfheaders checked against
  the checkpoints); then the benchmark calls GetCFilter(hash, regular, OptimisticBatch()) for
  every height 1..%[1]d (%[1]d filters: neutrino never fetches the genesis filter); a cache miss
  sends one getcfilters for up to 1000 filters, each checked against its filter header, put in
  the in-memory filter cache and queued to the batch writer (10 filters per bbolt Batch call,
  each of which waits bbolt's 10 ms MaxBatchDelay). Done when every filter is in the filter
  database (they reach the writer out of height order: neutrino hands each received message
  to its query in a goroutine of its own).
- neutrino-mem: the same with PersistToDisk=false (lnd's default): filters only in the LRU
  filter cache (default 31 MB, large enough here). Done when the last GetCFilter returned.
- Timed: from creating the client (opening its empty database included) until done. Not timed:
  process start, shutdown, the checks after each run (the client's filter header of the tip
  equals btcd's; every filter is in its store or cache). "s after open" leaves out the
  creation of the empty store (neutrino's header index creates its bbolt sub-buckets). Peak heap = highest "heap objects"
  (live + not yet swept) sampled every 2 ms; live heap = after a forced GC at the end.
`, height, height+1, runtimeProcs())
	return b.String()
}

// dataFS names the file system the clients' data directories are on.
func dataFS() string {
	dir := *flagDataDir
	if dir == "" {
		dir = os.TempDir()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return dir
	}
	switch st.Type {
	case 0x01021994:
		return dir + ", tmpfs"
	case 0xef53:
		return dir + ", ext4"
	}
	return fmt.Sprintf("%s, fs type %#x", dir, st.Type)
}
