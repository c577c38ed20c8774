package wallet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/storage"
)

// Subsystem is the storage bucket of the wallet.
const Subsystem = "wallet"

// ErrNotTip is returned (wrapped) when a block does not extend, or is not, the wallet's tip.
var ErrNotTip = errors.New("wallet: block is not at the tip")

// Script is one of the wallet's output scripts and where its key comes from.
type Script struct {
	Path keys.Path       `json:"path"`
	Type keys.ScriptType `json:"type"`
}

// Scripts maps a scriptPubKey (as a string of its bytes) to its Script.
type Scripts map[string]Script

// Output is an output paying one of the wallet's scripts.
type Output struct {
	OutPoint string          `json:"outpoint"` // txid:index
	Value    int64           `json:"value"`
	PkScript string          `json:"pk_script"` // hex
	Path     keys.Path       `json:"path"`
	Type     keys.ScriptType `json:"type"`
	// Height of the block that confirmed the output, 0 while unconfirmed.
	Height int32 `json:"height,omitempty"`
	// SpentBy is the txid of the transaction spending the output, SpentHeight its height
	// (0 while that transaction is unconfirmed).
	SpentBy     string `json:"spent_by,omitempty"`
	SpentHeight int32  `json:"spent_height,omitempty"`
	// Coinbase marks an output of a coinbase transaction, spendable only after
	// CoinbaseMaturity confirmations.
	Coinbase bool `json:"coinbase,omitempty"`
}

// Spent reports whether a transaction (confirmed or not) spends the output.
func (o Output) Spent() bool { return o.SpentBy != "" }

// Entry is a wallet transaction in the history.
type Entry struct {
	TxID string `json:"txid"`
	// Received is the value of the outputs paying the wallet, Sent the value of the
	// wallet's outputs it spends; Net = Received − Sent.
	Received int64 `json:"received"`
	Sent     int64 `json:"sent"`
	Height   int32 `json:"height,omitempty"` // 0 while unconfirmed
	// FirstSeen is when the wallet first saw the transaction.
	FirstSeen time.Time `json:"first_seen"`
	// ReplacedBy is set on an unconfirmed transaction that lost one of its inputs to
	// another transaction (a fee bump, a conflict that confirmed), and on its descendants:
	// its outputs are gone from the wallet.
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// Net is the change of the wallet's balance by the transaction.
func (e Entry) Net() int64 { return e.Received - e.Sent }

// Block is a block handed to the wallet, with the transactions that may concern it (all
// of them, or only those a filter matched).
type Block struct {
	Height   int32
	Hash     chainhash.Hash
	PrevHash chainhash.Hash
	Time     time.Time
	Txs      []*wire.MsgTx
}

// Tip is the last block the wallet applied.
type Tip struct {
	Height int32  `json:"height"`
	Hash   string `json:"hash"`
	Prev   string `json:"prev"`
}

type undo struct {
	Tip
	TxIDs []string `json:"txids"` // wallet transactions the block confirmed
}

// Balance is the value of the wallet's unspent outputs.
type Balance struct {
	Confirmed   int64
	Unconfirmed int64 // unspent outputs of unconfirmed transactions
}

// Store is the wallet's persistent UTXO set and history. It is safe for concurrent use;
// every method runs in one storage transaction.
type Store struct {
	db      *storage.DB
	mu      sync.RWMutex // guards scripts
	scripts Scripts
	outputs *storage.Table[Output]
	history *storage.Table[Entry]
	blocks  *storage.Table[undo]
	meta    *storage.Table[Tip]
	txs     *storage.Table[string] // raw wallet transactions (hex), by txid
}

var migrations = []storage.Migration{{
	Version: 1,
	Name:    "outputs, history, block undo and tip",
	Up: func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		for _, name := range []string{"outputs", "history", "blocks", "meta"} {
			if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		}
		return nil
	},
}, {
	Version: 2,
	Name:    "raw wallet transactions and the keyring's address indexes",
	Up: func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		for _, name := range []string{"txs", "keyring"} {
			if _, err := b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		}
		return nil
	},
}}

