package backend

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/regtest"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func rpcSettings(n *regtest.Node) Settings {
	return Settings{Kind: KindRPC, RPC: RPCSettings{Host: n.RPCAddr, User: n.User, Pass: n.Pass, Cert: string(n.Cert), NoTLS: n.NoTLS}}
}

func open(t *testing.T, s Settings, params *chaincfg.Params, log *slog.Logger) chain.Backend {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "anya.db"))
	t.Cleanup(func() { db.Close() })
	b, err := Open(s, Options{Params: params, DB: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// freePort is a loopback address nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOpenCheck opens both kinds of backend against a real btcd and checks them; the
// failures come back as a sentence for the owner that still matches the chain error.
func TestOpenCheck(t *testing.T) {
	n := regtest.Start(t)
	n.Generate(101)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wrongPass := rpcSettings(n)
	wrongPass.RPC.Pass = "not-" + n.Pass
	plainToTLS := rpcSettings(n)
	plainToTLS.RPC.NoTLS = true
	down := rpcSettings(n)
	down.RPC.Host = freePort(t)
	for _, tc := range []struct {
		name     string
		s        Settings
		params   *chaincfg.Params
		timeout  time.Duration
		kind     error  // nil: ready
		sentence string // part of the sentence
	}{
		{"rpc", rpcSettings(n), n.Params, 20 * time.Second, nil, ""},
		{"p2p", Settings{Kind: KindP2P, Peers: []string{n.P2PAddr}}, n.Params, 20 * time.Second, nil, ""},
		{"rpc wrong password", wrongPass, n.Params, 20 * time.Second, chain.ErrAuth, "refused the credentials"},
		{"rpc wrong network", rpcSettings(n), &chaincfg.MainNetParams, 20 * time.Second, chain.ErrWrongNetwork,
			"another Bitcoin network: this box is set up for mainnet"},
		{"rpc plain HTTP to TLS", plainToTLS, n.Params, 20 * time.Second, chain.ErrTLS, "secure connection"},
		{"rpc node down", down, n.Params, 20 * time.Second, chain.ErrNodeDown, "does not answer at this address"},
		{"p2p peer down", Settings{Kind: KindP2P, Peers: []string{freePort(t)}}, n.Params, 2 * time.Second,
			chain.ErrNodeDown, "no connection to a regtest peer"},
		// A light client on the wrong network fails the handshake (magic): no peer.
		{"p2p wrong network", Settings{Kind: KindP2P, Peers: []string{n.P2PAddr}}, &chaincfg.TestNet3Params,
			2 * time.Second, chain.ErrNodeDown, "no connection to a testnet3 peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, tc.s, tc.params, log)
			start := time.Now()
			err := Check(ctxTimeout(t, tc.timeout), b)
			t.Logf("Check took %v: %v", time.Since(start), err)
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Kind != tc.kind || !errors.Is(err, tc.kind) {
				t.Fatalf("err %v (%#v), want a CheckError of kind %v", err, ce, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.sentence) {
				t.Fatalf("sentence %q lacks %q", err, tc.sentence)
			}
			if strings.Contains(err.Error(), "chain:") {
				t.Fatalf("sentence %q is not for the owner", err)
			}
		})
	}
	if strings.Contains(logs.String(), n.Pass) {
		t.Fatalf("the password reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "chain backend opened") {
		t.Fatalf("nothing logged:\n%s", logs.String())
	}
}

// TestOpenP2PLifecycle: the light client Open starts connects and syncs, reports its peer,
// and Close stops it (btcd sees it go).
func TestOpenP2PLifecycle(t *testing.T) {
	n := regtest.Start(t)
	n.Generate(30)
	db := openDB(t, filepath.Join(t.TempDir(), "anya.db"))
	defer db.Close()
	if _, err := Open(Settings{Kind: KindP2P}, Options{Params: n.Params, DB: db}); err == nil {
		t.Fatal("a regtest light client without peers opened")
	} else if fe := (FieldErrors{}); !errors.As(err, &fe) || fe["peers"] == "" {
		t.Fatalf("no peers on regtest: %v, want a FieldErrors on peers", err)
	}
	if _, err := Open(Settings{Kind: KindP2P, Peers: []string{"nope"}}, Options{Params: n.Params, DB: db}); err == nil {
		t.Fatal("invalid settings opened")
	}

	b, err := Open(Settings{Kind: KindP2P, Peers: []string{n.P2PAddr}}, Options{Params: n.Params, DB: db,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(ctxTimeout(t, 20*time.Second), b); err != nil {
		t.Fatal(err)
	}
	pr, ok := b.(chain.PeerReporter)
	if !ok {
		t.Fatal("the light client does not report peers")
	}
	peers := pr.Peers()
	best, height := n.Best()
	if len(peers) != 1 || peers[0].Addr != n.P2PAddr || !strings.Contains(peers[0].Agent, "btcd") ||
		peers[0].Height != height || peers[0].Score != 0 || peers[0].Inbound {
		t.Fatalf("peers %+v", peers)
	}
	if f, err := b.FilterByHash(context.Background(), *best); err != nil || f == nil {
		t.Fatalf("filter of the tip: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := n.RPC().GetPeerInfo()
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("btcd still has %d peers after Close", len(ps))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := Check(ctxTimeout(t, time.Second), b); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("Check after Close: %v", err)
	}
}

// TestWatchMempoolBothBackends: a transaction sent to btcd arrives on WatchMempool of both
// kinds of backend.
func TestWatchMempoolBothBackends(t *testing.T) {
	n := regtest.Start(t)
	n.Generate(101)
	log := slog.New(slog.DiscardHandler)
	backends := map[Kind]chain.Backend{
		KindRPC: open(t, rpcSettings(n), n.Params, log),
		KindP2P: open(t, Settings{Kind: KindP2P, Peers: []string{n.P2PAddr}}, n.Params, log),
	}
	ctx := ctxTimeout(t, 60*time.Second)
	chans := map[Kind]<-chan *wire.MsgTx{}
	for kind, b := range backends {
		if err := Check(ctx, b); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		w, ok := b.(chain.MempoolWatcher)
		if !ok {
			t.Fatalf("%s does not watch the mempool", kind)
		}
		ch, err := w.WatchMempool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		chans[kind] = ch
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), n.Params)
	if err != nil {
		t.Fatal(err)
	}
	tx := n.SendTo(addr, 1e6)
	start := time.Now()
	var wg sync.WaitGroup
	for kind, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case got := <-ch:
				if got.TxHash() != tx.TxHash() {
					t.Errorf("%s: delivered %v, want %v", kind, got.TxHash(), tx.TxHash())
				}
				if got.TxOut[0].Value != tx.TxOut[0].Value || !bytes.Equal(got.TxOut[0].PkScript, tx.TxOut[0].PkScript) {
					t.Errorf("%s: outputs differ", kind)
				}
				if got.WitnessHash() != tx.WitnessHash() {
					t.Errorf("%s: witness lost (wtxid %v, want %v)", kind, got.WitnessHash(), tx.WitnessHash())
				}
				t.Logf("%s: delivered after %v", kind, time.Since(start))
			case <-time.After(15 * time.Second):
				t.Errorf("%s: nothing delivered in 15 s", kind)
			}
		}()
	}
	wg.Wait()
}
