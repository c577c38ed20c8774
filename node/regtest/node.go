package regtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

const (
	// rpcUser and rpcPass are the RPC credentials of every harness node.
	rpcUser = "anya"
	rpcPass = "regtest-pass"

	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
	waitTimeout  = 30 * time.Second
)

// Node is one btcd process in regtest mode, owned by a test.
type Node struct {
	tb   testing.TB
	bins Binaries

	// Name identifies the node in logs ("btcd-1", ...).
	Name string
	// Dir holds the node's data, logs, RPC certificate and key.
	Dir string
	// P2PAddr and RPCAddr are the loopback host:port the node listens on.
	P2PAddr, RPCAddr string
	// User and Pass are the RPC credentials.
	User, Pass string
	// CertFile is the RPC TLS certificate that btcd generated (PEM); Cert is its content.
	CertFile string
	Cert     []byte
	// NoTLS is set when the node serves RPC over plain HTTP (option NoTLS).
	NoTLS bool
	// Params are the chain parameters: regtest, or simnet with option Simnet.
	Params *chaincfg.Params

	extraArgs []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	client *rpcclient.Client

	wallet *wallet
}

// Option changes how Start runs a node.
type Option func(*Node)

// Args adds command-line flags to btcd.
func Args(args ...string) Option {
	return func(n *Node) { n.extraArgs = append(n.extraArgs, args...) }
}

// Simnet runs the node on btcd's simulation network instead of regtest. btcd deletes a
// regtest chain every time it starts, so a node whose chain must survive Restart (after Stop;
// a Kill loses what btcd had not flushed) has to run on simnet, a private network with the
// same rules for tests (instant mining, coinbase maturity 100).
func Simnet() Option {
	return func(n *Node) { n.Params = &chaincfg.SimNetParams }
}

// NoTLS serves RPC over plain HTTP (btcd allows it on loopback only), like a bitcoind.
func NoTLS() Option {
	return func(n *Node) { n.NoTLS = true }
}

var nodeSeq struct {
	sync.Mutex
	n int
}

// Start runs a new btcd in regtest mode for the test and stops it in Cleanup. It skips the
// test under -short (the fast inner loop runs no nodes; make test runs them all) and when
// btcd cannot be built (see Bins).
func Start(tb testing.TB, opts ...Option) *Node {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts btcd: skipped with -short")
	}
	bins := Bins(tb)
	nodeSeq.Lock()
	nodeSeq.n++
	seq := nodeSeq.n
	nodeSeq.Unlock()

	key, err := btcec.NewPrivateKey()
	if err != nil {
		tb.Fatalf("regtest: mining key: %v", err)
	}
	dir := tb.TempDir()
	n := &Node{
		tb:       tb,
		bins:     bins,
		Name:     fmt.Sprintf("btcd-%d", seq),
		Dir:      dir,
		User:     rpcUser,
		Pass:     rpcPass,
		CertFile: filepath.Join(dir, "rpc.cert"),
		Params:   &chaincfg.RegressionNetParams,
	}
	for _, o := range opts {
		o(n)
	}
	n.wallet = newWallet(n, key)
	if err := os.WriteFile(n.emptyConf(), nil, 0o600); err != nil {
		tb.Fatalf("regtest: %v", err)
	}
	tb.Cleanup(n.cleanup)

	var lastErr error
	for range 5 {
		p2p, rpc, err := freePorts()
		if err != nil {
			lastErr = err
			continue
		}
		n.P2PAddr, n.RPCAddr = p2p, rpc
		if lastErr = n.start(); lastErr == nil {
			return n
		}
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("regtest: start %s: %v", n.Name, lastErr)
	return nil
}

func (n *Node) netFlag() string {
	if n.Params.Net == chaincfg.SimNetParams.Net {
		return "--simnet"
	}
	return "--regtest"
}

func (n *Node) emptyConf() string { return filepath.Join(n.Dir, "empty.conf") }

