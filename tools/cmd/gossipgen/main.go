// Command gossipgen writes a synthetic Lightning gossip set with valid signatures (package
// tools/gossipgen): by default mainnet-sized, 16,000 nodes, 50,000 channels and 100,000
// channel_updates with a heavy-tailed degree distribution, on regtest's chain hash.
//
//	go run ./tools/cmd/gossipgen [-nodes 16000 -channels 50000 -updates 100000 -seed 1] -o gossip.bin
//
// The file is a stream of (2-byte big-endian length, lnwire message) records, read back by
// gossipgen.Read (tools/cmd/lnbench -in).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/chaincfg"
)

func main() {
	p := gossipgen.Mainnet(*chaincfg.RegressionNetParams.GenesisHash, uint32(time.Now().Unix()))
	flag.IntVar(&p.Nodes, "nodes", p.Nodes, "nodes")
	flag.IntVar(&p.Channels, "channels", p.Channels, "channels")
	flag.IntVar(&p.Updates, "updates", p.Updates, "channel_updates (at least 2 per channel)")
	flag.Uint64Var(&p.Seed, "seed", p.Seed, "seed")
	out := flag.String("o", "gossip.bin", "output file")
	flag.Parse()

	start := time.Now()
	set, err := gossipgen.Generate(p)
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := gossipgen.Write(f, set.Messages()); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(*out)
	fmt.Printf("%s: %d channel_announcements, %d channel_updates, %d node_announcements, %.1f MB, made in %v\n",
		*out, len(set.Channels), len(set.Updates), len(set.Nodes), float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
}
