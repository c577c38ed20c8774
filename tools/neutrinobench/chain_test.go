package neutrinobench

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/integration/rpctest"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/regtest"
)

// chainGen builds a regtest chain locally and submits it to btcd with batched submitblock
// calls: one block per second of timestamp, ending a minute before now (so that neutrino
// considers the chain current and no header is in the future), coinbases paying to a P2PKH
// key of ours, and from height 100+txs on, txs transactions per block, each spending the
// previous change of its own chain of transactions (legacy P2PKH inputs, signed here, so
// that no segwit activation is needed) and paying outs outputs to fresh random P2WPKH and
// P2TR scripts plus change. btcd validates every block (scripts included) and indexes its
// basic filter as if it had mined it.
type chainGen struct {
	params   *chaincfg.Params
	key      *btcec.PrivateKey
	addr     btcutil.Address
	pkScript []byte
	txs      int
	outs     int

	prev   *btcutil.Block // nil: genesis
	height int32
	start  time.Time
	change []wire.OutPoint // per transaction chain: the output to spend next
	value  []int64
	hashes []chainhash.Hash // by height
	nTx    int
}

const genFee = 2000 // satoshis per transaction

func newChainGen(params *chaincfg.Params, blocks, txs, outs int) (*chainGen, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	addr, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), params)
	if err != nil {
		return nil, err
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, err
	}
	start := time.Now().Add(-time.Duration(blocks+60) * time.Second).Truncate(time.Second)
	return &chainGen{params: params, key: key, addr: addr, pkScript: script, txs: txs, outs: outs,
		start: start, hashes: []chainhash.Hash{*params.GenesisHash}}, nil
}

// next builds the next block.
func (g *chainGen) next() (*btcutil.Block, error) {
	h := g.height + 1
	var txs []*btcutil.Tx
	for i := range g.change {
		tx, err := g.spend(i, h)
		if err != nil {
			return nil, err
		}
		if tx != nil {
			txs = append(txs, tx)
		}
	}
	b, err := rpctest.CreateBlock(g.prev, txs, 4, g.start.Add(time.Duration(h)*time.Second), g.addr, nil, g.params)
	if err != nil {
		return nil, err
	}
	g.prev, g.height = b, h
	g.hashes = append(g.hashes, *b.Hash())
	g.nTx += len(txs)
	if g.txs > 0 && int(h) <= g.txs {
		// Remember this coinbase: it funds chain h-1 once mature.
		cb := b.Transactions()[0]
		g.change = append(g.change, wire.OutPoint{Hash: *cb.Hash(), Index: 0})
		g.value = append(g.value, cb.MsgTx().TxOut[0].Value)
	}
	return b, nil
}

// spend builds chain i's transaction for the block at height h once the coinbases that
// start the chains (heights 1..txs) are mature.
func (g *chainGen) spend(i int, h int32) (*btcutil.Tx, error) {
	if h < int32(g.txs)+int32(g.params.CoinbaseMaturity) {
		return nil, nil
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(&g.change[i], nil, nil))
	left := g.value[i] - genFee
	for o := range g.outs {
		var script []byte
		if o%2 == 0 {
			script = append([]byte{txscript.OP_0, txscript.OP_DATA_20}, random(20)...) // P2WPKH
		} else {
			script = append([]byte{txscript.OP_1, txscript.OP_DATA_32}, random(32)...) // P2TR
		}
		v := int64(10_000 + int(h)%1000)
		tx.AddTxOut(wire.NewTxOut(v, script))
		left -= v
	}
	if left < 10_000 {
		return nil, fmt.Errorf("chain %d ran out of coins at height %d", i, h)
	}
	tx.AddTxOut(wire.NewTxOut(left, g.pkScript))
	sig, err := txscript.SignatureScript(tx, 0, g.pkScript, txscript.SigHashAll, g.key, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].SignatureScript = sig
	g.change[i] = wire.OutPoint{Hash: tx.TxHash(), Index: uint32(g.outs)}
	g.value[i] = left
	return btcutil.NewTx(tx), nil
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// batchClient is an RPC client of n that sends queued calls in one HTTP request.
func batchClient(n *regtest.Node) (*rpcclient.Client, error) {
	return rpcclient.NewBatch(&rpcclient.ConnConfig{Host: n.RPCAddr, User: n.User, Pass: n.Pass,
		Certificates: n.Cert, DisableTLS: n.NoTLS, HTTPPostMode: true})
}

// buildChain submits blocks blocks to n, 250 per request. It returns the block hashes by
// height and the number of transactions besides coinbases.
func buildChain(n *regtest.Node, blocks, txs, outs int) ([]chainhash.Hash, int, error) {
	g, err := newChainGen(n.Params, blocks, txs, outs)
	if err != nil {
		return nil, 0, err
	}
	c, err := batchClient(n)
	if err != nil {
		return nil, 0, err
	}
	defer c.Shutdown()
	for g.height < int32(blocks) {
		var fs []rpcclient.FutureSubmitBlockResult
		for len(fs) < 250 && g.height < int32(blocks) {
			b, err := g.next()
			if err != nil {
				return nil, 0, err
			}
			fs = append(fs, c.SubmitBlockAsync(b, nil))
		}
		if err := c.Send(); err != nil {
			return nil, 0, err
		}
		for i, f := range fs {
			if err := f.Receive(); err != nil {
				return nil, 0, fmt.Errorf("submitblock at %d: %w", int(g.height)-len(fs)+1+i, err)
			}
		}
	}
	return g.hashes, g.nTx, nil
}

// filterBytes sums the sizes of btcd's basic filters of the blocks.
func filterBytes(n *regtest.Node, hashes []chainhash.Hash) (int, error) {
	c, err := batchClient(n)
	if err != nil {
		return 0, err
	}
	defer c.Shutdown()
	total := 0
	for i := 0; i < len(hashes); i += 500 {
		var fs []rpcclient.FutureGetCFilterResult
		for j := i; j < min(i+500, len(hashes)); j++ {
			fs = append(fs, c.GetCFilterAsync(&hashes[j], wire.GCSFilterRegular))
		}
		if err := c.Send(); err != nil {
			return 0, err
		}
		for _, f := range fs {
			m, err := f.Receive()
			if err != nil {
				return 0, err
			}
			total += len(m.Data)
		}
	}
	return total, nil
}