func (n *Node) args() []string {
	args := []string{
		"--configfile=" + n.emptyConf(),
		n.netFlag(),
		"--datadir=" + filepath.Join(n.Dir, "data"),
		"--logdir=" + filepath.Join(n.Dir, "logs"),
		"--rpccert=" + n.CertFile,
		"--rpckey=" + filepath.Join(n.Dir, "rpc.key"),
		"--listen=" + n.P2PAddr,
		"--rpclisten=" + n.RPCAddr,
		"--rpcuser=" + n.User,
		"--rpcpass=" + n.Pass,
		"--txindex",
		"--nobanning",
		"--trickleinterval=100ms",
		"--miningaddr=" + n.wallet.addr.EncodeAddress(),
		"--debuglevel=info",
	}
	if n.NoTLS {
		args = append(args, "--notls")
	}
	return append(args, n.extraArgs...)
}

// start launches btcd and waits until it answers RPC.
func (n *Node) start() error {
	logf, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s start %s\n", n.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bins.Btcd, n.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("exec btcd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()

	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()

	if err := n.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w\n%s", err, n.logTail(30))
	}
	return nil
}

func (n *Node) waitReady(exited chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return errors.New("btcd exited during start-up")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("btcd did not serve RPC on %s within %v", n.RPCAddr, startTimeout)
		}
		c, err := net.DialTimeout("tcp", n.RPCAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !n.NoTLS {
		cert, err := os.ReadFile(n.CertFile)
		if err != nil {
			return fmt.Errorf("read RPC certificate: %w", err)
		}
		n.Cert = cert
	}
	client, err := n.NewClient()
	if err != nil {
		return err
	}
	for {
		if _, err = client.GetBlockCount(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			client.Shutdown()
			return fmt.Errorf("btcd RPC not ready: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.mu.Lock()
	old := n.client
	n.client = client
	n.mu.Unlock()
	if old != nil {
		old.Shutdown()
	}
	return nil
}

// NewClient returns a new rpcclient in HTTP POST mode for the node; the caller shuts it down.
func (n *Node) NewClient() (*rpcclient.Client, error) {
	c, err := rpcclient.New(&rpcclient.ConnConfig{
		Host:         n.RPCAddr,
		User:         n.User,
		Pass:         n.Pass,
		Certificates: n.Cert,
		DisableTLS:   n.NoTLS,
		HTTPPostMode: true,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("regtest: rpc client for %s: %w", n.Name, err)
	}
	return c, nil
}

// RPC is the harness's client of the node (HTTP POST mode). It survives Restart. Note that
// rpcclient retries a refused connection for about 20 s, so do not use it while the node
// is killed.
func (n *Node) RPC() *rpcclient.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client == nil {
		n.tb.Fatalf("regtest: %s is not running", n.Name)
	}
	return n.client
}

// Running reports whether the btcd process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill ends btcd with SIGKILL, like a crash or a pulled cable, and waits for it to exit.
func (n *Node) Kill() {
	n.tb.Helper()
	n.signal(syscall.SIGKILL, stopTimeout)
}

// Stop shuts btcd down in order (SIGINT), killing it if it takes longer than 15 s.
func (n *Node) Stop() {
	n.tb.Helper()
	if !n.signal(syscall.SIGINT, stopTimeout) {
		n.tb.Logf("regtest: %s ignored SIGINT for %v, killing it", n.Name, stopTimeout)
		n.signal(syscall.SIGKILL, stopTimeout)
	}
}

// signal sends sig and reports whether btcd exited within timeout.
func (n *Node) signal(sig syscall.Signal, timeout time.Duration) bool {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-exited:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Restart starts btcd again on the same data directory, ports and certificate after Kill or
// Stop (stopping it first if it still runs). On regtest btcd starts from an empty chain
// again; see Simnet.
func (n *Node) Restart() {
	n.tb.Helper()
	if n.Running() {
		n.Stop()
	}
	if err := n.start(); err != nil {
		n.tb.Fatalf("regtest: restart %s: %v", n.Name, err)
	}
}

func (n *Node) cleanup() {
	n.Stop()
	n.mu.Lock()
	c := n.client
	n.client = nil
	n.mu.Unlock()
	if c != nil {
		c.Shutdown()
	}
	if n.tb.Failed() {
		n.tb.Logf("regtest: last lines of %s's log:\n%s", n.Name, n.logTail(40))
	}
}

// Log returns btcd's output so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "stdout.log"))
	return string(b)
}

func (n *Node) logTail(lines int) string { return tailLines(n.Log(), lines) }

// tailLines returns the last lines of text.
func tailLines(text string, lines int) string {
	var all []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Btcctl runs btcctl against the node and returns its standard output.
func (n *Node) Btcctl(args ...string) (string, error) {
	base := []string{
		"--configfile=" + n.emptyConf(), n.netFlag(),
		"--rpcserver=" + n.RPCAddr, "--rpcuser=" + n.User, "--rpcpass=" + n.Pass,
	}
	if n.NoTLS {
		base = append(base, "--notls")
	} else {
		base = append(base, "--rpccert="+n.CertFile)
	}
	cmd := exec.Command(n.bins.Btcctl, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("btcctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Generate mines n blocks paying to the node's mining key and returns their hashes.
func (n *Node) Generate(count uint32) []*chainhash.Hash {
	n.tb.Helper()
	hashes, err := n.RPC().Generate(count)
	if err != nil {
		n.tb.Fatalf("regtest: %s generate %d: %v", n.Name, count, err)
	}
	return hashes
}

// Best returns the node's best block hash and height.
func (n *Node) Best() (*chainhash.Hash, int32) {
	n.tb.Helper()
	hash, height, err := n.RPC().GetBestBlock()
	if err != nil {
		n.tb.Fatalf("regtest: %s best block: %v", n.Name, err)
	}
	return hash, height
}

// Block returns the block with the given hash.
func (n *Node) Block(hash *chainhash.Hash) *wire.MsgBlock {
	n.tb.Helper()
	b, err := n.RPC().GetBlock(hash)
	if err != nil {
		n.tb.Fatalf("regtest: %s getblock %v: %v", n.Name, hash, err)
	}
	return b
}

// Mempool returns the hashes of the transactions in the node's mempool.
func (n *Node) Mempool() []*chainhash.Hash {
	n.tb.Helper()
	txs, err := n.RPC().GetRawMempool()
	if err != nil {
		n.tb.Fatalf("regtest: %s getrawmempool: %v", n.Name, err)
	}
	return txs
}

// Connect makes the node keep a connection to other and waits until both see the peer.
func (n *Node) Connect(other *Node) {
	n.tb.Helper()
	if err := n.RPC().AddNode(other.P2PAddr, rpcclient.ANAdd); err != nil {
		n.tb.Fatalf("regtest: %s addnode %s: %v", n.Name, other.Name, err)
	}
	n.waitFor(fmt.Sprintf("%s and %s to be connected", n.Name, other.Name), func() bool {
		return n.peerCount() > 0 && other.peerCount() > 0 && n.hasPeer(other.P2PAddr)
	})
}

// Disconnect drops the persistent connection to other made by Connect.
func (n *Node) Disconnect(other *Node) {
	n.tb.Helper()
	if err := n.RPC().AddNode(other.P2PAddr, rpcclient.ANRemove); err != nil {
		n.tb.Fatalf("regtest: %s addnode remove %s: %v", n.Name, other.Name, err)
	}
	n.waitFor(fmt.Sprintf("%s to drop %s", n.Name, other.Name), func() bool {
		return !n.hasPeer(other.P2PAddr)
	})
}

// WaitSynced waits until the node and all others have the same best block.
func (n *Node) WaitSynced(others ...*Node) {
	n.tb.Helper()
	n.waitFor("nodes to agree on the best block", func() bool {
		h, _ := n.Best()
		for _, o := range others {
			oh, _ := o.Best()
			if !oh.IsEqual(h) {
				return false
			}
		}
		return true
	})
}

func (n *Node) peers() []btcjson.GetPeerInfoResult {
	n.tb.Helper()
	p, err := n.RPC().GetPeerInfo()
	if err != nil {
		n.tb.Fatalf("regtest: %s getpeerinfo: %v", n.Name, err)
	}
	return p
}

func (n *Node) peerCount() int { return len(n.peers()) }

func (n *Node) hasPeer(addr string) bool {
	for _, p := range n.peers() {
		if p.Addr == addr {
			return true
		}
	}
	return false
}

func (n *Node) waitFor(what string, cond func() bool) {
	n.tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			n.tb.Fatalf("regtest: timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns two distinct free loopback addresses.
func freePorts() (string, string, error) {
	var addrs [2]string
	var ls [2]net.Listener
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, o := range ls[:i] {
				o.Close()
			}
			return "", "", err
		}
		ls[i], addrs[i] = l, l.Addr().String()
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs[0], addrs[1], nil
}

// MiningAddress is the P2WPKH address the node mines to.
func (n *Node) MiningAddress() btcutil.Address { return n.wallet.addr }
