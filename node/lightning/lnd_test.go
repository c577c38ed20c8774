package lightning_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/route"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/btcsuite/btcd/chaincfg"
)

// num decodes lncli's numbers, which come as JSON strings (64-bit) or numbers (32-bit).
type num uint64

func (n *num) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	*n = num(v)
	return err
}

type lndPolicy struct {
	TimeLockDelta num  `json:"time_lock_delta"`
	MinHTLC       num  `json:"min_htlc"`
	FeeBase       num  `json:"fee_base_msat"`
	FeeRate       num  `json:"fee_rate_milli_msat"`
	Disabled      bool `json:"disabled"`
	MaxHTLC       num  `json:"max_htlc_msat"`
	LastUpdate    num  `json:"last_update"`
}

type lndEdge struct {
	ChannelID num        `json:"channel_id"`
	ChanPoint string     `json:"chan_point"`
	Node1     string     `json:"node1_pub"`
	Node2     string     `json:"node2_pub"`
	Capacity  num        `json:"capacity"`
	Policy1   *lndPolicy `json:"node1_policy"`
	Policy2   *lndPolicy `json:"node2_policy"`
}

func describeGraph(l *regtest.Lnd) map[uint64]lndEdge {
	var g struct {
		Edges []lndEdge `json:"edges"`
	}
	l.LncliJSON(&g, "describegraph")
	out := make(map[uint64]lndEdge)
	for _, e := range g.Edges {
		out[uint64(e.ChannelID)] = e
	}
	return out
}

// graphDiff lists how the box's graph differs from lnd's describegraph, channel for channel
// and policy for policy (empty when equal).
func graphDiff(box *graph.Graph, lnd map[uint64]lndEdge) []string {
	var diffs []string
	if n := len(box.ChannelIDs()); n != len(lnd) {
		diffs = append(diffs, fmt.Sprintf("box has %d channels, lnd %d", n, len(lnd)))
	}
	for id, e := range lnd {
		c, ok := box.Channel(id)
		if !ok {
			diffs = append(diffs, fmt.Sprintf("channel %s missing", graph.SCIDString(id)))
			continue
		}
		if c.Node1.String() != e.Node1 || c.Node2.String() != e.Node2 || c.Capacity != int64(e.Capacity) {
			diffs = append(diffs, fmt.Sprintf("channel %s: box %s-%s %d sat, lnd %s-%s %d sat", graph.SCIDString(id), c.Node1, c.Node2, c.Capacity, e.Node1, e.Node2, e.Capacity))
		}
		for dir, lp := range []*lndPolicy{e.Policy1, e.Policy2} {
			bp := c.Policies[dir]
			switch {
			case lp == nil && bp == nil:
			case lp == nil || bp == nil:
				diffs = append(diffs, fmt.Sprintf("channel %s dir %d: box %+v, lnd %+v", graph.SCIDString(id), dir, bp, lp))
			case uint64(lp.TimeLockDelta) != uint64(bp.CLTVDelta) || uint64(lp.MinHTLC) != bp.MinHTLC || uint64(lp.FeeBase) != uint64(bp.FeeBase) ||
				uint64(lp.FeeRate) != uint64(bp.FeeRate) || lp.Disabled != bp.Disabled || uint64(lp.MaxHTLC) != bp.MaxHTLC || uint64(lp.LastUpdate) != uint64(bp.Timestamp):
				diffs = append(diffs, fmt.Sprintf("channel %s dir %d: box %+v, lnd %+v", graph.SCIDString(id), dir, *bp, *lp))
			}
		}
	}
	return diffs
}

type lndRoute struct {
	Route struct {
		TotalTimeLock num `json:"total_time_lock"`
		TotalFeesMsat num `json:"total_fees_msat"`
		TotalAmtMsat  num `json:"total_amt_msat"`
		Hops          []struct {
			ChanID  num    `json:"chan_id"`
			PubKey  string `json:"pub_key"`
			FeeMsat num    `json:"fee_msat"`
			Expiry  num    `json:"expiry"`
		} `json:"hops"`
	} `json:"route"`
}

