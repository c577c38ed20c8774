package web

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
)

// fakeWallet is a wallet service for the handler tests: it proposes what it is asked,
// remembers what it sent, and fails with the errors the test sets.
type fakeWallet struct {
	mu        sync.Mutex
	sync      wallet.SyncStatus
	peers     []chain.Peer
	balance   wallet.Balance
	history   []wallet.HistoryEntry
	fees      map[uint32]wallet.FeeEstimate
	addresses int

	proposeErr error // Propose, ProposeBump and ProposeCPFP fail with it
	sendErr    error // Send fails with it
	proposals  map[string]*wallet.Proposal
	requests   []wallet.SendRequest
	bumps      []string // "bump <txid> <rate>" and "cpfp <txid> <rate>"
	sent       []string // proposal ids
}

func newFakeWallet() *fakeWallet {
	return &fakeWallet{
		sync: wallet.SyncStatus{State: wallet.SyncSynced, Backend: "btcd 0.26.2 (rpc)",
			Chain:  chain.Status{Backend: "btcd 0.26.2 (rpc)", Best: chain.BlockStamp{Height: 812}, Headers: 812, Peers: 3},
			Wallet: wallet.Tip{Height: 812}, Progress: 1, Since: time.Now().Add(-10 * time.Minute)},
		balance: wallet.Balance{Confirmed: 150_000_000, Unconfirmed: 2_500},
		fees: map[uint32]wallet.FeeEstimate{
			1:   {Target: 1, Rate: 12_500, Source: "backend", Others: []wallet.FeeEstimate{{Target: 1, Rate: 11_000, Source: "mempool"}}},
			3:   {Target: 3, Rate: 8_000, Source: "backend"},
			6:   {Target: 6, Rate: 5_000, Source: "backend", Others: []wallet.FeeEstimate{{Target: 6, Rate: 4_200, Source: "mempool"}, {Target: 6, Rate: 6_100, Source: "model"}}},
			24:  {Target: 24, Rate: 2_000, Source: "backend"},
			144: {Target: 144, Rate: 1_000, Source: "minimum"},
		},
		proposals: map[string]*wallet.Proposal{},
	}
}

// fakeAddresses are mainnet addresses the fake hands out in turn.
var fakeAddresses = []string{
	abandonFirst,
	"bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
	"bc1qp59yckz4ae5c4efgw2s5wfyvrz0ala7rgvuz8z",
}

func (f *fakeWallet) Sync() wallet.SyncStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sync
}

func (f *fakeWallet) Peers() []chain.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers
}

func (f *fakeWallet) Balance() (wallet.Balance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.balance, nil
}

func (f *fakeWallet) NewAddress() (wallet.Address, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.addresses % len(fakeAddresses)
	f.addresses++
	a := fakeAddresses[i]
	return wallet.Address{Address: a, Path: keys.Path{84 | 1<<31, 1 << 31, 1 << 31, 0, uint32(i)}, Index: uint32(i),
		URI: "bitcoin:" + a}, nil
}

func (f *fakeWallet) History() ([]wallet.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wallet.HistoryEntry(nil), f.history...), nil
}

func (f *fakeWallet) EstimateFee(ctx context.Context, target uint32) (wallet.FeeEstimate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	est, ok := f.fees[target]
	if !ok {
		return wallet.FeeEstimate{}, chain.ErrFeeUnavailable
	}
	return est, nil
}

// proposal makes a proposal of kind paying amount to addr at rate.
func (f *fakeWallet) proposal(kind, addr string, amount int64, rate chain.FeeRate, lockTime uint32) *wallet.Proposal {
	if rate == 0 {
		rate = 5_000
	}
	const vsize = 141
	fee := int64(rate.Fee(vsize))
	in := int64(200_000_000)
	p := &wallet.Proposal{
		ID: fmt.Sprintf("p%d", len(f.proposals)+1), Kind: kind, VSize: vsize, FeeRate: rate, Fee: fee, LockTime: lockTime,
		Inputs:  []wallet.ProposalInput{{OutPoint: strings.Repeat("ab", 32) + ":1", Amount: in, Address: fakeAddresses[1]}},
		Outputs: []wallet.ProposalOutput{{Address: addr, Amount: amount}, {Address: fakeAddresses[2], Amount: in - amount - fee, Change: true}},
		Sent:    amount, Change: in - amount - fee, Expires: time.Now().Add(5 * time.Minute), PSBT: []byte("psbt\xff"),
	}
	f.proposals[p.ID] = p
	return p
}

func (f *fakeWallet) Propose(ctx context.Context, req wallet.SendRequest) (*wallet.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if f.proposeErr != nil {
		return nil, f.proposeErr
	}
	return f.proposal("send", req.Payments[0].Address, req.Payments[0].Amount, req.FeeRate, req.LockTime), nil
}

