package p2p

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
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
	headers := chainFilterHeaders(prev, cf.FilterHashes)
	blocks := make([]chainhash.Hash, len(headers))
	for i := range blocks {
		blocks[i] = mustHash(m, start+int32(i))
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

// chainFilterHeaders derives the filter headers of consecutive blocks from their filter
// hashes (BIP157: header = double-SHA256(filter hash || previous header)).
func chainFilterHeaders(prev chainhash.Hash, hashes []*chainhash.Hash) []chainhash.Hash {
	out := make([]chainhash.Hash, 0, len(hashes))
	for _, fhash := range hashes {
		var buf [2 * chainhash.HashSize]byte
		if fhash != nil {
			copy(buf[:], fhash[:])
		}
		copy(buf[chainhash.HashSize:], prev[:])
		prev = chainhash.DoubleHashH(buf[:])
		out = append(out, prev)
	}
	return out
}

// verified is a filter checked against its filter header, and whether it matched the wallet.
type verified struct {
	s     Stamp
	data  []byte
	match bool
}

func (m *Manager) fetchFilters(ctx context.Context, c *conn, start, stop int32) error {
	stopHash := mustHash(m, stop)
	c.p.QueueMessage(wire.NewMsgGetCFilters(wire.GCSFilterRegular, uint32(start), &stopHash), nil)
	// A filter is recorded only once the wallet's block of it (if any) is delivered, in
	// height order, so that a peer that fails to deliver the block makes the filter (and
	// the block) be fetched again, from another peer if need be. Blocks are fetched after
	// the whole batch of filters has arrived, since the replies would otherwise mix; the
	// filters after the first match wait for them.
	var (
		pending []verified
		ready   []verified // verified and delivered, to be stored in one transaction
	)
	flush := func() error {
		err := m.recordFilters(ready)
		ready = ready[:0]
		return err
	}
	for h := start; h <= stop; h++ {
		want := mustHash(m, h)
		msg, err := m.await(ctx, c, m.cfg.Timeout, func(msg wire.Message) bool { _, ok := msg.(*wire.MsgCFilter); return ok })
		if err != nil {
			return errors.Join(err, flush())
		}
		m.st.cfilters.Add(1)
		cf := msg.(*wire.MsgCFilter)
		f, err := m.verifyFilter(c, cf, h, want)
		if err != nil {
			return errors.Join(err, flush())
		}
		match, err := m.matches(want, f)
		if err != nil {
			return errors.Join(err, flush())
		}
		v := verified{s: Stamp{Height: h, Hash: want}, data: cf.Data, match: match}
		if len(pending) == 0 && !match {
			ready = append(ready, v)
			continue
		}
		pending = append(pending, v)
	}
	for _, v := range pending {
		if v.match {
			if err := flush(); err != nil {
				return err
			}
			blk, err := m.FetchBlock(ctx, c, v.s.Hash)
			if err != nil {
				return err
			}
			m.cfg.OnBlock(v.s, blk)
		}
		ready = append(ready, v)
	}
	return flush()
}

// verifyFilter checks a cfilter from c's peer for the block want at height h: the block
// and filter type asked for, a filter that decodes (chain.DecodeFilter) and that hashes to
// the filter header we hold for it. A peer that fails misbehaves.
func (m *Manager) verifyFilter(c *conn, cf *wire.MsgCFilter, h int32, want chainhash.Hash) (*gcs.Filter, error) {
	if cf.BlockHash != want || cf.FilterType != wire.GCSFilterRegular {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "unexpected cfilter")
		return nil, fmt.Errorf("p2p: %s: cfilter for %v, want %v", c.addr, cf.BlockHash, want)
	}
	f, err := chain.DecodeFilter(cf.Data)
	if err != nil {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "undecodable cfilter")
		return nil, fmt.Errorf("p2p: %s: cfilter %v: %w", c.addr, want, err)
	}
	prev, err := m.prevFilterHeader(h)
	if err != nil {
		return nil, err
	}
	got, err := builder.MakeHeaderForFilter(f, prev)
	if err != nil {
		return nil, fmt.Errorf("p2p: filter header %v: %w", want, err)
	}
	if exp, _ := m.FilterHeader(want); got != exp {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, "cfilter does not match its filter header")
		return nil, fmt.Errorf("p2p: %s: cfilter %v does not match its header", c.addr, want)
	}
	return f, nil
}

// recordFilters stores verified filters in one storage transaction (one commit per batch,
// not per filter: that was 70% of the sync's CPU) and wakes the subscriptions.
func (m *Manager) recordFilters(vs []verified) error {
	if len(vs) == 0 {
		return nil
	}
	if m.store != nil {
		blocks := make([]chainhash.Hash, len(vs))
		data := make([][]byte, len(vs))
		for i, v := range vs {
			blocks[i], data[i] = v.s.Hash, v.data
		}
		if err := m.store.putFilters(blocks, data); err != nil {
			return err
		}
	}
	m.fmu.Lock()
	for _, v := range vs {
		m.haveF[v.s.Hash] = true
	}
	m.fmu.Unlock()
	m.hub.notify()
	return nil
}

// matches reports whether the block's filter matches one of the wallet's scripts (gcs
// MatchAny with the block-hash key); false without Config.Scripts and OnBlock.
func (m *Manager) matches(block chainhash.Hash, f *gcs.Filter) (bool, error) {
	if m.cfg.Scripts == nil || m.cfg.OnBlock == nil || f.N() == 0 {
		return false, nil
	}
	scripts := m.cfg.Scripts()
	if len(scripts) == 0 {
		return false, nil
	}
	ok, err := f.MatchAny(builder.DeriveKey(&block), scripts)
	if err != nil {
		return false, fmt.Errorf("p2p: match filter of %v: %w", block, err)
	}
	return ok, nil
}

// FetchBlock asks c's peer for a block and checks it against its header (checkBlock).
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
	if err := checkBlock(blk, hash, m.cfg.Params, m.chain.clock); err != nil {
		m.misbehave(c.addr, c.p, m.cfg.BanThreshold, err.Error())
		return nil, fmt.Errorf("p2p: %s: %w", c.addr, err)
	}
	return blk, nil
}
