package chain

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/regtest"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// testConfig is the configuration of a backend for node n, with short back-off and polling.
func testConfig(n *regtest.Node) Config {
	return Config{
		Host:          n.RPCAddr,
		User:          n.User,
		Pass:          n.Pass,
		Cert:          n.Cert,
		NoTLS:         n.NoTLS,
		Params:        n.Params,
		Timeout:       10 * time.Second,
		ProbeInterval: 200 * time.Millisecond,
		BackoffMin:    50 * time.Millisecond,
		BackoffMax:    200 * time.Millisecond,
		PollInterval:  50 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

func newBackend(t *testing.T, cfg Config) *RPC {
	t.Helper()
	b, err := NewRPC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newScript(t *testing.T, params *chaincfg.Params) (btcutil.Address, []byte) {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), params)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, script
}

func TestRPCBestBlockAfterMining(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)

	hashes := n.Generate(101)
	start := time.Now()
	best, err := b.BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BestBlock (first call, with network check) took %v", time.Since(start))
	if best.Height != 101 || best.Hash != *hashes[100] {
		t.Fatalf("best block %v, want 101/%v", best, hashes[100])
	}
	if time.Since(best.Time) > time.Hour || time.Until(best.Time) > 2*time.Hour {
		t.Errorf("best block time %v is not recent", best.Time)
	}

	hash, err := b.BlockHash(ctx, 50)
	if err != nil || hash != *hashes[49] {
		t.Fatalf("BlockHash(50) = %v, %v; want %v", hash, err, hashes[49])
	}
	hdr, err := b.HeaderByHeight(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Hash != *hashes[49] || hdr.PrevBlock != *hashes[48] || hdr.Height != 50 {
		t.Fatalf("header at 50: %+v", hdr)
	}
	genesis, err := b.HeaderByHeight(ctx, 0)
	if err != nil || genesis.Hash != *n.Params.GenesisHash || genesis.PrevBlock != (chainhash.Hash{}) {
		t.Fatalf("genesis header %+v, %v", genesis, err)
	}
	block, err := b.BlockByHash(ctx, *hashes[100])
	if err != nil {
		t.Fatal(err)
	}
	if block.Header.PrevBlock != *hashes[99] || len(block.Transactions) != 1 {
		t.Fatalf("block 101: prev %v, %d txs", block.Header.PrevBlock, len(block.Transactions))
	}

	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"height above tip", func() error { _, err := b.BlockHash(ctx, 102); return err }, ErrNotFound},
		{"negative height", func() error { _, err := b.HeaderByHeight(ctx, -1); return err }, ErrNotFound},
		{"unknown header", func() error { _, err := b.HeaderByHash(ctx, chainhash.Hash{1}); return err }, ErrNotFound},
		{"unknown block", func() error { _, err := b.BlockByHash(ctx, chainhash.Hash{1}); return err }, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}

	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Best.Height != 101 || st.Best.Hash != best.Hash || st.Syncing || st.Progress != 1 {
		t.Errorf("status %+v", st)
	}
	t.Logf("status: %+v", st)
	if err := b.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestRPCWrongNetwork(t *testing.T) {
	n := regtest.Start(t)
	for _, params := range []*chaincfg.Params{
		&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.SimNetParams, &chaincfg.SigNetParams,
	} {
		t.Run(params.Name, func(t *testing.T) {
			cfg := testConfig(n)
			cfg.Params = params
			b := newBackend(t, cfg)
			ctx := ctxT(t)
			start := time.Now()
			_, err := b.BestBlock(ctx)
			if !errors.Is(err, ErrWrongNetwork) {
				t.Fatalf("BestBlock: %v, want ErrWrongNetwork", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("wrong network took %v to report (it must not be retried)", d)
			}
			t.Log(err)
			if err := b.Ready(ctx); !errors.Is(err, ErrWrongNetwork) {
				t.Fatalf("Ready: %v, want ErrWrongNetwork", err)
			}
		})
	}
}

func TestRPCAuth(t *testing.T) {
	n := regtest.Start(t)
	dir := t.TempDir()
	writeCookie := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		want  error
		works bool
	}{
		{"right password", func(c *Config) {}, nil, true},
		{"wrong password", func(c *Config) { c.Pass = "wrong" }, ErrAuth, false},
		{"wrong user", func(c *Config) { c.User = "mallory" }, ErrAuth, false},
		{"cookie file", func(c *Config) {
			c.User, c.Pass = "", ""
			c.CookieFile = writeCookie("good.cookie", n.User+":"+n.Pass)
		}, nil, true},
		{"cookie with wrong password", func(c *Config) {
			c.User, c.Pass = "", ""
			c.CookieFile = writeCookie("bad.cookie", n.User+":nope")
		}, ErrAuth, false},
		{"missing cookie file", func(c *Config) {
			c.User, c.Pass = "", ""
			c.CookieFile = filepath.Join(dir, "absent.cookie")
		}, ErrAuth, false},
		{"malformed cookie file", func(c *Config) {
			c.User, c.Pass = "", ""
			c.CookieFile = writeCookie("malformed.cookie", "no colon here")
		}, ErrAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(n)
			tc.edit(&cfg)
			b := newBackend(t, cfg)
			ctx := ctxT(t)
			start := time.Now()
			_, err := b.BestBlock(ctx)
			if tc.works {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrNodeDown) {
				t.Fatalf("auth failure also reported as node down: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("auth failure took %v to report (it must not be retried)", d)
			}
			if err := b.Ready(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("Ready: %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestRPCCookieRotation restarts the node with a new password and cookie, as bitcoind
// writes a new cookie at every start: the backend reads the new cookie without a restart
// of its own, although rpcclient caches the cookie for 30 s.
func TestRPCCookieRotation(t *testing.T) {
	n := regtest.Start(t, regtest.Simnet())
	cookie := filepath.Join(t.TempDir(), ".cookie")
	if err := os.WriteFile(cookie, []byte(n.User+":"+n.Pass), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(n)
	cfg.User, cfg.Pass, cfg.CookieFile = "", "", cookie
	b := newBackend(t, cfg)
	ctx := ctxT(t)
	if _, err := b.BestBlock(ctx); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	n.Pass = "rotated-password"
	if err := os.WriteFile(cookie, []byte(n.User+":"+n.Pass), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Restart()
	if _, err := b.BestBlock(ctx); err != nil {
		t.Fatalf("after the cookie changed: %v", err)
	}
}

func TestRPCTLS(t *testing.T) {
	tlsNode := regtest.Start(t)
	plainNode := regtest.Start(t, regtest.NoTLS())
	other := regtest.Start(t)
	for _, tc := range []struct {
		name string
		cfg  func() Config
		want error
	}{
		{"plain HTTP like bitcoind", func() Config { return testConfig(plainNode) }, nil},
		{"another node's certificate", func() Config {
			c := testConfig(tlsNode)
			c.Cert = other.Cert
			return c
		}, ErrTLS},
		{"system roots for a self-signed certificate", func() Config {
			c := testConfig(tlsNode)
			c.Cert = nil
			return c
		}, ErrTLS},
		{"plain HTTP to a TLS server", func() Config {
			c := testConfig(tlsNode)
			c.NoTLS = true
			return c
		}, ErrTLS},
		{"TLS to a plain server", func() Config {
			c := testConfig(plainNode)
			c.NoTLS = false
			return c
		}, ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, tc.cfg())
			_, err := b.BestBlock(ctxT(t))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || errors.Is(err, ErrNodeDown) {
				t.Fatalf("err = %v, want only %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestRPCNodeDownAndResume(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(5)
	if _, err := b.BestBlock(ctx); err != nil {
		t.Fatal(err)
	}

	n.Kill()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"BestBlock", func() error { _, err := b.BestBlock(ctx); return err }},
		{"Ready", func() error { return b.Ready(ctx) }},
		{"Broadcast", func() error { _, err := b.BroadcastRaw(ctx, []byte{1, 2, 3}); return err }},
		{"EstimateFee", func() error { _, err := b.EstimateFee(ctx, 6); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call()
			if !errors.Is(err, ErrNodeDown) {
				t.Fatalf("err = %v, want ErrNodeDown", err)
			}
			t.Logf("reported in %v: %v", time.Since(start), err)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("node down took %v to report", d)
			}
		})
	}

	start := time.Now()
	n.Restart()
	t.Logf("btcd restarted in %v", time.Since(start))
	// btcd starts a regtest chain afresh; the same backend works again.
	best, err := b.BestBlock(ctx)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	n.Generate(3)
	again, err := b.BestBlock(ctx)
	if err != nil || again.Height != best.Height+3 {
		t.Fatalf("after mining on the restarted node: %v, %v (was %v)", again, err, best)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRPCHungAndVanishingNode points the backend at a listener that accepts connections but
// never answers, then closes it during a call.
func TestRPCHungAndVanishingNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	b := newBackend(t, Config{
		Host: l.Addr().String(), User: "u", Pass: "p", NoTLS: true, Params: &chaincfg.RegressionNetParams,
		Timeout: 500 * time.Millisecond, ProbeInterval: 100 * time.Millisecond, Attempts: 1,
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx := ctxT(t)

	start := time.Now()
	_, err = b.BestBlock(ctx)
	if !errors.Is(err, ErrNodeDown) {
		t.Fatalf("hung node: %v, want ErrNodeDown", err)
	}
	t.Logf("hung node reported in %v: %v", time.Since(start), err)

	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = b.BestBlock(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: %v, want context.DeadlineExceeded", err)
	}

	go func() {
		time.Sleep(200 * time.Millisecond)
		l.Close()
	}()
	b.cfg.Timeout = 10 * time.Second
	start = time.Now()
	_, err = b.BestBlock(ctx)
	if !errors.Is(err, ErrNodeDown) {
		t.Fatalf("vanishing node: %v, want ErrNodeDown", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("vanishing node took %v to report", d)
	}
	t.Logf("vanishing node reported in %v: %v", time.Since(start), err)
}

func TestRPCBroadcast(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(101)

	_, script := newScript(t, n.Params)
	tx := n.BuildTx(wire.NewTxOut(1e8, script))
	txid, err := b.Broadcast(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if txid != tx.TxHash() {
		t.Fatalf("txid %v, want %v", txid, tx.TxHash())
	}
	if !inMempool(n, txid) {
		t.Fatal("transaction not in the mempool")
	}
	// Sending it again is not an error.
	if again, err := b.Broadcast(ctx, tx); err != nil || again != txid {
		t.Fatalf("second broadcast: %v, %v", again, err)
	}

	hash := n.Generate(1)[0]
	block, err := b.BlockByHash(ctx, *hash)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, btx := range block.Transactions {
		found = found || btx.TxHash() == txid
	}
	if !found {
		t.Fatal("transaction not in the next block")
	}
	if inMempool(n, txid) {
		t.Fatal("transaction still in the mempool after mining")
	}
	_, err = b.Broadcast(ctx, tx)
	if !errors.Is(err, ErrAlreadyInChain) || !errors.Is(err, ErrRejected) {
		t.Fatalf("broadcast of a confirmed transaction: %v, want ErrAlreadyInChain", err)
	}
	t.Log(err)
}

func inMempool(n *regtest.Node, txid chainhash.Hash) bool {
	for _, h := range n.Mempool() {
		if *h == txid {
			return true
		}
	}
	return false
}

func TestRPCMalformedTransactions(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(102)
	_, script := newScript(t, n.Params)

	good := n.BuildTx(wire.NewTxOut(1e8, script))
	var goodRaw bytes.Buffer
	if err := good.Serialize(&goodRaw); err != nil {
		t.Fatal(err)
	}
	badSig := good.Copy()
	sig := badSig.TxIn[0].Witness[0]
	sig[10] ^= 0xff
	noInputs := wire.NewMsgTx(2)
	noInputs.AddTxOut(wire.NewTxOut(1000, script))
	unknownInput := wire.NewMsgTx(2)
	unknownInput.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{7}, Index: 0}, nil, nil))
	unknownInput.AddTxOut(wire.NewTxOut(1000, script))
	overspend := good.Copy()
	overspend.TxOut[0].Value = 60e8
	negative := good.Copy()
	negative.TxOut[0].Value = -1

	serialize := func(tx *wire.MsgTx) []byte {
		var buf bytes.Buffer
		if err := tx.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		tx   *wire.MsgTx
		nil_ bool
	}{
		{name: "garbage", raw: []byte("not a transaction")},
		{name: "empty", raw: []byte{}},
		{name: "truncated", raw: goodRaw.Bytes()[:goodRaw.Len()/2]},
		{name: "trailing bytes", raw: append(append([]byte{}, goodRaw.Bytes()...), 0, 1, 2)},
		{name: "no inputs", raw: serialize(noInputs)},
		{name: "unknown input", tx: unknownInput},
		{name: "bad signature", tx: badSig},
		{name: "outputs exceed inputs", tx: overspend},
		{name: "negative output", tx: negative},
		{name: "nil", nil_: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch {
			case tc.nil_:
				_, err = b.Broadcast(ctx, nil)
			case tc.tx != nil:
				_, err = b.Broadcast(ctx, tc.tx)
			default:
				_, err = b.BroadcastRaw(ctx, tc.raw)
			}
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
			var rej *RejectError
			if !tc.nil_ && (!errors.As(err, &rej) || rej.Reason == "") {
				t.Fatalf("no reject reason in %v", err)
			}
			t.Log(err)
		})
	}
	// The node is still fine and takes the good transaction.
	if _, err := b.Broadcast(ctx, good); err != nil {
		t.Fatalf("good transaction after the bad ones: %v", err)
	}
}

func TestRPCFeeEstimate(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	check := func(stage string) {
		for _, target := range []uint32{1, 6, 144} {
			rate, err := b.EstimateFee(ctx, target)
			switch {
			case errors.Is(err, ErrFeeUnavailable):
				t.Logf("%s, target %d: %v", stage, target, err)
			case err != nil:
				t.Fatalf("%s, target %d: %v", stage, target, err)
			case rate < MinRelayFeeRate || rate > MaxSaneFeeRate:
				t.Fatalf("%s, target %d: insane rate %v", stage, target, rate)
			default:
				t.Logf("%s, target %d: %v", stage, target, rate)
			}
		}
	}
	check("fresh chain")
	n.Generate(101)
	_, script := newScript(t, n.Params)
	for range 5 {
		n.SendOutputs(wire.NewTxOut(1e7, script))
	}
	n.Generate(3)
	check("after 104 blocks and 5 transactions")
}

func TestRPCFilters(t *testing.T) {
	n := regtest.Start(t)
	b := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(101)
	_, script := newScript(t, n.Params)
	_, otherScript := newScript(t, n.Params)
	n.SendOutputs(wire.NewTxOut(2e8, script))
	hash := *n.Generate(1)[0]

	f, err := b.FilterByHash(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := MatchFilter(f, hash, [][]byte{script}); err != nil || !ok {
		t.Fatalf("filter of the paying block does not match the script: %v, %v", ok, err)
	}
	if ok, _ := MatchFilter(f, hash, [][]byte{otherScript}); ok {
		t.Log("unrelated script matched (a false positive, 1 in 784931)")
	}
	prevBlock, err := b.BlockHash(ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	if pf, _ := b.FilterByHash(ctx, prevBlock); pf != nil {
		if ok, _ := MatchFilter(pf, prevBlock, [][]byte{script}); ok {
			t.Error("filter of an earlier block matches the new script")
		}
	}

	// The filter header chain, recomputed from the filters, ends at the node's header.
	prev := chainhash.Hash{}
	for h := int32(0); h <= 102; h++ {
		bh, err := b.BlockHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		f, err := b.FilterByHash(ctx, bh)
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.FilterHeaderByHash(ctx, bh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FilterHeader(f, prev)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("filter header at %d: computed %v, node says %v", h, got, want)
		}
		prev = got
	}
	if _, err := b.FilterByHash(ctx, chainhash.Hash{9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("filter of an unknown block: %v, want ErrNotFound", err)
	}
}

func TestRPCFiltersDisabled(t *testing.T) {
	n := regtest.Start(t, regtest.Args("--nocfilters"))
	b := newBackend(t, testConfig(n))
	_, err := b.FilterByHash(ctxT(t), *n.Params.GenesisHash)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	t.Log(err)
}

// recv waits for the next event.
func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return Event{}
}

func expect(t *testing.T, ch <-chan Event, kind EventKind, height int32, hash *chainhash.Hash) Event {
	t.Helper()
	ev := recv(t, ch)
	if ev.Kind != kind || (height >= 0 && ev.Block.Height != height) || (hash != nil && ev.Block.Hash != *hash) {
		t.Fatalf("event %v, want %v at %d (%v)", ev, kind, height, hash)
	}
	return ev
}

func TestRPCSubscribeReorg(t *testing.T) {
	a, bn := regtest.Start(t), regtest.Start(t)
	a.Connect(bn)
	a.Generate(3)
	a.WaitSynced(bn)

	be := newBackend(t, testConfig(a))
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events, err := be.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Let the follower learn the tip before the chain moves.
	time.Sleep(200 * time.Millisecond)

	a.Disconnect(bn)
	mineA := a.Generate(2)
	expect(t, events, BlockConnected, 4, mineA[0])
	expect(t, events, BlockConnected, 5, mineA[1])

	mineB := bn.Generate(4)
	a.Connect(bn)
	a.WaitSynced(bn)
	start := time.Now()
	expect(t, events, BlockDisconnected, 5, mineA[1])
	expect(t, events, BlockDisconnected, 4, mineA[0])
	for i, h := range mineB {
		ev := expect(t, events, BlockConnected, int32(4+i), h)
		if i > 0 && ev.Prev != *mineB[i-1] {
			t.Fatalf("connected %v with prev %v, want %v", ev.Block, ev.Prev, mineB[i-1])
		}
	}
	t.Logf("reorg of 2 blocks by 4 followed in %v", time.Since(start))

	cancel()
	for range events { // the channel closes once ctx ends
	}
}

func TestRPCSubscribeFromAndRestart(t *testing.T) {
	n := regtest.Start(t, regtest.Simnet())
	be := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	hashes := n.Generate(4)

	// From the consumer's block 1, the blocks after it arrive first.
	from := BlockStamp{Height: 1, Hash: *hashes[0]}
	events, err := be.Subscribe(ctx, &from)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		expect(t, events, BlockConnected, int32(i+1), hashes[i])
	}

	n.Stop()
	ev := recv(t, events)
	if ev.Kind != BackendDown || !errors.Is(ev.Err, ErrNodeDown) {
		t.Fatalf("event %v, want backend-down with ErrNodeDown", ev)
	}
	n.Restart()
	expect(t, events, BackendUp, -1, nil)
	more := n.Generate(2)
	expect(t, events, BlockConnected, 5, more[0])
	expect(t, events, BlockConnected, 6, more[1])
}

func TestRPCSubscribeUnknownStart(t *testing.T) {
	n := regtest.Start(t)
	be := newBackend(t, testConfig(n))
	events, err := be.Subscribe(ctxT(t), &BlockStamp{Height: 7, Hash: chainhash.Hash{7}})
	if err != nil {
		t.Fatal(err)
	}
	ev := recv(t, events)
	if ev.Kind != EventLost || !errors.Is(ev.Err, ErrNotFound) {
		t.Fatalf("event %v, want lost", ev)
	}
	if _, ok := <-events; ok {
		t.Fatal("subscription not closed after lost")
	}
}

func TestRPCConcurrentCalls(t *testing.T) {
	n := regtest.Start(t)
	be := newBackend(t, testConfig(n))
	ctx := ctxT(t)
	n.Generate(20)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	start := time.Now()
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				h, err := be.HeaderByHeight(ctx, int32((g+i)%21))
				if err != nil {
					errs <- err
					return
				}
				if h.Height != int32((g+i)%21) {
					errs <- errors.New("wrong height")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("160 HeaderByHeight calls (320 RPCs) from 16 goroutines over a pool of %d: %v",
		be.cfg.PoolSize, time.Since(start))

	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := be.BestBlock(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}