// OpenStore migrates the wallet's schema in db and returns its store, which recognises the
// given scripts. Scripts can be added later with AddScripts (for example as the gap limit
// advances).
func OpenStore(db *storage.DB, scripts Scripts) (*Store, error) {
	if err := db.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("wallet: migrate: %w", err)
	}
	s := &Store{
		db:      db,
		scripts: Scripts{},
		outputs: storage.NewTable[Output](db, Subsystem, "outputs"),
		history: storage.NewTable[Entry](db, Subsystem, "history"),
		blocks:  storage.NewTable[undo](db, Subsystem, "blocks"),
		meta:    storage.NewTable[Tip](db, Subsystem, "meta"),
		txs:     storage.NewTable[string](db, Subsystem, "txs"),
	}
	s.AddScripts(scripts)
	return s, nil
}

// AddScripts adds scripts to those the store recognises. It is safe to call concurrently
// with the other methods.
func (s *Store) AddScripts(scripts Scripts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range scripts {
		s.scripts[k] = v
	}
}

func (s *Store) script(pkScript []byte) (Script, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sc, ok := s.scripts[string(pkScript)]
	return sc, ok
}

// Tip returns the last applied block; ok is false before the first block.
func (s *Store) Tip() (tip Tip, ok bool, err error) {
	tip, ok, err = s.meta.Get("tip")
	if err != nil {
		return Tip{}, false, fmt.Errorf("wallet: tip: %w", err)
	}
	return tip, ok, nil
}

func heightKey(h int32) string { return fmt.Sprintf("%010d", h) }

func outpointKey(op wire.OutPoint) string { return op.String() }

