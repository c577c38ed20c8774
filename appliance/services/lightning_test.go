package services

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/node/lightning/peer"
	"github.com/anya-edge/anya/node/lightning/peer/peertest"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/tools/gossipgen"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
)

// TestLightningService: the Lightning node waits for the wallet, starts with the seed's node
// key once it is unlocked, and syncs the graph from a peer added through the API.
func TestLightningService(t *testing.T) {
	bx := startBox(t)
	a := newAPIClient(t, "http://"+bx.addr)
	a.csrf = a.want("POST", "/api/setup", map[string]string{"password": testPassword}, 200)["csrf"].(string)
	if m := a.want("GET", "/api/lightning", nil, 200); m["running"] != false || !strings.Contains(m["why"].(string), "unlocked") {
		t.Fatalf("before the wallet: %v", m)
	}
	a.want("POST", "/api/lightning/peer", map[string]string{"uri": "x@y"}, 400)
	a.want("POST", "/api/wallet/setup", map[string]string{"mnemonic": testMnemonic, "protection": "passphrase", "passphrase": testPassphrase}, 200)
	want, err := hsm.NodeKeyFromMnemonic(testMnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Zero()
	m := a.waitAPI("the Lightning node", "/api/lightning", func(m map[string]any) bool { return m["running"] == true })
	if got := m["status"].(map[string]any)["pubkey"]; got != fmt.Sprintf("%x", want.PubKey().SerializeCompressed()) {
		t.Fatalf("node id %v is not the seed's", got)
	}

	// A peer that serves a small graph.
	set, err := gossipgen.Generate(gossipgen.Params{Nodes: 10, Channels: 15, Updates: 30, Seed: 9,
		Chain: *chaincfg.RegressionNetParams.GenesisHash, Now: uint32(time.Now().Unix())})
	if err != nil {
		t.Fatal(err)
	}
	remote := peertest.Listen(t)
	go func() {
		s, err := remote.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		if s.Init(peer.LocalFeatures()) != nil {
			return
		}
		q, err := peertest.RecvType[*lnwire.QueryChannelRange](s)
		if err != nil {
			return
		}
		var ids []lnwire.ShortChannelID
		for _, c := range set.Channels {
			ids = append(ids, c.ShortChannelID)
		}
		_ = s.Send(&lnwire.ReplyChannelRange{ChainHash: q.ChainHash, NumBlocks: q.NumBlocks, Complete: 1, EncodingType: lnwire.EncodingSortedPlain, ShortChanIDs: ids})
		if _, err := peertest.RecvType[*lnwire.QueryShortChanIDs](s); err != nil {
			return
		}
		for _, msg := range set.Messages() {
			_ = s.Send(msg)
		}
		_ = s.Send(&lnwire.ReplyShortChanIDsEnd{ChainHash: q.ChainHash, Complete: 1})
		s.Closed()
	}()
	a.want("POST", "/api/lightning/peer", map[string]string{"uri": fmt.Sprintf("%x@%s", remote.PubKey().SerializeCompressed(), remote.Addr())}, 200)
	a.waitAPI("the graph", "/api/lightning", func(m map[string]any) bool {
		g := m["status"].(map[string]any)["graph"].(map[string]any)
		return g["channels"] == float64(15) && g["policies"] == float64(30)
	})
	src, dst := fmt.Sprintf("%x", set.Channels[0].NodeID1), fmt.Sprintf("%x", set.Channels[14].NodeID2)
	r := a.want("GET", "/api/lightning/route?source="+src+"&target="+dst+"&amt_sat=1000", nil, 200)
	if len(r["parts"].([]any)) != 1 || len(r["buildroute"].([]any)) != 1 {
		t.Fatalf("route %v", r)
	}
}

// TestLightningFollowsChainBackend: the Lightning node checks funding outputs against the
// chain backend the owner chooses on the wallet page: none at first, then btcd once it is
// saved (the node restarts on it).
func TestLightningFollowsChainBackend(t *testing.T) {
	node := regtest.Start(t) // skips under -short
	node.Generate(1)
	bx := startBox(t)
	a := newAPIClient(t, "http://"+bx.addr)
	a.csrf = a.want("POST", "/api/setup", map[string]string{"password": testPassword}, 200)["csrf"].(string)
	a.want("POST", "/api/wallet/setup", map[string]string{"mnemonic": testMnemonic, "protection": "passphrase", "passphrase": testPassphrase}, 200)
	funding := func(m map[string]any) any {
		st, _ := m["status"].(map[string]any)
		return st["funding_checks"]
	}
	m := a.waitAPI("the Lightning node", "/api/lightning", func(m map[string]any) bool { return m["running"] == true })
	if funding(m) != false {
		t.Fatalf("funding checks without a chain backend: %v", m)
	}
	a.want("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": node.RPCAddr, "user": node.User,
		"pass": node.Pass, "cert": string(node.Cert)}, 200)
	a.waitAPI("the Lightning node on btcd", "/api/lightning", func(m map[string]any) bool {
		return m["running"] == true && funding(m) == true
	})
	if !strings.Contains(bx.logs.String(), "restarting the Lightning node") {
		t.Error("the log does not say the node restarted on the new backend")
	}
}
