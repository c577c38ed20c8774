package p2p

import (
	"fmt"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// checkBlock verifies a block received from a peer for the header we validated (want):
// it must hash to want and pass btcd's context-free block checks (proof of work, a
// coinbase first and only there, sane transactions, the merkle root of its transactions,
// no duplicate transactions, which a merkle root alone does not rule out) and carry the
// witness commitment its witness data needs. A block that fails was altered by the peer.
func checkBlock(blk *wire.MsgBlock, want chainhash.Hash, params *chaincfg.Params, clock blockchain.MedianTimeSource) error {
	if got := blk.BlockHash(); got != want {
		return fmt.Errorf("block %v instead of %v", got, want)
	}
	b := btcutil.NewBlock(blk)
	if err := blockchain.CheckBlockSanity(b, params.PowLimit, clock); err != nil {
		return fmt.Errorf("block %v: %w", want, err)
	}
	if err := blockchain.ValidateWitnessCommitment(b); err != nil {
		return fmt.Errorf("block %v: %w", want, err)
	}
	return nil
}