// AddMempoolTx records an unconfirmed transaction. It reports whether the transaction
// concerns the wallet. A transaction the wallet already has confirmed is left as it is.
func (s *Store) AddMempoolTx(tx *wire.MsgTx, seen time.Time) (bool, error) {
	var mine bool
	err := s.db.Update(func(btx *bbolt.Tx) error {
		e, ok, err := s.history.GetTx(btx, tx.TxHash().String())
		if err != nil {
			return err
		}
		if ok && e.Height > 0 {
			mine = true
			return nil
		}
		mine, err = s.applyTx(btx, tx, 0, seen)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("wallet: add mempool tx %v: %w", tx.TxHash(), err)
	}
	return mine, nil
}

// ConnectBlock applies a block on top of the tip (any block when the wallet has none yet,
// its birthday) and returns the number of wallet transactions it confirmed.
func (s *Store) ConnectBlock(b Block) (int, error) {
	var n int
	err := s.db.Update(func(btx *bbolt.Tx) error {
		tip, ok, err := s.meta.GetTx(btx, "tip")
		if err != nil {
			return err
		}
		if ok && (b.Height != tip.Height+1 || b.PrevHash.String() != tip.Hash) {
			return fmt.Errorf("%w: block %d/%v does not extend %d/%s", ErrNotTip, b.Height, b.Hash, tip.Height, tip.Hash)
		}
		u := undo{Tip: Tip{Height: b.Height, Hash: b.Hash.String(), Prev: b.PrevHash.String()}}
		for _, tx := range b.Txs {
			mine, err := s.applyTx(btx, tx, b.Height, b.Time)
			if err != nil {
				return fmt.Errorf("tx %v: %w", tx.TxHash(), err)
			}
			if mine {
				u.TxIDs = append(u.TxIDs, tx.TxHash().String())
			}
		}
		n = len(u.TxIDs)
		if err := s.blocks.PutTx(btx, heightKey(b.Height), u); err != nil {
			return err
		}
		return s.meta.PutTx(btx, "tip", u.Tip)
	})
	if err != nil {
		return 0, fmt.Errorf("wallet: connect block %d/%v: %w", b.Height, b.Hash, err)
	}
	return n, nil
}

// applyTx records tx at height (0: unconfirmed) if it pays or spends the wallet.
func (s *Store) applyTx(btx *bbolt.Tx, tx *wire.MsgTx, height int32, seen time.Time) (bool, error) {
	txid := tx.TxHash()
	id := txid.String()
	var received, sent int64
	mine := false
	for _, in := range tx.TxIn {
		key := outpointKey(in.PreviousOutPoint)
		o, ok, err := s.outputs.GetTx(btx, key)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		mine = true
		sent += o.Value
		// A different spender replaces an unconfirmed one (RBF or a conflict that confirmed):
		// the loser and its descendants leave the wallet.
		if o.SpentBy != "" && o.SpentBy != id && o.SpentHeight == 0 {
			if err := s.dropConflicted(btx, o.SpentBy, id); err != nil {
				return false, err
			}
		}
		o.SpentBy, o.SpentHeight = id, height
		if err := s.outputs.PutTx(btx, key, o); err != nil {
			return false, err
		}
	}
	coinbase := blockchain.IsCoinBaseTx(tx)
	for i, out := range tx.TxOut {
		sc, ok := s.script(out.PkScript)
		if !ok {
			continue
		}
		mine = true
		received += out.Value
		key := outpointKey(wire.OutPoint{Hash: txid, Index: uint32(i)})
		o, ok, err := s.outputs.GetTx(btx, key)
		if err != nil {
			return false, err
		}
		if !ok {
			o = Output{OutPoint: key, Value: out.Value, PkScript: hex.EncodeToString(out.PkScript), Path: sc.Path, Type: sc.Type,
				Coinbase: coinbase}
		}
		o.Height = height
		if err := s.outputs.PutTx(btx, key, o); err != nil {
			return false, err
		}
	}
	if !mine {
		return false, nil
	}
	e, ok, err := s.history.GetTx(btx, id)
	if err != nil {
		return false, err
	}
	if !ok {
		e = Entry{TxID: id, FirstSeen: seen.UTC()}
	}
	e.Received, e.Sent, e.Height, e.ReplacedBy = received, sent, height, ""
	if err := s.history.PutTx(btx, id, e); err != nil {
		return false, err
	}
	var raw bytes.Buffer
	if err := tx.Serialize(&raw); err != nil {
		return false, err
	}
	return true, s.txs.PutTx(btx, id, hex.EncodeToString(raw.Bytes()))
}

// dropConflicted removes the unconfirmed transaction txid, which lost an input to by, and
// its unconfirmed descendants: their outputs are deleted, the outputs they spent are
// unspent again, and their history entries are marked ReplacedBy.
func (s *Store) dropConflicted(btx *bbolt.Tx, txid, by string) error {
	queue := []string{txid}
	seen := map[string]bool{}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		e, ok, err := s.history.GetTx(btx, id)
		if err != nil {
			return err
		}
		if ok {
			if e.Height > 0 {
				continue // confirmed: not ours to drop
			}
			e.ReplacedBy = by
			if err := s.history.PutTx(btx, id, e); err != nil {
				return err
			}
		}
		var del []string
		var unspend []Output
		err = s.outputs.ForEachTx(btx, func(k string, o Output) error {
			switch {
			case o.OutPoint[:64] == id:
				del = append(del, k)
				if o.SpentBy != "" {
					queue = append(queue, o.SpentBy)
				}
			case o.SpentBy == id:
				o.SpentBy, o.SpentHeight = "", 0
				unspend = append(unspend, o)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range del {
			if err := s.outputs.DeleteTx(btx, k); err != nil {
				return err
			}
		}
		for _, o := range unspend {
			if err := s.outputs.PutTx(btx, o.OutPoint, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tx returns a wallet transaction as last seen (with its witnesses when the source had them).
func (s *Store) Tx(txid string) (*wire.MsgTx, bool, error) {
	raw, ok, err := s.txs.Get(txid)
	if err != nil || !ok {
		return nil, false, err
	}
	b, err := hex.DecodeString(raw)
	if err != nil {
		return nil, false, fmt.Errorf("wallet: tx %s: %w", txid, err)
	}
	tx := wire.NewMsgTx(2)
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, false, fmt.Errorf("wallet: tx %s: %w", txid, err)
	}
	return tx, true, nil
}

// Entry returns the history entry of a wallet transaction.
func (s *Store) Entry(txid string) (Entry, bool, error) {
	e, ok, err := s.history.Get(txid)
	if err != nil {
		return Entry{}, false, fmt.Errorf("wallet: entry %s: %w", txid, err)
	}
	return e, ok, nil
}

// Output returns one of the wallet's outputs (spent or not) by outpoint (txid:index).
func (s *Store) Output(outpoint string) (Output, bool, error) {
	o, ok, err := s.outputs.Get(outpoint)
	if err != nil {
		return Output{}, false, fmt.Errorf("wallet: output %s: %w", outpoint, err)
	}
	return o, ok, nil
}

// DisconnectBlock undoes the tip block, which must have the given hash: the wallet
// transactions it confirmed become unconfirmed again.
func (s *Store) DisconnectBlock(hash chainhash.Hash) error {
	err := s.db.Update(func(btx *bbolt.Tx) error {
		tip, ok, err := s.meta.GetTx(btx, "tip")
		if err != nil {
			return err
		}
		if !ok || tip.Hash != hash.String() {
			return fmt.Errorf("%w: tip is %d/%s", ErrNotTip, tip.Height, tip.Hash)
		}
		u, ok, err := s.blocks.GetTx(btx, heightKey(tip.Height))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no undo record for %d", tip.Height)
		}
		confirmed := map[string]bool{}
		for _, id := range u.TxIDs {
			confirmed[id] = true
		}
		// Outputs created or spent by those transactions lose their heights.
		var changed []Output
		err = s.outputs.ForEachTx(btx, func(_ string, o Output) error {
			txid := o.OutPoint[:64]
			c := false
			if confirmed[txid] && o.Height == tip.Height {
				o.Height, c = 0, true
			}
			if confirmed[o.SpentBy] && o.SpentHeight == tip.Height {
				o.SpentHeight, c = 0, true
			}
			if c {
				changed = append(changed, o)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range changed {
			if err := s.outputs.PutTx(btx, o.OutPoint, o); err != nil {
				return err
			}
		}
		for _, id := range u.TxIDs {
			e, ok, err := s.history.GetTx(btx, id)
			if err != nil || !ok {
				return err
			}
			e.Height = 0
			if err := s.history.PutTx(btx, id, e); err != nil {
				return err
			}
		}
		if err := s.blocks.DeleteTx(btx, heightKey(tip.Height)); err != nil {
			return err
		}
		prev, ok, err := s.blocks.GetTx(btx, heightKey(tip.Height-1))
		if err != nil {
			return err
		}
		if !ok { // back before the birthday: no tip
			return s.meta.DeleteTx(btx, "tip")
		}
		return s.meta.PutTx(btx, "tip", prev.Tip)
	})
	if err != nil {
		return fmt.Errorf("wallet: disconnect block %v: %w", hash, err)
	}
	return nil
}

// Outputs returns the wallet's outputs, in outpoint order; with unspentOnly, only those no
// transaction spends.
func (s *Store) Outputs(unspentOnly bool) ([]Output, error) {
	var out []Output
	err := s.outputs.ForEach(func(_ string, o Output) error {
		if !unspentOnly || !o.Spent() {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wallet: outputs: %w", err)
	}
	return out, nil
}

// Balance sums the unspent outputs.
func (s *Store) Balance() (Balance, error) {
	outs, err := s.Outputs(true)
	if err != nil {
		return Balance{}, err
	}
	var b Balance
	for _, o := range outs {
		if o.Height > 0 {
			b.Confirmed += o.Value
		} else {
			b.Unconfirmed += o.Value
		}
	}
	return b, nil
}

// History returns the wallet's transactions, unconfirmed first, then newest first.
func (s *Store) History() ([]Entry, error) {
	var h []Entry
	if err := s.history.ForEach(func(_ string, e Entry) error { h = append(h, e); return nil }); err != nil {
		return nil, fmt.Errorf("wallet: history: %w", err)
	}
	sort.SliceStable(h, func(i, j int) bool {
		hi, hj := h[i].Height, h[j].Height
		if (hi == 0) != (hj == 0) {
			return hi == 0
		}
		if hi != hj {
			return hi > hj
		}
		return h[i].FirstSeen.After(h[j].FirstSeen)
	})
	return h, nil
}
