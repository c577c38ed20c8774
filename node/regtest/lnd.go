package regtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

const (
	lndStartTimeout = 90 * time.Second
	// LndWaitTimeout bounds every wait of the lnd helpers (channels, gossip, balances).
	LndWaitTimeout = 90 * time.Second
)

// Lnd is one lnd process on regtest, backed by a btcd Node, owned by a test.
type Lnd struct {
	tb   testing.TB
	bins LndBinaries
	btcd *Node

	// Name is the node's alias ("alice", ...).
	Name string
	// Dir is the node's --lnddir (wallet, TLS certificate, macaroons, logs).
	Dir string
	// P2PAddr, RPCAddr and RESTAddr are the loopback host:port it listens on.
	P2PAddr, RPCAddr, RESTAddr string
	// PubKey is the node id in hex, known once the node is ready.
	PubKey string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartLnd runs a new lnd named alias on btcd and waits until its wallet is open and synced
// to btcd's chain. It skips the test under -short and when lnd cannot be built (see LndBins).
func StartLnd(tb testing.TB, btcd *Node, alias string) *Lnd {
	tb.Helper()
	l := spawnLnd(tb, btcd, alias)
	l.waitReady()
	return l
}

// spawnLnd starts the process without waiting for it, so that several nodes start together.
func spawnLnd(tb testing.TB, btcd *Node, alias string) *Lnd {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts lnd: skipped with -short")
	}
	if btcd.NoTLS {
		tb.Fatal("regtest: lnd needs btcd with TLS RPC")
	}
	l := &Lnd{tb: tb, bins: LndBins(tb), btcd: btcd, Name: alias, Dir: tb.TempDir()}
	var lastErr error
	for range 5 {
		p2p, rpc, err := freePorts()
		if err != nil {
			lastErr = err
			continue
		}
		rest, _, err := freePorts()
		if err != nil {
			lastErr = err
			continue
		}
		l.P2PAddr, l.RPCAddr, l.RESTAddr = p2p, rpc, rest
		if lastErr = l.start(); lastErr == nil {
			tb.Cleanup(l.cleanup)
			return l
		}
	}
	tb.Fatalf("regtest: start lnd %s: %v", alias, lastErr)
	return nil
}

func (l *Lnd) args() []string {
	b := l.btcd
	return []string{
		"--lnddir=" + l.Dir,
		"--noseedbackup",
		"--alias=" + l.Name,
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + b.RPCAddr,
		"--btcd.rpcuser=" + b.User,
		"--btcd.rpcpass=" + b.Pass,
		"--btcd.rpccert=" + b.CertFile,
		"--listen=" + l.P2PAddr,
		"--externalip=" + l.P2PAddr,
		"--rpclisten=" + l.RPCAddr,
		"--restlisten=" + l.RESTAddr,
		"--nobootstrap",
		"--trickledelay=50",
		"--gossip.sub-batch-delay=5ms",
		"--maxpendingchannels=10",
		"--debuglevel=info",
	}
}