// buildRoute asks lnd l to build the box's route r for amtSat and checks that lnd computes
// the same channels, fees and time lock. It returns lnd's JSON for sendtoroute.
func buildRoute(t *testing.T, l *regtest.Lnd, r route.Route, amtSat uint64, payAddr string) []byte {
	t.Helper()
	args := []string{"buildroute", fmt.Sprintf("--amt=%d", amtSat), "--final_cltv_delta=40", "--hops=" + strings.Join(r.HopKeys(), ",")}
	if payAddr != "" {
		args = append(args, "--payment_addr="+payAddr)
	}
	out, err := l.Lncli(args...)
	if err != nil {
		t.Fatalf("lnd refused the box's route %v: %v", r.HopKeys(), err)
	}
	var lr lndRoute
	if err := json.Unmarshal(out, &lr); err != nil {
		t.Fatal(err)
	}
	if len(lr.Route.Hops) != len(r.Hops) {
		t.Fatalf("lnd built %d hops, box %d", len(lr.Route.Hops), len(r.Hops))
	}
	for i, h := range lr.Route.Hops {
		if uint64(h.ChanID) != r.Hops[i].ChannelID || uint64(h.FeeMsat) != r.Hops[i].Fee || uint32(h.Expiry) != r.Hops[i].Expiry {
			t.Fatalf("hop %d: lnd chan %d fee %d expiry %d; box %+v", i, h.ChanID, h.FeeMsat, h.Expiry, r.Hops[i])
		}
	}
	if uint64(lr.Route.TotalFeesMsat) != r.TotalFees || uint32(lr.Route.TotalTimeLock) != r.TotalTimeLock || uint64(lr.Route.TotalAmtMsat) != r.TotalAmount {
		t.Fatalf("lnd totals fees %d time lock %d amount %d; box %d %d %d", lr.Route.TotalFeesMsat, lr.Route.TotalTimeLock, lr.Route.TotalAmtMsat, r.TotalFees, r.TotalTimeLock, r.TotalAmount)
	}
	return out
}

