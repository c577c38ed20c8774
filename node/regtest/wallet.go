package regtest

import (
	"errors"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// FeeRate is the rate, in satoshis per virtual byte, of the transactions the harness builds.
const FeeRate = 5

// dustLimit is the smallest change output the harness keeps; less goes to the fee.
const dustLimit = 1000

// coin is an output paying to the node's mining key.
type coin struct {
	op       wire.OutPoint
	value    btcutil.Amount
	height   int32 // -1 while unconfirmed (change of a transaction built here)
	coinbase bool
}

// wallet is the harness's minimal key-holder: one P2WPKH key, the outputs that pay to it,
// and the outpoints already spent by transactions it built.
type wallet struct {
	n        *Node
	key      *btcec.PrivateKey
	addr     btcutil.Address
	pkScript []byte

	scanned     int32 // highest block height scanned for coins
	scannedHash chainhash.Hash
	coins       map[wire.OutPoint]coin
	spent       map[wire.OutPoint]bool
}

func newWallet(n *Node, key *btcec.PrivateKey) *wallet {
	hash := btcutil.Hash160(key.PubKey().SerializeCompressed())
	addr, err := btcutil.NewAddressWitnessPubKeyHash(hash, n.Params)
	if err != nil {
		n.tb.Fatalf("regtest: mining address: %v", err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		n.tb.Fatalf("regtest: mining script: %v", err)
	}
	return &wallet{
		n: n, key: key, addr: addr, pkScript: script,
		coins: map[wire.OutPoint]coin{}, spent: map[wire.OutPoint]bool{},
	}
}

// MiningKey is the private key behind MiningAddress.
func (n *Node) MiningKey() *btcec.PrivateKey { return n.wallet.key }

// SendTo pays amount to addr from the node's coins, broadcasts the transaction through the
// node and returns it.
func (n *Node) SendTo(addr btcutil.Address, amount btcutil.Amount) *wire.MsgTx {
	n.tb.Helper()
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		n.tb.Fatalf("regtest: script for %v: %v", addr, err)
	}
	return n.SendOutputs(wire.NewTxOut(int64(amount), script))
}

// SendOutputs builds a transaction with the given outputs (see BuildTx), broadcasts it
// through the node and returns it.
func (n *Node) SendOutputs(outs ...*wire.TxOut) *wire.MsgTx {
	n.tb.Helper()
	tx := n.BuildTx(outs...)
	if _, err := n.RPC().SendRawTransaction(tx, true); err != nil {
		n.tb.Fatalf("regtest: %s sendrawtransaction: %v", n.Name, err)
	}
	return tx
}

// BuildTx builds and signs, without broadcasting, a transaction paying outs from the node's
// mature coinbases and earlier change, with change back to the mining key and a fee of
// FeeRate sat/vB. The coins it spends are not offered again, whether or not the transaction
// is broadcast.
func (n *Node) BuildTx(outs ...*wire.TxOut) *wire.MsgTx {
	n.tb.Helper()
	tx, err := n.wallet.build(outs)
	if err != nil {
		n.tb.Fatalf("regtest: %s build transaction: %v", n.Name, err)
	}
	return tx
}

// scan records the outputs paying to the key in blocks not scanned yet. When the block
// last scanned left the chain (a reorg, or a restarted node that lost blocks) it starts over.
func (w *wallet) scan() error {
	c := w.n.RPC()
	best, err := c.GetBlockCount()
	if err != nil {
		return err
	}
	if w.scanned > 0 {
		hash, err := c.GetBlockHash(int64(w.scanned))
		if err != nil || !hash.IsEqual(&w.scannedHash) {
			w.scanned = 0
			w.coins = map[wire.OutPoint]coin{}
		}
	}
	for h := w.scanned + 1; h <= int32(best); h++ {
		hash, err := c.GetBlockHash(int64(h))
		if err != nil {
			return err
		}
		block, err := c.GetBlock(hash)
		if err != nil {
			return err
		}
		for i, tx := range block.Transactions {
			txHash := tx.TxHash()
			for vout, out := range tx.TxOut {
				if string(out.PkScript) != string(w.pkScript) {
					continue
				}
				op := wire.OutPoint{Hash: txHash, Index: uint32(vout)}
				w.coins[op] = coin{op: op, value: btcutil.Amount(out.Value), height: h, coinbase: i == 0}
			}
		}
		w.scanned, w.scannedHash = h, *hash
	}
	return nil
}

// spendable lists unspent coins usable in the next block, oldest first.
func (w *wallet) spendable() ([]coin, error) {
	if err := w.scan(); err != nil {
		return nil, fmt.Errorf("scan blocks: %w", err)
	}
	next := w.scanned + 1
	var list []coin
	for op, c := range w.coins {
		if w.spent[op] {
			continue
		}
		if c.coinbase && next-c.height < int32(w.n.Params.CoinbaseMaturity) {
			continue
		}
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool {
		hi, hj := list[i].height, list[j].height
		if hi < 0 {
			hi = 1 << 30
		}
		if hj < 0 {
			hj = 1 << 30
		}
		if hi != hj {
			return hi < hj
		}
		return list[i].op.String() < list[j].op.String()
	})
	return list, nil
}

func (w *wallet) build(outs []*wire.TxOut) (*wire.MsgTx, error) {
	var want btcutil.Amount
	for _, o := range outs {
		want += btcutil.Amount(o.Value)
	}
	coins, err := w.spendable()
	if err != nil {
		return nil, err
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	var (
		in   btcutil.Amount
		used []coin
	)
	c := w.n.RPC()
	fee := btcutil.Amount(FeeRate * 200)
	for _, cn := range coins {
		if in >= want+fee {
			break
		}
		// The node is the authority on what is unspent (reorgs, spends by other means).
		res, err := c.GetTxOut(&cn.op.Hash, cn.op.Index, true)
		if err != nil {
			return nil, fmt.Errorf("gettxout %v: %w", cn.op, err)
		}
		if res == nil {
			w.spent[cn.op] = true
			continue
		}
		used = append(used, cn)
		in += cn.value
		fee = btcutil.Amount(FeeRate * (11 + 68*len(used) + 43*(len(outs)+1)))
	}
	if in < want+fee {
		return nil, fmt.Errorf("not enough mature coins: have %v, need %v (mine at least %d blocks first)",
			in, want+fee, w.n.Params.CoinbaseMaturity+1)
	}
	for _, cn := range used {
		tx.AddTxIn(wire.NewTxIn(&cn.op, nil, nil))
	}
	changeIdx := -1
	if change := in - want - fee; change >= dustLimit {
		changeIdx = len(tx.TxOut)
		tx.AddTxOut(wire.NewTxOut(int64(change), w.pkScript))
	}
	if err := w.sign(tx, used); err != nil {
		return nil, err
	}
	// The estimate above is generous; check it against the signed size.
	vsize := VSize(tx)
	if paid := in - want - changeValue(tx, changeIdx); paid < btcutil.Amount(FeeRate*vsize) {
		return nil, fmt.Errorf("fee %v below %d sat/vB for %d vB", paid, FeeRate, vsize)
	}
	for _, cn := range used {
		w.spent[cn.op] = true
	}
	if changeIdx >= 0 {
		op := wire.OutPoint{Hash: tx.TxHash(), Index: uint32(changeIdx)}
		w.coins[op] = coin{op: op, value: btcutil.Amount(tx.TxOut[changeIdx].Value), height: -1}
	}
	return tx, nil
}

func changeValue(tx *wire.MsgTx, idx int) btcutil.Amount {
	if idx < 0 {
		return 0
	}
	return btcutil.Amount(tx.TxOut[idx].Value)
}

// sign adds P2WPKH witnesses to every input of tx, which spends used in order.
func (w *wallet) sign(tx *wire.MsgTx, used []coin) error {
	prev := txscript.NewMultiPrevOutFetcher(nil)
	for _, cn := range used {
		prev.AddPrevOut(cn.op, wire.NewTxOut(int64(cn.value), w.pkScript))
	}
	hashes := txscript.NewTxSigHashes(tx, prev)
	for i, cn := range used {
		wit, err := txscript.WitnessSignature(tx, hashes, i, int64(cn.value), w.pkScript,
			txscript.SigHashAll, w.key, true)
		if err != nil {
			return fmt.Errorf("sign input %d: %w", i, err)
		}
		tx.TxIn[i].Witness = wit
	}
	// Verify with the script engine so a harness bug shows here, not as a node rejection.
	for i, cn := range used {
		vm, err := txscript.NewEngine(w.pkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes,
			int64(cn.value), prev)
		if err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
	}
	if err := blockchain.CheckTransactionSanity(btcutil.NewTx(tx)); err != nil {
		return errors.Join(errors.New("built transaction is not sane"), err)
	}
	return nil
}

// VSize is the virtual size of tx in vbytes (BIP141: weight / 4, rounded up).
func VSize(tx *wire.MsgTx) int64 {
	weight := int64(tx.SerializeSizeStripped())*(blockchain.WitnessScaleFactor-1) + int64(tx.SerializeSize())
	return (weight + blockchain.WitnessScaleFactor - 1) / blockchain.WitnessScaleFactor
}
