package p2p

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// FilterHeader is the stored basic filter header of block.
func (m *Manager) FilterHeader(block chainhash.Hash) (chainhash.Hash, bool) {
	m.fmu.RLock()
	defer m.fmu.RUnlock()
	h, ok := m.fh[block]
	return h, ok
}

// Filter returns the stored basic filter of block.
func (m *Manager) Filter(block chainhash.Hash) (*gcs.Filter, error) {
	if m.store == nil {
		return nil, fmt.Errorf("p2p: filter %v: no store", block)
	}
	data, ok, err := m.store.filter(block)
	if err != nil || !ok {
		return nil, fmt.Errorf("p2p: filter %v: not found (%v)", block, err)
	}
	return gcs.FromNBytes(builder.DefaultP, builder.DefaultM, data)
}

// FilterTip is the highest block of the best chain up to which every filter is verified.
func (m *Manager) FilterTip() Stamp {
	m.fmu.RLock()
	defer m.fmu.RUnlock()
	tip := m.chain.Tip()
	for h := int32(0); h <= tip.Height; h++ {
		hash, ok := m.chain.HashAt(h)
		if !ok || !m.haveF[hash] {
			if h == 0 {
				return Stamp{Height: -1}
			}
			prev, _ := m.chain.HashAt(h - 1)
			return Stamp{Height: h - 1, Hash: prev}
		}
	}
	return tip
}

// firstMissing is the lowest height of the best chain whose block lacks what have says.
func (m *Manager) firstMissing(have func(chainhash.Hash) bool) (int32, int32) {
	m.fmu.RLock()
	defer m.fmu.RUnlock()
	tip := m.chain.Tip().Height
	for h := int32(0); h <= tip; h++ {
		hash, ok := m.chain.HashAt(h)
		if ok && !have(hash) {
			return h, tip
		}
	}
	return tip + 1, tip
}

// syncFilters fetches the basic filter headers of the best chain (checking that they chain
// onto the ones we hold), then the filters (each checked against its filter header),
// matches them against the wallet's scripts and fetches the matching blocks.
func (m *Manager) syncFilters(ctx context.Context, c *conn) error {
	m.filterMu.Lock()
	defer m.filterMu.Unlock()
	for {
		start, tip := m.firstMissing(func(h chainhash.Hash) bool { _, ok := m.fh[h]; return ok })
		if start > tip {
			break
		}
		if err := m.fetchFilterHeaders(ctx, c, start, min(tip, start+wire.MaxCFHeadersPerMsg-1)); err != nil {
			return err
		}
	}
	for {
		start, tip := m.firstMissing(func(h chainhash.Hash) bool { return m.haveF[h] })
		if start > tip {
			return nil
		}
		if _, ok := m.FilterHeader(mustHash(m, start)); !ok {
			return nil // headers moved on meanwhile; the next round fetches them
		}
		if err := m.fetchFilters(ctx, c, start, min(tip, start+wire.MaxGetCFiltersReqRange-1)); err != nil {
			return err
		}
	}
}

func mustHash(m *Manager, h int32) chainhash.Hash {
	hash, _ := m.chain.HashAt(h)
	return hash
}

func (m *Manager) prevFilterHeader(start int32) (chainhash.Hash, error) {
	if start == 0 {
		return chainhash.Hash{}, nil
	}
	prev, ok := m.FilterHeader(mustHash(m, start-1))
	if !ok {
		return chainhash.Hash{}, fmt.Errorf("p2p: no filter header at %d", start-1)
	}
	return prev, nil
}

func (m *Manager) fetchFilterHeaders(ctx context.Context, c *conn, start, stop int32) error {
	stopHash := mustHash(m, stop)
	c.p.QueueMessage(wire.NewMsgGetCFHeaders(wire.GCSFilterRegular, uint32(start), &stopHash), nil)
	msg, err := m.await(ctx, c, m.cfg.Timeout, func(msg wire.Message) bool {
		cf, ok := msg.(*wire.MsgCFHeaders)
		return ok && cf.StopHash == stopHash
	})
	if err != nil {
		return err
	}
	m.st.cfheadersMsgs.Add(1)
	cf := msg.(*wire.MsgCFHeaders)
	if cf.FilterType != wire.GCSFilterRegular || len(cf.FilterHashes) != int(stop-start+1) {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "cfheaders of the wrong type or length")
		return fmt.Errorf("p2p: %s: bad cfheaders for %d-%d", c.addr, start, stop)
	}
	prev, err := m.prevFilterHeader(start)
	if err != nil {
		return err
	}
	if cf.PrevFilterHeader != prev {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold/2, "cfheaders do not connect to our filter header chain")
		return fmt.Errorf("p2p: %s: cfheaders at %d do not connect", c.addr, start)
	}
	blocks := make([]chainhash.Hash, len(cf.FilterHashes))
	headers := make([]chainhash.Hash, len(cf.FilterHashes))
	for i, fhash := range cf.FilterHashes {
		var buf [2 * chainhash.HashSize]byte
		copy(buf[:], fhash[:])
		copy(buf[chainhash.HashSize:], prev[:])
		prev = chainhash.DoubleHashH(buf[:])
		blocks[i], headers[i] = mustHash(m, start+int32(i)), prev
	}
	if m.store != nil {
		if err := m.store.putFilterHeaders(blocks, headers); err != nil {
			return err
		}
	}
	m.fmu.Lock()
	for i := range blocks {
		m.fh[blocks[i]] = headers[i]
	}
	m.fmu.Unlock()
	return nil
}

