package p2p

import (
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// ErrInvalidHeader is matched (errors.Is) by every consensus failure of a header: a peer that
// sends one misbehaves.
var ErrInvalidHeader = errors.New("invalid header")

// ErrOrphanHeader is returned for a header whose parent is unknown. It is not misbehaviour
// by itself (an announcement may race a reorganisation); the caller asks for a locator.
var ErrOrphanHeader = errors.New("header does not connect")

// Stamp identifies a block by height and hash.
type Stamp struct {
	Height int32
	Hash   chainhash.Hash
}

func (s Stamp) String() string { return fmt.Sprintf("%d/%v", s.Height, s.Hash) }

// Change is the effect of one batch of headers on the best chain: the blocks that left it
// (tip first) and those that joined it (lowest first).
type Change struct {
	Disconnected []Stamp
	Connected    []Stamp
}

// hnode is one known header. It implements blockchain.HeaderCtx so that btcd's own
// difficulty and median-time rules validate our headers.
type hnode struct {
	hash   chainhash.Hash
	header wire.BlockHeader
	height int32
	work   *big.Int // cumulative
	parent *hnode
}

func (n *hnode) Height() int32    { return n.height }
func (n *hnode) Bits() uint32     { return n.header.Bits }
func (n *hnode) Timestamp() int64 { return n.header.Timestamp.Unix() }
func (n *hnode) stamp() Stamp     { return Stamp{Height: n.height, Hash: n.hash} }
func (n *hnode) Parent() blockchain.HeaderCtx {
	if n.parent == nil {
		return nil // a typed nil would defeat btcd's nil checks
	}
	return n.parent
}

func (n *hnode) ancestor(height int32) *hnode {
	for n != nil && n.height > height {
		n = n.parent
	}
	if n == nil || n.height != height {
		return nil
	}
	return n
}

func (n *hnode) RelativeAncestorCtx(distance int32) blockchain.HeaderCtx {
	a := n.ancestor(n.height - distance)
	if a == nil {
		return nil
	}
	return a
}

// chainCtx gives btcd's validation the network's rules and our checkpoints.
type chainCtx struct {
	params *chaincfg.Params
	hc     *HeaderChain
}

func (c chainCtx) ChainParams() *chaincfg.Params { return c.params }
func (c chainCtx) BlocksPerRetarget() int32 {
	return int32(c.params.TargetTimespan / c.params.TargetTimePerBlock)
}
func (c chainCtx) MinRetargetTimespan() int64 {
	return int64(c.params.TargetTimespan.Seconds()) / c.params.RetargetAdjustmentFactor
}
func (c chainCtx) MaxRetargetTimespan() int64 {
	return int64(c.params.TargetTimespan.Seconds()) * c.params.RetargetAdjustmentFactor
}
func (c chainCtx) VerifyCheckpoint(height int32, hash *chainhash.Hash) bool {
	for _, cp := range c.params.Checkpoints {
		if cp.Height == height {
			return cp.Hash.IsEqual(hash)
		}
	}
	return true
}

// FindPreviousCheckpoint is the highest checkpoint our best chain has reached, so that
// branches forking below it are refused.
func (c chainCtx) FindPreviousCheckpoint() (blockchain.HeaderCtx, error) {
	var best *hnode
	for _, cp := range c.params.Checkpoints {
		if n := c.hc.index[*cp.Hash]; n != nil && (best == nil || n.height > best.height) {
			best = n
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, nil
}

// HeaderChain is the validated header tree with its best chain (most cumulative work). It is
// safe for concurrent use. With a store, accepted headers and the best chain are persisted
// in the same transaction as they are accepted.
type HeaderChain struct {
	params *chaincfg.Params
	store  *store // may be nil (memory only)
	clock  blockchain.MedianTimeSource

	mu    sync.RWMutex
	index map[chainhash.Hash]*hnode
	best  []*hnode // best chain by height
}

// NewHeaderChain loads the chain from st (nil: memory only), starting from params' genesis.
func NewHeaderChain(params *chaincfg.Params, st *store) (*HeaderChain, error) {
	g := params.GenesisBlock.Header
	gn := &hnode{hash: g.BlockHash(), header: g, work: blockchain.CalcWork(g.Bits)}
	hc := &HeaderChain{params: params, store: st, clock: blockchain.NewMedianTime(),
		index: map[chainhash.Hash]*hnode{gn.hash: gn}, best: []*hnode{gn}}
	if st == nil {
		return hc, nil
	}
	recs, err := st.loadHeaders()
	if err != nil {
		return nil, err
	}
	for _, r := range recs { // sorted by height
		if r.height == 0 {
			continue
		}
		parent := hc.index[r.header.PrevBlock]
		if parent == nil {
			return nil, fmt.Errorf("p2p: stored header %v at %d has no stored parent", r.hash, r.height)
		}
		hc.index[r.hash] = &hnode{hash: r.hash, header: r.header, height: r.height,
			work: new(big.Int).Add(parent.work, blockchain.CalcWork(r.header.Bits)), parent: parent}
	}
	tip, ok, err := st.tip()
	if err != nil {
		return nil, err
	}
	if ok {
		n := hc.index[tip]
		if n == nil {
			return nil, fmt.Errorf("p2p: stored tip %v unknown", tip)
		}
		hc.best = hc.chainTo(n)
	}
	return hc, nil
}

func (hc *HeaderChain) chainTo(n *hnode) []*hnode {
	out := make([]*hnode, n.height+1)
	for ; n != nil; n = n.parent {
		out[n.height] = n
	}
	return out
}

// Tip is the best chain's tip.
func (hc *HeaderChain) Tip() Stamp {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	return hc.best[len(hc.best)-1].stamp()
}

// Work is the best chain's cumulative work.
func (hc *HeaderChain) Work() *big.Int {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	return new(big.Int).Set(hc.best[len(hc.best)-1].work)
}

// HashAt is the best chain's block hash at height.
func (hc *HeaderChain) HashAt(height int32) (chainhash.Hash, bool) {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	if height < 0 || int(height) >= len(hc.best) {
		return chainhash.Hash{}, false
	}
	return hc.best[height].hash, true
}

// Header returns a known header (also outside the best chain), its height and whether it
// is on the best chain.
func (hc *HeaderChain) Header(hash chainhash.Hash) (wire.BlockHeader, int32, bool, bool) {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	n := hc.index[hash]
	if n == nil {
		return wire.BlockHeader{}, 0, false, false
	}
	return n.header, n.height, hc.best[n.height] == n, true
}

// Locator is a block locator from the best tip: ten steps of one, then doubling.
func (hc *HeaderChain) Locator() blockchain.BlockLocator {
	hc.mu.RLock()
	defer hc.mu.RUnlock()
	var loc blockchain.BlockLocator
	step := int32(1)
	for h := int32(len(hc.best) - 1); h > 0; h -= step {
		hash := hc.best[h].hash
		loc = append(loc, &hash)
		if len(loc) >= 10 {
			step *= 2
		}
	}
	g := hc.best[0].hash
	return append(loc, &g)
}

// Process validates headers (each must connect to a known header: the first to any, the
// others to their predecessor) and makes the heaviest known branch the best chain. It
// returns the change of the best chain; on an invalid header it keeps the valid ones
// before it and returns an error matching ErrInvalidHeader.
func (hc *HeaderChain) Process(headers []wire.BlockHeader) (Change, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	var added []*hnode
	var verr error
	for i := range headers {
		h := headers[i]
		hash := h.BlockHash()
		if _, ok := hc.index[hash]; ok {
			continue
		}
		parent := hc.index[h.PrevBlock]
		if parent == nil {
			verr = fmt.Errorf("%w: %v (parent %v)", ErrOrphanHeader, hash, h.PrevBlock)
			break
		}
		if err := hc.check(&h, parent); err != nil {
			verr = fmt.Errorf("%w %v at %d: %w", ErrInvalidHeader, hash, parent.height+1, err)
			break
		}
		n := &hnode{hash: hash, header: h, height: parent.height + 1,
			work: new(big.Int).Add(parent.work, blockchain.CalcWork(h.Bits)), parent: parent}
		hc.index[hash] = n
		added = append(added, n)
	}
	if len(added) == 0 {
		return Change{}, verr
	}
	newTip := hc.best[len(hc.best)-1]
	for _, n := range added {
		if n.work.Cmp(newTip.work) > 0 {
			newTip = n
		}
	}
	var ch Change
	oldTip := hc.best[len(hc.best)-1]
	if newTip != oldTip {
		fork := newTip
		for fork.height >= int32(len(hc.best)) || hc.best[fork.height] != fork {
			fork = fork.parent
		}
		for h := oldTip.height; h > fork.height; h-- {
			ch.Disconnected = append(ch.Disconnected, hc.best[h].stamp())
		}
		for n := newTip; n != fork; n = n.parent {
			ch.Connected = append(ch.Connected, n.stamp())
		}
		for i, j := 0, len(ch.Connected)-1; i < j; i, j = i+1, j-1 {
			ch.Connected[i], ch.Connected[j] = ch.Connected[j], ch.Connected[i]
		}
	}
	if hc.store != nil {
		if err := hc.store.saveHeaders(added, ch, newTip); err != nil {
			for _, n := range added {
				delete(hc.index, n.hash)
			}
			return Change{}, err
		}
	}
	if newTip != oldTip {
		fork := newTip.height - int32(len(ch.Connected))
		hc.best = hc.chainFrom(hc.best[:fork+1:fork+1], newTip)
	}
	return ch, verr
}

// chainFrom extends prefix (the best chain up to the fork) with newTip's branch.
func (hc *HeaderChain) chainFrom(prefix []*hnode, tip *hnode) []*hnode {
	var branch []*hnode
	for n := tip; int(n.height) >= len(prefix); n = n.parent {
		branch = append(branch, n)
	}
	for i := len(branch) - 1; i >= 0; i-- {
		prefix = append(prefix, branch[i])
	}
	return prefix
}

// check applies the consensus rules on a header: proof of work within the network's limit
// and meeting its own target, timestamp precision and future limit, difficulty as the
// retarget rules require, timestamp after the median of the last 11, version, checkpoints.
func (hc *HeaderChain) check(h *wire.BlockHeader, parent *hnode) error {
	if err := blockchain.CheckBlockHeaderSanity(h, hc.params.PowLimit, hc.clock, blockchain.BFNone); err != nil {
		return err
	}
	return blockchain.CheckBlockHeaderContext(h, parent, blockchain.BFNone, chainCtx{params: hc.params, hc: hc}, false)
}