func (f *fakeWallet) ProposeBump(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*wallet.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bumps = append(f.bumps, fmt.Sprintf("bump %s %d", txid, rate))
	if f.proposeErr != nil {
		return nil, f.proposeErr
	}
	p := f.proposal("bump", fakeAddresses[1], 50_000, rate, 0)
	p.Replaces = txid.String()
	return p, nil
}

func (f *fakeWallet) ProposeCPFP(ctx context.Context, txid chainhash.Hash, packageRate chain.FeeRate) (*wallet.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bumps = append(f.bumps, fmt.Sprintf("cpfp %s %d", txid, packageRate))
	if f.proposeErr != nil {
		return nil, f.proposeErr
	}
	p := f.proposal("cpfp", fakeAddresses[2], 0, packageRate*2, 0)
	p.Outputs, p.Sent = p.Outputs[1:], 0
	p.Parent, p.PackageFeeRate = txid.String(), packageRate
	return p, nil
}

func (f *fakeWallet) Send(ctx context.Context, id string) (chainhash.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return chainhash.Hash{}, f.sendErr
	}
	if _, ok := f.proposals[id]; !ok {
		return chainhash.Hash{}, fmt.Errorf("send %s: %w", id, wallet.ErrProposalExpired)
	}
	delete(f.proposals, id)
	f.sent = append(f.sent, id)
	return chainhash.DoubleHashH([]byte(id)), nil
}

func (f *fakeWallet) set(fn func(f *fakeWallet)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// fakeBackend is a chain.Backend that only knows how to close.
type fakeBackend struct {
	chain.Backend
	settings BackendSettings
	mu       sync.Mutex
	closed   bool
}

func (b *fakeBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *fakeBackend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// fakeNode is the Node of the handler tests: settings in memory, a check that fails with
// checkErr, the backends handed to the wallet recorded.
type fakeNode struct {
	mu        sync.Mutex
	wallet    *fakeWallet // nil: no wallet yet
	walletErr error
	saved     *BackendSettings
	checkErr  error
	openErr   error
	opened    []*fakeBackend
	used      []*fakeBackend
}

func (n *fakeNode) Wallet() (NodeWallet, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.walletErr != nil {
		return nil, n.walletErr
	}
	if n.wallet == nil {
		return nil, nil
	}
	return n.wallet, nil
}

func (n *fakeNode) LoadBackend() (BackendSettings, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.saved == nil {
		return BackendSettings{}, false, nil
	}
	return *n.saved, true, nil
}

func (n *fakeNode) ValidateBackend(s BackendSettings) map[string]string {
	errs := map[string]string{}
	switch s.Kind {
	case BackendRPC:
		if s.Host == "" {
			errs["host"] = "Enter the node's host and port."
		} else if !strings.Contains(s.Host, ":") {
			errs["host"] = "Add the port, as in host:8332."
		}
		if s.Pass == "" && s.CookieFile == "" {
			errs["pass"] = "Enter the RPC password, or the path of the cookie file."
		}
		if s.Cert != "" && !strings.HasPrefix(s.Cert, "-----BEGIN CERTIFICATE-----") {
			errs["cert"] = "This is not a PEM certificate."
		}
	case BackendP2P:
		for _, p := range s.Peers {
			if !strings.Contains(p, ":") {
				errs["peers"] = fmt.Sprintf("Peer %q has no port.", p)
			}
		}
	default:
		errs["kind"] = "Choose your own node or the light client."
	}
	return errs
}

func (n *fakeNode) OpenBackend(s BackendSettings) (chain.Backend, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.openErr != nil {
		return nil, n.openErr
	}
	b := &fakeBackend{settings: s}
	n.opened = append(n.opened, b)
	return b, nil
}

func (n *fakeNode) CheckBackend(ctx context.Context, b chain.Backend) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.checkErr
}

func (n *fakeNode) SaveBackend(s BackendSettings) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.saved = &s
	return nil
}

func (n *fakeNode) UseBackend(b chain.Backend) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.used = append(n.used, b.(*fakeBackend))
}

func (n *fakeNode) set(fn func(n *fakeNode)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fn(n)
}

// checkError is an error whose message is a sentence for the owner, as CheckBackend gives.
type checkError struct {
	msg  string
	kind error
}

func (e *checkError) Error() string { return e.msg }
func (e *checkError) Unwrap() error { return e.kind }

// newNodeHarness is a harness whose Server has the fake node, with a wallet service.
func newNodeHarness(t *testing.T) (*harness, *fakeNode, *fakeWallet) {
	t.Helper()
	fw := newFakeWallet()
	fn := &fakeNode{wallet: fw}
	h := newHarnessNode(t, fn)
	return h, fn, fw
}

// newHarnessNode is newHarness with node as Config.Node.
func newHarnessNode(t *testing.T, node Node) *harness {
	t.Helper()
	h := newHarness(t)
	h.node = node
	h.reopen()
	return h
}
