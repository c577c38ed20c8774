package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// BenchmarkIngestVsVerify ingests a generated set with full validation (in memory: the
// storage cost is measured by tools/cmd/lnbench) and reports its time as a ratio to the bare
// ECDSA verification of the same signatures on all cores, measured in the same run.
func BenchmarkIngestVsVerify(b *testing.B) {
	set, err := gossipgen.Generate(gossipgen.Params{Nodes: 500, Channels: 1500, Updates: 3000, Seed: 5, Chain: testChain, Now: uint32(testNow.Unix())})
	if err != nil {
		b.Fatal(err)
	}
	msgs := set.Messages()
	type job struct {
		k *btcec.PublicKey
		s *ecdsa.Signature
		d []byte
	}
	var jobs []job
	owner := make(map[lnwire.ShortChannelID][2][33]byte)
	add := func(raw [33]byte, sig lnwire.Sig, data []byte) {
		k, _ := btcec.ParsePubKey(raw[:])
		s, _ := parseSig(sig)
		jobs = append(jobs, job{k, s, chainhash.DoubleHashB(data)})
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *lnwire.ChannelAnnouncement1:
			d, _ := m.DataToSign()
			add(m.NodeID1, m.NodeSig1, d)
			add(m.NodeID2, m.NodeSig2, d)
			add(m.BitcoinKey1, m.BitcoinSig1, d)
			add(m.BitcoinKey2, m.BitcoinSig2, d)
			owner[m.ShortChannelID] = [2][33]byte{m.NodeID1, m.NodeID2}
		case *lnwire.ChannelUpdate1:
			d, _ := m.DataToSign()
			add(owner[m.ShortChannelID][m.ChannelFlags&1], m.Signature, d)
		case *lnwire.NodeAnnouncement1:
			d, _ := m.DataToSign()
			add(m.NodeID, m.Signature, d)
		}
	}
	var anchor, ingest time.Duration
	for b.Loop() {
		t := time.Now()
		Parallel(len(jobs), func(i int) {
			if !jobs[i].s.Verify(jobs[i].d, jobs[i].k) {
				panic("bad signature in a valid set")
			}
		})
		anchor += time.Since(t)
		in := NewIngester(IngesterConfig{Chain: testChain, Graph: graph.New(), Now: func() time.Time { return testNow }})
		t = time.Now()
		for i := 0; i < len(msgs); i += DefaultBatchSize {
			res, err := in.Process(context.Background(), msgs[i:min(i+DefaultBatchSize, len(msgs))])
			if err != nil || res.Invalid != nil {
				b.Fatal(err, res.Invalid)
			}
		}
		ingest += time.Since(t)
	}
	b.ReportMetric(float64(ingest)/float64(anchor), "ingest/verify")
	b.ReportMetric(float64(len(jobs)), "sigs")
}