func (l *Lnd) start() error {
	logf, err := os.OpenFile(filepath.Join(l.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(l.bins.Lnd, l.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("exec lnd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	l.mu.Lock()
	l.cmd, l.exited = cmd, exited
	l.mu.Unlock()
	// A port taken between freePorts and lnd's listen makes lnd exit at once.
	select {
	case <-exited:
		return fmt.Errorf("lnd exited during start-up:\n%s", l.logTail(20))
	case <-time.After(300 * time.Millisecond):
		return nil
	}
}

// waitReady waits until lncli getinfo answers with synced_to_chain.
func (l *Lnd) waitReady() {
	l.tb.Helper()
	deadline := time.Now().Add(lndStartTimeout)
	var info struct {
		IdentityPubkey string `json:"identity_pubkey"`
		SyncedToChain  bool   `json:"synced_to_chain"`
	}
	for {
		select {
		case <-l.exited:
			l.tb.Fatalf("regtest: lnd %s exited during start-up:\n%s", l.Name, l.logTail(30))
		default:
		}
		out, err := l.Lncli("getinfo")
		if err == nil && json.Unmarshal(out, &info) == nil && info.SyncedToChain {
			l.PubKey = info.IdentityPubkey
			return
		}
		if time.Now().After(deadline) {
			l.tb.Fatalf("regtest: lnd %s not ready within %v (%v):\n%s", l.Name, lndStartTimeout, err, l.logTail(30))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Lncli runs lncli against the node and returns its standard output.
func (l *Lnd) Lncli(args ...string) ([]byte, error) {
	base := []string{"--lnddir=" + l.Dir, "--network=regtest", "--rpcserver=" + l.RPCAddr}
	cmd := exec.Command(l.bins.Lncli, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("lncli %s: %w: %s", strings.Join(args, " "), err,
			bytes.TrimSpace(append(stderr.Bytes(), stdout.Bytes()...)))
	}
	return stdout.Bytes(), nil
}

// LncliJSON runs lncli and decodes its JSON output into v, failing the test on error.
func (l *Lnd) LncliJSON(v any, args ...string) {
	l.tb.Helper()
	out, err := l.Lncli(args...)
	if err != nil {
		l.tb.Fatalf("regtest: %s: %v", l.Name, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		l.tb.Fatalf("regtest: %s: lncli %s: decode %q: %v", l.Name, strings.Join(args, " "), out, err)
	}
}

// NewAddress returns a new P2WKH address of the node's wallet.
func (l *Lnd) NewAddress() btcutil.Address {
	l.tb.Helper()
	var r struct{ Address string }
	l.LncliJSON(&r, "newaddress", "p2wkh")
	a, err := btcutil.DecodeAddress(r.Address, l.btcd.Params)
	if err != nil {
		l.tb.Fatalf("regtest: %s: address %q: %v", l.Name, r.Address, err)
	}
	return a
}

// URI is the node's pubkey@host:port.
func (l *Lnd) URI() string { return l.PubKey + "@" + l.P2PAddr }

// ConnectPeer connects the node to other (idempotent).
func (l *Lnd) ConnectPeer(other *Lnd) {
	l.tb.Helper()
	if _, err := l.Lncli("connect", other.URI()); err != nil && !strings.Contains(err.Error(), "already connected") {
		l.tb.Fatalf("regtest: %s connect %s: %v", l.Name, other.Name, err)
	}
}

// OpenChannel opens a channel of capacity sat to other, pushing push sat to it, and returns
// the funding outpoint. The channel needs blocks mined on top to become usable.
func (l *Lnd) OpenChannel(other *Lnd, capacity, push int64) string {
	l.tb.Helper()
	l.ConnectPeer(other)
	var r struct {
		FundingTxid string `json:"funding_txid"`
		OutputIndex int    `json:"output_index"`
	}
	l.LncliJSON(&r, "openchannel", "--node_key="+other.PubKey,
		fmt.Sprintf("--local_amt=%d", capacity), fmt.Sprintf("--push_amt=%d", push))
	return fmt.Sprintf("%s:%d", r.FundingTxid, r.OutputIndex)
}

// WaitFor polls cond until it holds, failing the test after LndWaitTimeout.
func (l *Lnd) WaitFor(what string, cond func() bool) {
	l.tb.Helper()
	deadline := time.Now().Add(LndWaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			l.tb.Fatalf("regtest: %s: timed out after %v waiting for %s", l.Name, LndWaitTimeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop shuts lnd down (SIGINT), killing it after 15 s.
func (l *Lnd) Stop() {
	l.mu.Lock()
	cmd, exited := l.cmd, l.exited
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(sig)
		select {
		case <-exited:
			return
		case <-time.After(stopTimeout):
		}
	}
}

func (l *Lnd) cleanup() {
	l.Stop()
	if l.tb.Failed() {
		l.tb.Logf("regtest: last lines of lnd %s's log:\n%s", l.Name, l.logTail(40))
	}
}

// Log returns lnd's output so far.
func (l *Lnd) Log() string {
	b, _ := os.ReadFile(filepath.Join(l.Dir, "stdout.log"))
	return string(b)
}

func (l *Lnd) logTail(lines int) string { return tailLines(l.Log(), lines) }

// ChannelSpec is a channel of a test network: From opens it to To with Capacity sat and
// pushes Push sat to To, so that both sides can route.
type ChannelSpec struct {
	From, To       int
	Capacity, Push int64
}

// LightningNet is a btcd node and lnd nodes with channels between them.
type LightningNet struct {
	Btcd  *Node
	Nodes []*Lnd
	// ChanPoints are the funding outpoints, in the order of the specs.
	ChanPoints []string
}

// StartLightning starts btcd, len(aliases) lnd nodes, funds each of them, opens the channels
// and waits until every node's graph has every channel with both policies. It takes about
// 30 s once lnd is built.
func StartLightning(tb testing.TB, aliases []string, chans []ChannelSpec) *LightningNet {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts lnd: skipped with -short")
	}
	LndBins(tb) // skip before starting anything when lnd cannot be had
	btcd := Start(tb)
	btcd.Generate(200)
	net := &LightningNet{Btcd: btcd}
	for _, a := range aliases {
		net.Nodes = append(net.Nodes, spawnLnd(tb, btcd, a))
	}
	for _, l := range net.Nodes {
		l.waitReady()
	}

	// Fund: one output of 5 BTC per channel the node opens, plus one spare, in one transaction.
	opens := make([]int, len(net.Nodes))
	for _, c := range chans {
		opens[c.From]++
	}
	var outs []*wire.TxOut
	for i, l := range net.Nodes {
		script, err := txscript.PayToAddrScript(l.NewAddress())
		if err != nil {
			tb.Fatal(err)
		}
		for range opens[i] + 1 {
			outs = append(outs, wire.NewTxOut(5*btcutil.SatoshiPerBitcoin, script))
		}
	}
	btcd.SendOutputs(outs...)
	btcd.Generate(1)
	for i, l := range net.Nodes {
		want := int64(opens[i]+1) * 5 * btcutil.SatoshiPerBitcoin
		l.WaitFor("confirmed funds", func() bool {
			var b struct {
				Confirmed string `json:"confirmed_balance"`
			}
			out, err := l.Lncli("walletbalance")
			return err == nil && json.Unmarshal(out, &b) == nil && b.Confirmed == fmt.Sprint(want)
		})
	}

	for _, c := range chans {
		net.ChanPoints = append(net.ChanPoints, net.Nodes[c.From].OpenChannel(net.Nodes[c.To], c.Capacity, c.Push))
	}
	btcd.Generate(6)
	for _, l := range net.Nodes {
		l.WaitFor("every channel with both policies in the graph", func() bool {
			if net.graphComplete(l, len(chans)) {
				return true
			}
			btcd.Generate(1) // lnd announces at 6 confirmations: help it along
			return false
		})
	}
	return net
}

// graphComplete reports whether l's graph has n channels with both policies.
func (net *LightningNet) graphComplete(l *Lnd, n int) bool {
	var g struct {
		Edges []struct {
			Node1Policy *json.RawMessage `json:"node1_policy"`
			Node2Policy *json.RawMessage `json:"node2_policy"`
		} `json:"edges"`
	}
	out, err := l.Lncli("describegraph")
	if err != nil || json.Unmarshal(out, &g) != nil || len(g.Edges) != n {
		return false
	}
	for _, e := range g.Edges {
		if e.Node1Policy == nil || e.Node2Policy == nil {
			return false
		}
	}
	return true
}