func (m *Manager) fetchFilters(ctx context.Context, c *conn, start, stop int32) error {
	stopHash := mustHash(m, stop)
	c.p.QueueMessage(wire.NewMsgGetCFilters(wire.GCSFilterRegular, uint32(start), &stopHash), nil)
	for h := start; h <= stop; h++ {
		want := mustHash(m, h)
		msg, err := m.await(ctx, c, m.cfg.Timeout, func(msg wire.Message) bool { _, ok := msg.(*wire.MsgCFilter); return ok })
		if err != nil {
			return err
		}
		m.st.cfilters.Add(1)
		cf := msg.(*wire.MsgCFilter)
		if cf.BlockHash != want || cf.FilterType != wire.GCSFilterRegular {
			m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "unexpected cfilter")
			return fmt.Errorf("p2p: %s: cfilter for %v, want %v", c.addr, cf.BlockHash, want)
		}
		f, err := gcs.FromNBytes(builder.DefaultP, builder.DefaultM, cf.Data)
		if err != nil {
			m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "undecodable cfilter")
			return fmt.Errorf("p2p: %s: cfilter %v: %w", c.addr, want, err)
		}
		prev, err := m.prevFilterHeader(h)
		if err != nil {
			return err
		}
		got, err := builder.MakeHeaderForFilter(f, prev)
		if err != nil {
			return fmt.Errorf("p2p: filter header %v: %w", want, err)
		}
		if exp, _ := m.FilterHeader(want); got != exp {
			m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "cfilter does not match its filter header")
			return fmt.Errorf("p2p: %s: cfilter %v does not match its header", c.addr, want)
		}
		if m.store != nil {
			if err := m.store.putFilter(want, cf.Data); err != nil {
				return err
			}
		}
		m.fmu.Lock()
		m.haveF[want] = true
		m.fmu.Unlock()
		m.hub.notify()
		if err := m.matchAndFetch(ctx, c, Stamp{Height: h, Hash: want}, f); err != nil {
			return err
		}
	}
	return nil
}

// matchAndFetch fetches the block when its filter matches one of the wallet's scripts and
// checks the block against its header (hash and merkle root).
func (m *Manager) matchAndFetch(ctx context.Context, c *conn, s Stamp, f *gcs.Filter) error {
	if m.cfg.Scripts == nil || m.cfg.OnBlock == nil {
		return nil
	}
	scripts := m.cfg.Scripts()
	if len(scripts) == 0 || f.N() == 0 {
		return nil
	}
	match, err := f.MatchAny(builder.DeriveKey(&s.Hash), scripts)
	if err != nil || !match {
		return err
	}
	blk, err := m.FetchBlock(ctx, c, s.Hash)
	if err != nil {
		return err
	}
	m.cfg.OnBlock(s, blk)
	return nil
}

// FetchBlock asks c's peer for a block and checks it against its header.
func (m *Manager) FetchBlock(ctx context.Context, c *conn, hash chainhash.Hash) (*wire.MsgBlock, error) {
	gd := wire.NewMsgGetData()
	if err := gd.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessBlock, &hash)); err != nil {
		return nil, err
	}
	c.p.QueueMessage(gd, nil)
	msg, err := m.await(ctx, c, m.cfg.Timeout, func(msg wire.Message) bool {
		switch v := msg.(type) {
		case *wire.MsgBlock:
			return v.BlockHash() == hash
		case *wire.MsgNotFound:
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	blk, ok := msg.(*wire.MsgBlock)
	if !ok {
		return nil, fmt.Errorf("p2p: %s: block %v not found", c.addr, hash)
	}
	m.st.blocks.Add(1)
	txs := make([]*btcutil.Tx, len(blk.Transactions))
	for i, tx := range blk.Transactions {
		txs[i] = btcutil.NewTx(tx)
	}
	if root := blockchain.CalcMerkleRoot(txs, false); root != blk.Header.MerkleRoot {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "block merkle root mismatch")
		return nil, fmt.Errorf("p2p: %s: block %v: merkle root mismatch", c.addr, hash)
	}
	return blk, nil
}