// TestAgainstLnd is issue 5's acceptance test: four lnd nodes with channels on btcd
// regtest; the box syncs from one of them and its graph equals lnd's, a policy change made
// with lncli reaches it, a route it computes is built by lnd's buildroute and paid with
// sendtoroute, and every part of an MPP split is accepted by buildroute.
func TestAgainstLnd(t *testing.T) {
	start := time.Now()
	net := regtest.StartLightning(t, []string{"alice", "bob", "carol", "dave"}, []regtest.ChannelSpec{
		{From: 0, To: 1, Capacity: 1_000_000, Push: 100_000},
		{From: 1, To: 2, Capacity: 1_000_000, Push: 100_000},
		{From: 2, To: 3, Capacity: 1_000_000, Push: 100_000},
		{From: 0, To: 2, Capacity: 800_000, Push: 100_000},
		{From: 1, To: 3, Capacity: 600_000, Push: 100_000},
	})
	t.Logf("lnd network up in %v", time.Since(start))
	alice, bob, dave := net.Nodes[0], net.Nodes[1], net.Nodes[3]
	btcd := net.Btcd
	backend, err := chain.NewRPC(chain.Config{Host: btcd.RPCAddr, User: btcd.User, Pass: btcd.Pass, Cert: btcd.Cert, Params: btcd.Params})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()

	box, _ := newBox(t, filepath.Join(t.TempDir(), "anya.db"), &chaincfg.RegressionNetParams, func(c *lightning.Config) { c.Chain = backend })
	syncStart := time.Now()
	if err := box.AddPeer(context.Background(), alice.URI()); err != nil {
		t.Fatal(err)
	}
	var diffs []string
	waitFor(t, "the box's graph to equal alice's", func() bool {
		diffs = graphDiff(box.Graph(), describeGraph(alice))
		return len(diffs) == 0 && box.Status().Graph.Announced == 4
	})
	t.Logf("box synced %+v in %v", box.Status().Graph, time.Since(syncStart))

	// lnd sees the box under the node id the signer derives (BOLT 8 ECDH by hsm.NodeKey),
	// and the box keeps a second peer as well.
	var peers struct {
		Peers []struct {
			PubKey string `json:"pub_key"`
		} `json:"peers"`
	}
	alice.LncliJSON(&peers, "listpeers")
	found := false
	for _, p := range peers.Peers {
		found = found || p.PubKey == box.Status().PubKey
	}
	if !found {
		t.Fatalf("alice's peers %+v lack the box %s", peers.Peers, box.Status().PubKey)
	}
	if err := box.AddPeer(context.Background(), net.Nodes[2].URI()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two connected peers", func() bool {
		st := box.Status()
		return len(st.Peers) == 2 && st.Peers[0].Connected && st.Peers[1].Connected && st.Syncs >= 2
	})

	// A policy change on bob reaches the box through alice.
	cp := net.ChanPoints[1] // bob -> carol
	if _, err := bob.Lncli("updatechanpolicy", "--base_fee_msat=4321", "--fee_rate_ppm=777", "--time_lock_delta=55", "--chan_point="+cp); err != nil {
		t.Fatal(err)
	}
	var bobCarol uint64
	for id, e := range describeGraph(bob) {
		if e.ChanPoint == cp {
			bobCarol = id
		}
	}
	waitFor(t, "bob's new policy at the box", func() bool {
		c, ok := box.Graph().Channel(bobCarol)
		if !ok {
			return false
		}
		p := c.Policies[c.Direction(mustID(t, bob.PubKey))]
		return p != nil && p.FeeBase == 4321 && p.FeeRate == 777 && p.CLTVDelta == 55
	})
	waitFor(t, "the graphs to agree after the update", func() bool {
		diffs = graphDiff(box.Graph(), describeGraph(alice))
		return len(diffs) == 0
	})

	// A route from alice to dave, built and paid by alice.
	_, height := btcd.Best()
	const amt = 50_000
	r, err := box.Finder().Find(route.Request{Source: mustID(t, alice.PubKey), Target: mustID(t, dave.PubKey), Amount: amt * 1000, CurrentHeight: uint32(height), FinalCLTVDelta: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("box route alice->dave: %v, fees %d msat, probability %.3f", r.HopKeys(), r.TotalFees, r.Probability)
	var inv struct {
		RHash       string `json:"r_hash"`
		PaymentAddr string `json:"payment_addr"`
	}
	dave.LncliJSON(&inv, "addinvoice", fmt.Sprintf("--amt=%d", amt), "--cltv_expiry_delta=40")
	built := buildRoute(t, alice, r, amt, inv.PaymentAddr)
	var paid struct {
		Status  string          `json:"status"`
		Failure json.RawMessage `json:"failure"`
	}
	alice.LncliJSON(&paid, "sendtoroute", "--payment_hash="+inv.RHash, "--routes="+string(built))
	if paid.Status != "SUCCEEDED" {
		t.Fatalf("sendtoroute: %s %s", paid.Status, paid.Failure)
	}
	box.Finder().Model.Report(r, -1)

	// MPP: more than any one channel of alice can carry; every part is accepted by lnd.
	const mppAmt = 1_200_000
	pay, err := box.Finder().Split(route.Request{Source: mustID(t, alice.PubKey), Target: mustID(t, dave.PubKey), Amount: mppAmt * 1000, CurrentHeight: uint32(height), FinalCLTVDelta: 40}, route.SplitOptions{Granularity: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(pay.Parts) < 2 || pay.Amount != mppAmt*1000 {
		t.Fatalf("split into %d parts delivering %d msat", len(pay.Parts), pay.Amount)
	}
	edges := describeGraph(alice)
	load := make(map[uint64]uint64)
	for _, part := range pay.Parts {
		last := part.Hops[len(part.Hops)-1].AmtToForward
		if last%1000 != 0 {
			t.Fatalf("part of %d msat is not whole sat (lncli buildroute takes sat)", last)
		}
		buildRoute(t, alice, part, last/1000, inv.PaymentAddr)
		for _, h := range part.Hops {
			load[h.ChannelID] += h.AmtToForward + h.Fee
		}
	}
	for id, l := range load {
		if l > uint64(edges[id].Capacity)*1000 {
			t.Fatalf("MPP puts %d msat through channel %s of %d sat", l, graph.SCIDString(id), edges[id].Capacity)
		}
	}
	t.Logf("MPP of %d sat: %d parts accepted by lnd, fees %d msat", mppAmt, len(pay.Parts), pay.TotalFees)

	// Carol closes her channel to dave: once the close confirms, the box drops it (it
	// watches funding outputs on btcd) and its graph equals lnd's again.
	carol := net.Nodes[2]
	txid, idx, _ := strings.Cut(net.ChanPoints[2], ":")
	if _, err := carol.Lncli("closechannel", "--funding_txid="+txid, "--output_index="+idx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the closing transaction", func() bool { return len(btcd.Mempool()) > 0 })
	btcd.Generate(1)
	waitFor(t, "the closed channel to leave both graphs", func() bool {
		edges := describeGraph(alice)
		diffs = graphDiff(box.Graph(), edges)
		return len(edges) == 4 && len(diffs) == 0
	})

	// Bob disables his side of bob-dave, now dave's only channel: the flag reaches the box,
	// which finds no route to dave any more.
	if _, err := bob.Lncli("updatechanstatus", "--chan_point="+net.ChanPoints[4], "--action=disable"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the disabled flag at the box", func() bool {
		for _, c := range box.Graph().Channels() {
			if p := c.Policies[c.Direction(mustID(t, bob.PubKey))]; c.Other(mustID(t, bob.PubKey)) == mustID(t, dave.PubKey) && p != nil && p.Disabled {
				return true
			}
		}
		return false
	})
	waitFor(t, "the graphs to agree on the disabled channel", func() bool {
		diffs = graphDiff(box.Graph(), describeGraph(alice))
		return len(diffs) == 0
	})
	if r, err := box.Finder().Find(route.Request{Source: mustID(t, alice.PubKey), Target: mustID(t, dave.PubKey), Amount: 10_000_000}); !errors.Is(err, route.ErrNoRoute) {
		t.Fatalf("route through a disabled channel: %+v, %v", r, err)
	}
}

func mustID(t *testing.T, hex string) graph.NodeID {
	id, err := graph.ParseNodeID(hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
