package wallet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/p2p"
	"github.com/anya-edge/anya/node/regtest"
)

// The tests in this file run the wallet against real btcd nodes (node/regtest), through
// both backends: node/chain's RPC and node/p2p's light client.

func needBtcd(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts btcd")
	}
}

// rpcBackend is node/chain's RPC backend on n, with short timeouts and polling.
func rpcBackend(t *testing.T, n *regtest.Node) *chain.RPC {
	t.Helper()
	b, err := chain.NewRPC(chain.Config{Host: n.RPCAddr, User: n.User, Pass: n.Pass, Cert: n.Cert, NoTLS: n.NoTLS,
		Params: n.Params, Timeout: 10 * time.Second, DialTimeout: time.Second, ProbeInterval: 200 * time.Millisecond,
		Attempts: 2, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, PoolSize: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// p2pBackend is node/p2p's light client with n as its only peer (btcd serves compact
// filters by default).
func p2pBackend(t *testing.T, n *regtest.Node) *p2p.Backend {
	t.Helper()
	b, err := p2p.NewBackend(p2p.Config{Params: n.Params, Peers: []string{n.P2PAddr}, DB: openDB(t), Logger: quiet,
		Timeout: 10 * time.Second, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// mempoolBackend gives a backend the optional chain.MempoolWatcher capability by polling
// btcd's mempool over RPC. Neither real backend implements it yet; this feeds the wallet's
// mempool path with real transactions from btcd.
type mempoolBackend struct {
	chain.Backend
	node *regtest.Node
}

func (m *mempoolBackend) WatchMempool(ctx context.Context) (<-chan *wire.MsgTx, error) {
	c, err := m.node.NewClient()
	if err != nil {
		return nil, err
	}
	out := make(chan *wire.MsgTx)
	go func() {
		defer close(out)
		defer c.Shutdown()
		seen := map[chainhash.Hash]bool{}
		for {
			hashes, _ := c.GetRawMempool()
			for _, h := range hashes {
				if seen[*h] {
					continue
				}
				tx, err := c.GetRawTransaction(h)
				if err != nil {
					continue
				}
				seen[*h] = true
				select {
				case out <- tx.MsgTx():
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out, nil
}

// withMempool returns b if it watches the mempool itself, else b with mempoolBackend.
func withMempool(b chain.Backend, n *regtest.Node) chain.Backend {
	if _, ok := b.(chain.MempoolWatcher); ok {
		return b
	}
	return &mempoolBackend{b, n}
}

// run starts w.Run until the test ends.
func run(t *testing.T, w *Wallet, b chain.Backend) {
	t.Helper()
	w.SetBackend(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSynced waits until the wallet reports synced at n's best block.
func waitSynced(t *testing.T, w *Wallet, n *regtest.Node) {
	t.Helper()
	var st SyncStatus
	deadline := time.Now().Add(120 * time.Second)
	for {
		best, height := n.Best()
		st = w.Sync()
		if st.State == SyncSynced && st.Wallet.Hash == best.String() && st.Progress == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("wallet not synced to %d/%v: %+v", height, best, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitBalance(t *testing.T, w *Wallet, confirmed, unconfirmed int64) {
	t.Helper()
	var b Balance
	deadline := time.Now().Add(120 * time.Second)
	for {
		var err error
		if b, err = w.Balance(); err != nil {
			t.Fatal(err)
		}
		if b.Confirmed == confirmed && b.Unconfirmed == unconfirmed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance %+v, want confirmed %d unconfirmed %d", b, confirmed, unconfirmed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inMempool(n *regtest.Node, txid chainhash.Hash) bool {
	for _, h := range n.Mempool() {
		if *h == txid {
			return true
		}
	}
	return false
}

func inBlock(b *wire.MsgBlock, txid chainhash.Hash) bool {
	for _, tx := range b.Transactions {
		if tx.TxHash() == txid {
			return true
		}
	}
	return false
}

// fund pays amount to a new address of the wallet from the node's coins.
func fund(t *testing.T, w *Wallet, n *regtest.Node, amount int64) *wire.MsgTx {
	t.Helper()
	a, err := w.NewAddress()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.DecodeAddress(a.Address, n.Params)
	if err != nil {
		t.Fatal(err)
	}
	return n.SendTo(addr, btcutil.Amount(amount))
}

// TestRegtestReceiveAndSend: the wallet follows btcd, sees a payment unconfirmed (with a
// mempool source) then confirmed, sends with the box's signature, and the node mines it;
// balance, change and history are right. Over RPC and over the P2P light client (which
// also broadcasts), for several descriptor types; the 2-of-2 multisig needs the
// cosigner's signature (SignOnly, then Broadcast).
func TestRegtestReceiveAndSend(t *testing.T) {
	needBtcd(t)
	n := regtest.Start(t)
	n.Generate(101)
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	for i, tc := range []struct {
		name    string
		backend func() chain.Backend
		desc    string
		mempool bool
		cosign  *testKey
	}{
		{name: "rpc wpkh", backend: func() chain.Backend { return withMempool(rpcBackend(t, n), n) },
			desc: k1.descriptor(t, 84), mempool: true},
		{name: "p2p tr", backend: func() chain.Backend { return p2pBackend(t, n) }, desc: k1.descriptor(t, 86)},
		{name: "rpc sh-wpkh", backend: func() chain.Backend { return rpcBackend(t, n) }, desc: k1.descriptor(t, 49)},
		{name: "rpc wsh 2-of-2", backend: func() chain.Backend { return rpcBackend(t, n) }, desc: multisig(t, 2, k1, k2), cosign: k2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			step := func(s string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), s) }
			w := openWallet(t, nil, k1, tc.desc)
			run(t, w, tc.backend())
			waitSynced(t, w, n)
			step("synced")
			if st := w.Sync(); st.Backend == "" || st.Chain.Best.Height < 101 {
				t.Fatalf("status %+v", st)
			}

			amount := int64(100_000_000 + i)
			fundTx := fund(t, w, n, amount)
			if tc.mempool {
				waitBalance(t, w, 0, amount)
				if h := historyOf(t, w, fundTx.TxHash()); h.Confirmations != 0 || h.Received != amount || !h.CPFPable {
					t.Fatalf("unconfirmed payment %+v", h)
				}
			}
			step("funded")
			n.Generate(1)
			waitBalance(t, w, amount, 0)
			waitSynced(t, w, n)
			step("confirmed")
			if h := historyOf(t, w, fundTx.TxHash()); h.Confirmations != 1 || h.Received != amount || h.Height == 0 {
				t.Fatalf("confirmed payment %+v", h)
			}

			p, err := w.Propose(ctx, SendRequest{Payments: []Payment{{Address: n.MiningAddress().EncodeAddress(), Amount: 30_000_000}},
				FeeRate: 5000})
			if err != nil {
				t.Fatal(err)
			}
			if p.Fee+p.Sent+p.Change != amount || p.Change == 0 {
				t.Fatalf("proposal %+v", p)
			}
			var txid chainhash.Hash
			if tc.cosign != nil {
				if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrNeedsSignatures) {
					t.Fatalf("Send of a 2-of-2 signed by one: %v", err)
				}
				part, err := w.SignOnly(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Broadcast(ctx, part); !errors.Is(err, ErrNeedsSignatures) {
					t.Fatalf("Broadcast with one signature: %v", err)
				}
				res, err := tc.cosign.signer.Sign(part, sign.SignOptions{})
				if err != nil {
					t.Fatal(err)
				}
				b64, err := res.Base64()
				if err != nil {
					t.Fatal(err)
				}
				if txid, err = w.Broadcast(ctx, []byte(b64)); err != nil {
					t.Fatal(err)
				}
			} else if txid, err = w.Send(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrProposalExpired) {
				t.Fatalf("second Send of a sent proposal: %v", err)
			}
			// Recorded at once: the change is unconfirmed, the spent coin gone.
			step("sent")
			waitBalance(t, w, 0, p.Change)
			waitFor(t, "the transaction in btcd's mempool", func() bool { return inMempool(n, txid) })
			mined := n.Block(n.Generate(1)[0])
			if !inBlock(mined, txid) {
				t.Fatal("transaction not mined")
			}
			waitBalance(t, w, p.Change, 0)
			waitSynced(t, w, n)
			step("mined")
			h, err := w.History()
			if err != nil || len(h) != 2 {
				t.Fatalf("history %+v, %v", h, err)
			}
			if h[0].TxID != txid.String() || h[0].Confirmations != 1 || h[0].Fee != p.Fee || h[0].Net() != -p.Fee-p.Sent ||
				h[1].TxID != fundTx.TxHash().String() || h[1].Confirmations != 2 {
				t.Fatalf("history %+v", h)
			}
		})
	}
}

// TestRegtestBumpAndCPFP: a low-fee send is replaced by a bump in btcd's mempool and
// leaves the wallet's pending state; then a child pays for the bump (CPFP), btcd accepts
// the child spending its unconfirmed parent, and both confirm. btcd's miner does not
// select by ancestor fee rate (on regtest every transaction fits the next block anyway),
// so this shows that the child is built at the package rate asked and accepted, not that
// it speeds anything up.
func TestRegtestBumpAndCPFP(t *testing.T) {
	needBtcd(t)
	ctx := context.Background()
	n := regtest.Start(t)
	n.Generate(101)
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, 84))
	run(t, w, rpcBackend(t, n))
	fund(t, w, n, 50_000_000)
	n.Generate(1)
	waitBalance(t, w, 50_000_000, 0)

	dest := n.MiningAddress().EncodeAddress()
	p, err := w.Propose(ctx, SendRequest{Payments: []Payment{{Address: dest, Amount: 10_000_000}}, FeeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := w.Send(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h := historyOf(t, w, orig); !h.Replaceable {
		t.Fatalf("original not replaceable: %+v", h)
	}
	bp, err := w.ProposeBump(ctx, orig, 5000)
	if err != nil {
		t.Fatal(err)
	}
	bump, err := w.Send(ctx, bp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !inMempool(n, bump) || inMempool(n, orig) {
		t.Fatalf("btcd's mempool %v: want the bump %v instead of %v", n.Mempool(), bump, orig)
	}
	if h := historyOf(t, w, orig); h.ReplacedBy != bump.String() || h.Replaceable {
		t.Fatalf("original after the bump %+v", h)
	}
	waitBalance(t, w, 0, bp.Change)
	coins, _ := w.Coins()
	for _, c := range coins {
		if c.OutPoint[:64] == orig.String() {
			t.Fatalf("coin of the replaced transaction: %+v", c)
		}
	}

	const packageRate = 20_000
	cp, err := w.ProposeCPFP(ctx, bump, packageRate)
	if err != nil {
		t.Fatal(err)
	}
	child, err := w.Send(ctx, cp.ID)
	if err != nil {
		t.Fatalf("btcd refused the child: %v", err)
	}
	if !inMempool(n, child) || !inMempool(n, bump) {
		t.Fatal("parent and child not both in btcd's mempool")
	}
	// The package rate from the transactions as btcd has them.
	var fees, vsizes int64
	for _, id := range []chainhash.Hash{bump, child} {
		tx, err := n.RPC().GetRawTransaction(&id)
		if err != nil {
			t.Fatal(err)
		}
		fee, all, err := w.txFee(tx.MsgTx())
		if err != nil || !all {
			t.Fatalf("fee of %v: %v", id, err)
		}
		fees += fee
		vsizes += regtest.VSize(tx.MsgTx())
	}
	if got := feeRateOf(fees, vsizes); got < packageRate || got > packageRate+200 || cp.PackageFeeRate < packageRate {
		t.Fatalf("package rate %v (proposal said %v), want %v", got, cp.PackageFeeRate, chain.FeeRate(packageRate))
	}
	mined := n.Block(n.Generate(1)[0])
	if !inBlock(mined, bump) || !inBlock(mined, child) {
		t.Fatal("parent and child not mined together")
	}
	waitBalance(t, w, cp.Change, 0)
	waitSynced(t, w, n)
	for _, id := range []chainhash.Hash{bump, child} {
		if h := historyOf(t, w, id); h.Confirmations != 1 || h.Replaceable || h.CPFPable {
			t.Fatalf("after mining %+v", h)
		}
	}
}

// TestRegtestTimelocks: btcd refuses a transaction before its absolute or BIP68 relative
// timelock (ErrLockTimeNotYet) and accepts the same proposal once the chain got there.
// On regtest btcd relays non-standard transactions by default, and its finality check for
// the mempool is part of the standardness checks: --rejectnonstd turns them on, as on
// mainnet. (Sequence locks are checked either way.)
func TestRegtestTimelocks(t *testing.T) {
	needBtcd(t)
	ctx := context.Background()
	n := regtest.Start(t, regtest.Args("--rejectnonstd"))
	n.Generate(101)
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, 84))
	run(t, w, rpcBackend(t, n))
	coin := fund(t, w, n, 20_000_000)
	n.Generate(1)
	waitBalance(t, w, 20_000_000, 0)
	waitSynced(t, w, n)
	_, h := n.Best()
	dest := n.MiningAddress().EncodeAddress()
	var op string
	for i := range coin.TxOut {
		if o, ok, _ := w.store.Output(wire.OutPoint{Hash: coin.TxHash(), Index: uint32(i)}.String()); ok {
			op = o.OutPoint
		}
	}

	// Absolute: final once the next block's height is above the lock time.
	lock := uint32(h + 3)
	p, err := w.Propose(ctx, SendRequest{Payments: []Payment{{Address: dest, Amount: 1_000_000}}, FeeRate: 2000,
		LockTime: lock, Coins: []string{op}})
	if err != nil {
		t.Fatal(err)
	}
	if p.LockTime != lock {
		t.Fatalf("lock time %d", p.LockTime)
	}
	for range 2 {
		if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrLockTimeNotYet) {
			t.Fatalf("Send before the lock time: %v", err)
		}
		n.Generate(1)
	}
	if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrLockTimeNotYet) {
		t.Fatalf("Send at the lock time: %v", err)
	}
	n.Generate(1) // the next block's height is now above the lock time
	abs, err := w.Send(ctx, p.ID)
	if err != nil {
		t.Fatalf("Send after the lock time: %v", err)
	}
	if !inMempool(n, abs) || !inBlock(n.Block(n.Generate(1)[0]), abs) {
		t.Fatal("the absolute timelock spend was not mined")
	}

	// Relative: valid once the coin has 3 confirmations.
	coin = fund(t, w, n, 30_000_000)
	mined := n.Generate(1)
	waitSynced(t, w, n)
	for i := range coin.TxOut {
		if o, ok, _ := w.store.Output(wire.OutPoint{Hash: coin.TxHash(), Index: uint32(i)}.String()); ok {
			op = o.OutPoint
		}
	}
	p, err = w.Propose(ctx, SendRequest{Payments: []Payment{{Address: dest, Amount: 1_000_000}}, FeeRate: 2000,
		RelativeLock: 3, Coins: []string{op}})
	if err != nil {
		t.Fatal(err)
	}
	for confs := 1; confs < 3; confs++ {
		if _, err := w.Send(ctx, p.ID); !errors.Is(err, ErrLockTimeNotYet) {
			t.Fatalf("Send with %d confirmations: %v", confs, err)
		}
		n.Generate(1)
	}
	rel, err := w.Send(ctx, p.ID)
	if err != nil {
		t.Fatalf("Send with 3 confirmations: %v", err)
	}
	if !inBlock(n.Block(n.Generate(1)[0]), rel) {
		t.Fatalf("the relative timelock spend was not mined (its coin confirmed in %v)", mined[0])
	}
	waitSynced(t, w, n)
	for _, id := range []chainhash.Hash{abs, rel} {
		if h := historyOf(t, w, id); h.Height == 0 || h.Fee <= 0 {
			t.Fatalf("history %+v", h)
		}
	}
}

// TestRegtestReorg: two btcd nodes mine competing branches. The payment the wallet saw
// confirmed on the shorter branch goes back to unconfirmed when the node it follows
// switches to the longer one, and confirms again when mined on it.
func TestRegtestReorg(t *testing.T) {
	needBtcd(t)
	a, b := regtest.Start(t), regtest.Start(t)
	a.Generate(101)
	a.Connect(b)
	a.WaitSynced(b)

	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, 84))
	run(t, w, rpcBackend(t, a))
	waitSynced(t, w, a)
	pay := a.BuildTx(wire.NewTxOut(70_000_000, receiveAt(t, w, 0, 0).ScriptPubKey))

	// btcd dials a removed node again after a few seconds: the branches are made at once.
	a.Disconnect(b)
	if _, err := a.RPC().SendRawTransaction(pay, true); err != nil {
		t.Fatal(err)
	}
	a.Generate(1)
	waitBalance(t, w, 70_000_000, 0)
	if h := historyOf(t, w, pay.TxHash()); h.Height != 102 {
		t.Fatalf("payment %+v", h)
	}
	b.Generate(3)
	if ha, _ := a.Best(); func() bool { hb, _ := b.Best(); return ha.IsEqual(hb) }() {
		t.Fatal("the branches did not diverge")
	}
	if err := a.RPC().AddNode(b.P2PAddr, rpcclient.ANOneTry); err != nil {
		t.Logf("addnode onetry: %v", err) // already connected again
	}
	a.WaitSynced(b)
	if _, h := a.Best(); h != 104 {
		t.Fatalf("a at %d after the reorg", h)
	}
	waitSynced(t, w, a)
	waitBalance(t, w, 0, 70_000_000)
	if h := historyOf(t, w, pay.TxHash()); h.Height != 0 || h.Confirmations != 0 {
		t.Fatalf("payment after the reorg %+v", h)
	}
	// btcd puts the transactions of disconnected blocks back in its mempool.
	if !inMempool(a, pay.TxHash()) {
		if _, err := a.RPC().SendRawTransaction(pay, true); err != nil {
			t.Fatal(err)
		}
	}
	a.Generate(1)
	waitBalance(t, w, 70_000_000, 0)
	waitSynced(t, w, a)
	if h := historyOf(t, w, pay.TxHash()); h.Height != 105 || h.Confirmations != 1 {
		t.Fatalf("payment mined again %+v", h)
	}
}

// TestRegtestBackendKilled: btcd dies while the wallet scans; the wallet reports
// SyncDown with the error, then catches up with the node once it is back. The node runs on
// simnet, which keeps its chain over a restart. The wallet's birthday spares it the scan
// of the blocks before segwit activated on simnet.
func TestRegtestBackendKilled(t *testing.T) {
	needBtcd(t)
	n := regtest.Start(t, regtest.Simnet())
	k := newTestKey(t, 1)
	w, err := Open(Config{DB: openDB(t), Network: keys.Regtest, Descriptors: []string{k.descriptor(t, 84)},
		Signer: boxSigner{k.signer}, Log: quiet, Birthday: 340,
		RetryDelay: 200 * time.Millisecond, StatusInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Segwit activates on simnet by BIP9 signalling (windows of 100 blocks) at 300.
	n.Generate(350)
	pay := n.SendOutputs(wire.NewTxOut(40_000_000, receiveAt(t, w, 0, 0).ScriptPubKey))
	n.Generate(150)
	// An orderly restart writes the chain to disk; a SIGKILL now would lose it all.
	n.Restart()
	if _, h := n.Best(); h != 500 {
		t.Fatalf("simnet node at %d after a restart", h)
	}

	run(t, w, rpcBackend(t, n))
	waitFor(t, "the scan to start", func() bool { return w.Sync().Wallet.Height >= 360 })
	n.Kill()
	st := w.Sync()
	t.Logf("btcd killed with the wallet at %d of 500", st.Wallet.Height)
	waitFor(t, "SyncDown", func() bool { st = w.Sync(); return st.State == SyncDown && st.Err != "" })
	t.Logf("while down: %s (wallet at %d)", st.Err, st.Wallet.Height)

	n.Restart()
	waitSynced(t, w, n)
	if st := w.Sync(); st.Wallet.Height != 500 || st.Err != "" {
		t.Fatalf("after the restart %+v", st)
	}
	waitBalance(t, w, 40_000_000, 0)
	if h := historyOf(t, w, pay.TxHash()); h.Height != 351 {
		t.Fatalf("payment %+v", h)
	}
}

// TestRegtestGapLimitAndSwitch: a payment to receive index 25 (beyond the first window
// of 20) is found because a payment to index 10 in the same block extends the window; the
// wallet then switches from the RPC backend to the light client, to none, and to a node
// of another chain.
func TestRegtestGapLimitAndSwitch(t *testing.T) {
	needBtcd(t)
	n := regtest.Start(t)
	n.Generate(101)
	k := newTestKey(t, 1)
	w := openWallet(t, nil, k, k.descriptor(t, 84))
	run(t, w, rpcBackend(t, n))
	n.SendOutputs(wire.NewTxOut(25_000, receiveAt(t, w, 0, 25).ScriptPubKey),
		wire.NewTxOut(10_000, receiveAt(t, w, 0, 10).ScriptPubKey))
	n.Generate(1)
	waitBalance(t, w, 35_000, 0)
	waitSynced(t, w, n)

	lc := p2pBackend(t, n)
	w.SetBackend(lc)
	n.SendOutputs(wire.NewTxOut(45_000, receiveAt(t, w, 0, 45).ScriptPubKey))
	n.Generate(1)
	waitBalance(t, w, 80_000, 0)
	waitSynced(t, w, n)
	if st := w.Sync(); st.Chain.Backend != "anya p2p light client" {
		t.Fatalf("status after the switch %+v", st)
	}
	if _, ok := any(lc).(chain.PeerReporter); ok {
		if peers := w.Peers(); len(peers) != 1 || peers[0].Addr != n.P2PAddr {
			t.Fatalf("peers %+v, want btcd at %s", peers, n.P2PAddr)
		}
	} else if peers := w.Peers(); len(peers) != 0 {
		t.Fatalf("peers %+v from a backend without PeerReporter", peers)
	}
	w.SetBackend(nil)
	if st := w.Sync(); st.State != SyncNoBackend {
		t.Fatalf("without backend: %+v", st)
	}

	// A node with another chain (sharing only the genesis block): following it from the
	// wallet's tip is lost, the wallet walks its blocks back and scans the new chain.
	other := regtest.Start(t)
	other.Generate(120)
	w.SetBackend(rpcBackend(t, other))
	waitSynced(t, w, other)
	if st := w.Sync(); st.Wallet.Height != 120 {
		t.Fatalf("status on the other chain %+v", st)
	}
	// The payments are not on this chain: like Bitcoin Core, the wallet keeps them as
	// unconfirmed (not spendable: they are not the wallet's own) rather than forget them.
	waitBalance(t, w, 0, 80_000)
	if h, err := w.History(); err != nil || len(h) != 2 || h[0].Height != 0 || h[1].Height != 0 {
		t.Fatalf("history on the other chain %+v, %v", h, err)
	}
	if coins, err := w.spendable(false); err != nil || len(coins) != 0 {
		t.Fatalf("spendable on the other chain: %d, %v", len(coins), err)
	}
	if _, err := w.Send(context.Background(), "x"); !errors.Is(err, ErrProposalExpired) {
		t.Fatal(err)
	}
}

// TestRegtestBirthdayTime: a wallet created at a known time skips the blocks before it —
// a payment mined before its birthday is not scanned (a restored wallet, without a
// birthday, finds both) — and the first height scanned is the first block stamped after it.
func TestRegtestBirthdayTime(t *testing.T) {
	needBtcd(t)
	n := regtest.Start(t)
	n.Generate(101)
	k := newTestKey(t, 1)
	desc := k.descriptor(t, 84)
	pay := func(index uint32, amount int64) {
		a := receiveAt(t, openWallet(t, nil, k, desc), 0, index) // same keys, scratch store
		addr, err := btcutil.DecodeAddress(a.Address, n.Params)
		if err != nil {
			t.Fatal(err)
		}
		n.SendTo(addr, btcutil.Amount(amount))
		n.Generate(1)
	}
	pay(0, 10_000_000)
	n.Generate(10)
	// btcd stamps a block with the later of the clock and the median past time + 1 s, so
	// blocks mined in a burst run ahead of the clock: wait until the clock passes the tip.
	hash, _ := n.Best()
	hdr, err := n.RPC().GetBlockHeader(hash)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(hdr.Timestamp.Add(2 * time.Second)))
	born := time.Now().Truncate(time.Second) // block times have whole seconds
	pay(1, 20_000_000)
	tipHash, tip := n.Best()
	if h, err := n.RPC().GetBlockHeader(tipHash); err == nil {
		t.Logf("born %v, block %d stamped %v", born, tip, h.Timestamp)
	}

	for _, tc := range []struct {
		name     string
		birthday time.Time
		want     int64
	}{
		{"restored", time.Time{}, 30_000_000},
		{"born between the payments", born, 20_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(Config{DB: openDB(t), Network: keys.Regtest, Descriptors: []string{desc},
				Signer: boxSigner{k.signer}, Log: quiet, BirthdayTime: tc.birthday})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.margin = 0
			run(t, w, rpcBackend(t, n))
			waitSynced(t, w, n)
			waitBalance(t, w, tc.want, 0)
			w.mu.Lock()
			birth := w.birth
			w.mu.Unlock()
			if tc.birthday.IsZero() && birth != 0 || !tc.birthday.IsZero() && (birth <= 112 || birth > tip) {
				t.Fatalf("scan started at %d (tip %d)", birth, tip)
			}
			t.Logf("scan started at height %d of %d", birth, tip)
		})
	}
}
