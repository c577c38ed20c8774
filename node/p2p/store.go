package p2p

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/storage"
)

// Subsystem is the storage subsystem (top-level bucket) of the light client.
const Subsystem = "p2p"

var migrations = []storage.Migration{{
	Version: 1,
	Name:    "headers, best chain, filter headers and filters",
	Up: func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(Subsystem))
		return err
	},
}}

// headerRec is a stored header: hash → header (hex of the 80 bytes), height, cumulative work.
type headerRec struct {
	Header string `json:"header"`
	Height int32  `json:"height"`
	Work   string `json:"work"`
}

type loaded struct {
	hash   chainhash.Hash
	header wire.BlockHeader
	height int32
}

// store persists the light client's state in the "p2p" subsystem.
type store struct {
	db       *storage.DB
	headers  *storage.Table[headerRec] // hash → header
	best     *storage.Table[string]    // height (%010d) → hash of the best chain
	state    *storage.Table[string]    // "tip" → hash
	fheaders *storage.Table[string]    // block hash → basic filter header
	filters  *storage.Table[string]    // block hash → basic filter (hex)
}

// openStore migrates the subsystem and returns its store.
func openStore(db *storage.DB) (*store, error) {
	if err := db.Migrate(Subsystem, migrations); err != nil {
		return nil, fmt.Errorf("p2p: migrate: %w", err)
	}
	return &store{
		db:       db,
		headers:  storage.NewTable[headerRec](db, Subsystem, "headers"),
		best:     storage.NewTable[string](db, Subsystem, "best"),
		state:    storage.NewTable[string](db, Subsystem, "state"),
		fheaders: storage.NewTable[string](db, Subsystem, "fheaders"),
		filters:  storage.NewTable[string](db, Subsystem, "filters"),
	}, nil
}

func heightKey(h int32) string { return fmt.Sprintf("%010d", h) }

func (s *store) loadHeaders() ([]loaded, error) {
	var out []loaded
	err := s.headers.ForEach(func(key string, r headerRec) error {
		raw, err := hex.DecodeString(r.Header)
		if err != nil {
			return fmt.Errorf("header %s: %w", key, err)
		}
		var h wire.BlockHeader
		if err := h.Deserialize(bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("header %s: %w", key, err)
		}
		out = append(out, loaded{hash: h.BlockHash(), header: h, height: r.Height})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("p2p: load headers: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].height < out[j].height })
	return out, nil
}

func (s *store) tip() (chainhash.Hash, bool, error) {
	v, ok, err := s.state.Get("tip")
	if err != nil || !ok {
		return chainhash.Hash{}, false, err
	}
	h, err := chainhash.NewHashFromStr(v)
	if err != nil {
		return chainhash.Hash{}, false, fmt.Errorf("p2p: stored tip: %w", err)
	}
	return *h, true, nil
}

// saveHeaders stores new headers and the change of the best chain atomically.
func (s *store) saveHeaders(added []*hnode, ch Change, tip *hnode) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var buf bytes.Buffer
		for _, n := range added {
			buf.Reset()
			if err := n.header.Serialize(&buf); err != nil {
				return err
			}
			rec := headerRec{Header: hex.EncodeToString(buf.Bytes()), Height: n.height, Work: n.work.Text(16)}
			if err := s.headers.PutTx(tx, n.hash.String(), rec); err != nil {
				return err
			}
		}
		for _, d := range ch.Disconnected {
			if err := s.best.DeleteTx(tx, heightKey(d.Height)); err != nil {
				return err
			}
		}
		for _, c := range ch.Connected {
			if err := s.best.PutTx(tx, heightKey(c.Height), c.Hash.String()); err != nil {
				return err
			}
		}
		return s.state.PutTx(tx, "tip", tip.hash.String())
	})
	if err != nil {
		return fmt.Errorf("p2p: save headers: %w", err)
	}
	return nil
}

func (s *store) filterHeader(block chainhash.Hash) (chainhash.Hash, bool, error) {
	v, ok, err := s.fheaders.Get(block.String())
	if err != nil || !ok {
		return chainhash.Hash{}, false, err
	}
	h, err := chainhash.NewHashFromStr(v)
	if err != nil {
		return chainhash.Hash{}, false, fmt.Errorf("p2p: stored filter header: %w", err)
	}
	return *h, true, nil
}

func (s *store) putFilterHeaders(blocks, headers []chainhash.Hash) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i := range blocks {
			if err := s.fheaders.PutTx(tx, blocks[i].String(), headers[i].String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("p2p: save filter headers: %w", err)
	}
	return nil
}

func (s *store) filter(block chainhash.Hash) ([]byte, bool, error) {
	v, ok, err := s.filters.Get(block.String())
	if err != nil || !ok {
		return nil, false, err
	}
	b, err := hex.DecodeString(v)
	return b, err == nil, err
}

func (s *store) putFilters(blocks []chainhash.Hash, data [][]byte) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i := range blocks {
			if err := s.filters.PutTx(tx, blocks[i].String(), hex.EncodeToString(data[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("p2p: save filters: %w", err)
	}
	return nil
}
