// Command lnbench measures the box's Lightning graph at mainnet scale, with ratios against
// anchors measured in the same run, so that figures compare across machines and load:
//
//	go run ./tools/cmd/gossipgen -o gossip.bin   # once (about a minute)
//	go run ./tools/cmd/lnbench -in gossip.bin [-routes 1000] [-json out.json]
//
// (without -in it generates the mainnet-sized set in memory first).
//
//   - ingest: every message through gossip.Ingester (full validation: the four signatures
//     of each channel_announcement, each channel_update's and node_announcement's, ordering,
//     monotonic timestamps) into a fresh bbolt database through package storage, in batches
//     of 512 as a peer session makes them. There is no chain backend: funding outputs are
//     not checked (that costs a block fetch per channel, see package gossip).
//   - anchor: the bare ECDSA verification of the same signatures on all cores, with digests
//     and keys prepared beforehand. ingest/anchor is the overhead of everything else
//     (decoding into the graph, key parsing, storage, fsyncs); the target is ≤ 2.
//   - reload: loading the stored graph into memory (what a restart costs).
//   - routes: random source/target pairs among nodes with channels and log-uniform amounts
//     (1,000 to 1,000,000 sat): single-path Find and MPP Split, latency p50/p99 and how many
//     found a route.
//     Anchor: a breadth-first walk of the whole graph (every node and channel once) under
//     the same lock; Find's p50 is reported as a ratio to it.
//   - memory: Go heap in use with the graph loaded (after GC), and the process's peak RSS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/anya-edge/anya/node/lightning/gossip"
	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/graphdb"
	"github.com/anya-edge/anya/node/lightning/route"
	"github.com/anya-edge/anya/storage"
	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Report is the benchmark's result.
