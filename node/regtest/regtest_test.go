package regtest

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

func newAddress(t *testing.T, n *Node) btcutil.Address {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), n.Params)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func contains(list []*chainhash.Hash, h chainhash.Hash) bool {
	for _, x := range list {
		if x.IsEqual(&h) {
			return true
		}
	}
	return false
}

func TestMineAndSpend(t *testing.T) {
	start := time.Now()
	n := Start(t)
	t.Logf("btcd started in %v (binaries built in %v)", time.Since(start), Bins(t).Built)

	// 103 blocks: three mature coinbases of 50 BTC.
	if got := len(n.Generate(103)); got != 103 {
		t.Fatalf("generated %d blocks, want 103", got)
	}
	if _, h := n.Best(); h != 103 {
		t.Fatalf("height %d, want 103", h)
	}
	dest := newAddress(t, n)
	script, _ := txscript.PayToAddrScript(dest)

	// Several spends in a row chain through unconfirmed change.
	var txs []chainhash.Hash
	for _, amt := range []btcutil.Amount{1e8, 2e8, 30e8} {
		tx := n.SendTo(dest, amt)
		txs = append(txs, tx.TxHash())
	}
	// More than one coin is needed here (two coinbases of 50 BTC and 17 BTC of change are left).
	big := n.SendTo(dest, 70e8)
	if len(big.TxIn) < 2 {
		t.Errorf("70 BTC spend used %d inputs, want >= 2", len(big.TxIn))
	}
	txs = append(txs, big.TxHash())
	pool := n.Mempool()
	for _, h := range txs {
		if !contains(pool, h) {
			t.Errorf("%v not in mempool", h)
		}
	}
	block := n.Block(n.Generate(1)[0])
	var paid int64
	for _, tx := range block.Transactions {
		for _, out := range tx.TxOut {
			if string(out.PkScript) == string(script) {
				paid += out.Value
			}
		}
	}
	if want := int64(103e8); paid != want {
		t.Errorf("block pays %d sat to the destination, want %d", paid, want)
	}
	if len(n.Mempool()) != 0 {
		t.Errorf("mempool not empty after mining")
	}
	if out, err := n.Btcctl("getblockcount"); err != nil || out != "104\n" {
		t.Errorf("btcctl getblockcount = %q, %v", out, err)
	}
}

func TestConnectKillRestart(t *testing.T) {
	a, b := Start(t, Simnet()), Start(t, Simnet())
	a.Generate(5)
	a.Connect(b)
	a.WaitSynced(b)
	if _, h := b.Best(); h != 5 {
		t.Fatalf("b at height %d, want 5", h)
	}
	a.Disconnect(b)
	a.Generate(2)
	b.Generate(3)
	ha, _ := a.Best()
	hb, _ := b.Best()
	if ha.IsEqual(hb) {
		t.Fatal("branches did not diverge")
	}
	a.Connect(b)
	a.WaitSynced(b)
	if h, height := a.Best(); !h.IsEqual(hb) || height != 8 {
		t.Fatalf("a at %v/%d, want b's longer branch %v/8", h, height, hb)
	}

	// An orderly stop keeps the chain.
	b.Stop()
	if b.Running() {
		t.Fatal("b still running after Stop")
	}
	start := time.Now()
	b.Restart()
	t.Logf("restart after Stop took %v", time.Since(start))
	if h, height := b.Best(); !h.IsEqual(hb) || height != 8 {
		t.Fatalf("after restart b at %v/%d, want %v/8", h, height, hb)
	}

	// A crash loses what btcd had not flushed (its database cache flushes every 5 minutes),
	// but the node comes back on the same ports and certificate and works.
	b.Generate(4)
	b.Kill()
	if b.Running() {
		t.Fatal("b still running after Kill")
	}
	b.Restart()
	_, height := b.Best()
	t.Logf("after Kill and Restart b is at height %d", height)
	b.Generate(1)
	if _, h := b.Best(); h != height+1 {
		t.Fatalf("mined on restarted node: height %d, want %d", h, height+1)
	}
}

func TestNoTLS(t *testing.T) {
	n := Start(t, NoTLS())
	n.Generate(1)
	if _, h := n.Best(); h != 1 {
		t.Fatalf("height %d", h)
	}
}

// TestRegtestRestartWipes documents btcd's behaviour: a regtest chain does not survive a
// restart, which is why Simnet exists.
func TestRegtestRestartWipes(t *testing.T) {
	n := Start(t)
	n.Generate(3)
	n.Restart()
	if _, h := n.Best(); h != 0 {
		t.Fatalf("regtest node at height %d after restart; btcd no longer wipes regtest: update Simnet's doc", h)
	}
}