type Report struct {
	Messages   int     `json:"messages"`
	Signatures int     `json:"signatures"`
	Cores      int     `json:"cores"`
	AnchorS    float64 `json:"anchor_s"`
	IngestS    float64 `json:"ingest_s"`
	Ratio      float64 `json:"ingest_over_anchor"`
	ReloadS    float64 `json:"reload_s"`
	DBBytes    int64   `json:"db_bytes"`
	Graph      graph.Stats
	MaxDegree  int     `json:"max_degree"`
	MedDegree  int     `json:"median_degree"`
	Routes     int     `json:"routes"`
	FindP50ms  float64 `json:"find_p50_ms"`
	FindP99ms  float64 `json:"find_p99_ms"`
	FindOK     int     `json:"find_ok"`
	SplitP50ms float64 `json:"split_p50_ms"`
	SplitP99ms float64 `json:"split_p99_ms"`
	SplitOK    int     `json:"split_ok"`
	SplitParts float64 `json:"split_mean_parts"`
	// ScanP50ms is the route anchor; FindOverScan is Find's p50 over it.
	ScanP50ms    float64 `json:"scan_p50_ms"`
	FindOverScan float64 `json:"find_p50_over_scan_p50"`
	HeapMB       float64 `json:"heap_mb"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
}

func main() {
	in := flag.String("in", "", "gossip file from tools/cmd/gossipgen (default: generate mainnet-sized in memory)")
	nRoutes := flag.Int("routes", 1000, "random route queries")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	flag.Parse()
	chain := *chaincfg.RegressionNetParams.GenesisHash

	var msgs []lnwire.Message
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		msgs, err = gossipgen.Read(f)
		f.Close()
		if err != nil {
			log.Fatal(err)
		}
	} else {
		set, err := gossipgen.Generate(gossipgen.Mainnet(chain, uint32(time.Now().Unix())))
		if err != nil {
			log.Fatal(err)
		}
		msgs = set.Messages()
	}
	r := Report{Messages: len(msgs), Cores: runtime.GOMAXPROCS(0), Routes: *nRoutes}

	// Anchor: bare verification of the same signatures.
	jobs := prepare(msgs)
	r.Signatures = len(jobs)
	runtime.GC()
	t0 := time.Now()
	bad := 0
	gossip.Parallel(len(jobs), func(i int) {
		if !jobs[i].sig.Verify(jobs[i].digest, jobs[i].key) {
			bad++ // never happens with a valid set; racy count is fine for a sanity check
		}
	})
	r.AnchorS = time.Since(t0).Seconds()
	if bad > 0 {
		log.Fatalf("%d signatures of the set do not verify", bad)
	}
	jobs = nil

	// Ingest with full validation into a fresh database.
	dir, err := os.MkdirTemp("", "lnbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "anya.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store, err := graphdb.Open(db)
	if err != nil {
		log.Fatal(err)
	}
	g := graph.New()
	ing := gossip.NewIngester(gossip.IngesterConfig{Chain: chain, Graph: g, Store: store})
	runtime.GC()
	t0 = time.Now()
	for i := 0; i < len(msgs); i += gossip.DefaultBatchSize {
		res, err := ing.Process(context.Background(), msgs[i:min(i+gossip.DefaultBatchSize, len(msgs))])
		if err != nil {
			log.Fatal(err)
		}
		if res.Invalid != nil {
			log.Fatalf("valid set rejected: %v", res.Invalid)
		}
	}
	r.IngestS = time.Since(t0).Seconds()
	r.Ratio = r.IngestS / r.AnchorS
	r.Graph = g.Stats()
	db.Close()
	if st, err := os.Stat(path); err == nil {
		r.DBBytes = st.Size()
	}

	// Reload into a new graph.
	msgs = nil
	g = nil
	ing = nil
	db, err = storage.Open(path, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err = graphdb.Open(db)
	if err != nil {
		log.Fatal(err)
	}
	g = graph.New()
	t0 = time.Now()
	if _, _, err := store.Load(g); err != nil {
		log.Fatal(err)
	}
	r.ReloadS = time.Since(t0).Seconds()
	if got := g.Stats(); got.Channels != r.Graph.Channels || got.Policies != r.Graph.Policies {
		log.Fatalf("reloaded graph %+v differs from the ingested %+v", got, r.Graph)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapMB = float64(ms.HeapAlloc) / 1e6

	// Degrees and route queries.
	var ids []graph.NodeID
	var degrees []int
	g.View(func(v graph.View) {
		for i := range int32(v.NumNodes()) {
			if d := len(v.Edges(i)); d > 0 {
				ids = append(ids, v.ID(i))
				degrees = append(degrees, d)
			}
		}
	})
	slices.Sort(degrees)
	r.MaxDegree, r.MedDegree = degrees[len(degrees)-1], degrees[len(degrees)/2]
	f := &route.Finder{Graph: g, Model: route.NewModel()}
	rng := rand.New(rand.NewPCG(1, 2))
	var find, split []float64
	parts := 0
	for range *nRoutes {
		src, dst := ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))]
		if src == dst {
			continue
		}
		sat := uint64(math.Exp(math.Log(1000) + rng.Float64()*(math.Log(1_000_000)-math.Log(1000))))
		req := route.Request{Source: src, Target: dst, Amount: sat * 1000, CurrentHeight: 800_000}
		t := time.Now()
		if _, err := f.Find(req); err == nil {
			r.FindOK++
		}
		find = append(find, ms1(time.Since(t)))
		t = time.Now()
		if p, err := f.Split(req, route.SplitOptions{Granularity: 1000}); err == nil {
			r.SplitOK++
			parts += len(p.Parts)
		}
		split = append(split, ms1(time.Since(t)))
	}
	// Anchor for route finding: a breadth-first walk of the whole graph from a random node
	// under the same read lock (every node and channel visited once, no arithmetic).
	var scan []float64
	for range 50 {
		start := ids[rng.IntN(len(ids))]
		t := time.Now()
		g.View(func(v graph.View) {
			seen := make([]bool, v.NumNodes())
			s, _ := v.Index(start)
			queue := []int32{s}
			seen[s] = true
			for len(queue) > 0 {
				x := queue[0]
				queue = queue[1:]
				for _, c := range v.Edges(x) {
					a, b := v.Ends(c)
					if a == x {
						a = b
					}
					if !seen[a] {
						seen[a] = true
						queue = append(queue, a)
					}
				}
			}
		})
		scan = append(scan, ms1(time.Since(t)))
	}
	r.ScanP50ms = pct(scan, 50)
	r.FindP50ms, r.FindP99ms = pct(find, 50), pct(find, 99)
	r.FindOverScan = r.FindP50ms / r.ScanP50ms
	r.SplitP50ms, r.SplitP99ms = pct(split, 50), pct(split, 99)
	if r.SplitOK > 0 {
		r.SplitParts = float64(parts) / float64(r.SplitOK)
	}
	r.PeakRSSMB = peakRSS()

	fmt.Printf("messages %d (%d signatures) on %d cores\n", r.Messages, r.Signatures, r.Cores)
	fmt.Printf("graph: %d nodes (%d announced), %d channels, %d policies; degree median %d, max %d; db %.1f MB\n",
		r.Graph.Nodes, r.Graph.Announced, r.Graph.Channels, r.Graph.Policies, r.MedDegree, r.MaxDegree, float64(r.DBBytes)/1e6)
	fmt.Printf("anchor (bare ECDSA verify, all cores): %.2f s\n", r.AnchorS)
	fmt.Printf("ingest (full validation + bbolt):      %.2f s   ratio %.2f\n", r.IngestS, r.Ratio)
	fmt.Printf("reload from bbolt: %.2f s; heap with graph %.0f MB; peak RSS %.0f MB\n", r.ReloadS, r.HeapMB, r.PeakRSSMB)
	fmt.Printf("route anchor (BFS over the whole graph): p50 %.2f ms\n", r.ScanP50ms)
	fmt.Printf("route Find  (%d queries, %d found): p50 %.2f ms  p99 %.2f ms   p50/anchor %.1f\n", len(find), r.FindOK, r.FindP50ms, r.FindP99ms, r.FindOverScan)
	fmt.Printf("route Split (%d queries, %d found, %.1f parts): p50 %.2f ms  p99 %.2f ms\n", len(split), r.SplitOK, r.SplitParts, r.SplitP50ms, r.SplitP99ms)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type sigJob struct {
	key    *btcec.PublicKey
	sig    *ecdsa.Signature
	digest []byte
}

// prepare extracts every signature of msgs with its key and digest (the anchor's input).
func prepare(msgs []lnwire.Message) []sigJob {
	var jobs []sigJob
	updKeys := make(map[lnwire.ShortChannelID][2][33]byte)
	add := func(raw [33]byte, s lnwire.Sig, digest []byte) {
		k, err := btcec.ParsePubKey(raw[:])
		if err != nil {
			log.Fatal(err)
		}
		sig, err := s.ToSignature()
		if err != nil {
			log.Fatal(err)
		}
		jobs = append(jobs, sigJob{k, sig.(*ecdsa.Signature), digest})
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *lnwire.ChannelAnnouncement1:
			data, _ := m.DataToSign()
			d := chainhash.DoubleHashB(data)
			add(m.NodeID1, m.NodeSig1, d)
			add(m.NodeID2, m.NodeSig2, d)
			add(m.BitcoinKey1, m.BitcoinSig1, d)
			add(m.BitcoinKey2, m.BitcoinSig2, d)
			updKeys[m.ShortChannelID] = [2][33]byte{m.NodeID1, m.NodeID2}
		case *lnwire.ChannelUpdate1:
			data, _ := m.DataToSign()
			add(updKeys[m.ShortChannelID][m.ChannelFlags&1], m.Signature, chainhash.DoubleHashB(data))
		case *lnwire.NodeAnnouncement1:
			data, _ := m.DataToSign()
			add(m.NodeID, m.Signature, chainhash.DoubleHashB(data))
		}
	}
	return jobs
}

func ms1(d time.Duration) float64 { return float64(d) / 1e6 }

func pct(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// peakRSS is VmHWM from /proc/self/status, MB (0 where there is none).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb / 1000
		}
	}
	return 0
}
