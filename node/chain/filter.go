package chain

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// maxFilterSize bounds a basic filter: a block of 4 MB weight cannot produce more entries
// than it has bytes, and each entry costs about P+2 bits.
const maxFilterSize = 4_000_000

// decodeFilter parses a serialized BIP158 basic filter (N as a varint, then the Golomb-Rice
// coded set) received from a node.
func decodeFilter(raw []byte) (*gcs.Filter, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty filter")
	}
	if len(raw) > maxFilterSize {
		return nil, fmt.Errorf("filter of %d bytes is larger than any block allows", len(raw))
	}
	f, err := gcs.FromNBytes(builder.DefaultP, builder.DefaultM, raw)
	if err != nil {
		return nil, fmt.Errorf("decode basic filter: %w", err)
	}
	// Every element takes at least P+1 bits, so N cannot exceed the coded bits / (P+1).
	if n := uint64(f.N()); n > uint64(len(raw))*8/(builder.DefaultP+1)+1 {
		return nil, fmt.Errorf("filter claims %d elements in %d bytes", n, len(raw))
	}
	return f, nil
}

// DecodeFilter parses a serialized BIP158 basic filter received from a node or a peer,
// refusing one larger than any block allows or one that claims more elements than its
// bytes can hold (which would make matching allocate and work for nothing).
func DecodeFilter(raw []byte) (*gcs.Filter, error) {
	f, err := decodeFilter(raw)
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	return f, nil
}

// parseBlockFilterResult decodes the hex fields of bitcoind's getblockfilter answer.
func parseBlockFilterResult(filterHex, headerHex string) ([]byte, chainhash.Hash, error) {
	raw, err := hex.DecodeString(filterHex)
	if err != nil {
		return nil, chainhash.Hash{}, fmt.Errorf("filter hex: %w", err)
	}
	if len(headerHex) != 2*chainhash.HashSize {
		return nil, chainhash.Hash{}, fmt.Errorf("filter header %q is not a 32-byte hash", headerHex)
	}
	h, err := chainhash.NewHashFromStr(headerHex)
	if err != nil {
		return nil, chainhash.Hash{}, fmt.Errorf("filter header hex: %w", err)
	}
	return raw, *h, nil
}

// FilterHeader computes the BIP157 header of a basic filter from the previous block's
// filter header; a light client checks a filter against the header chain with it.
func FilterHeader(f *gcs.Filter, prev chainhash.Hash) (chainhash.Hash, error) {
	h, err := builder.MakeHeaderForFilter(f, prev)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("chain: filter header: %w", err)
	}
	return h, nil
}

// MatchFilter reports whether any of scripts may be in the block whose basic filter is f.
func MatchFilter(f *gcs.Filter, block chainhash.Hash, scripts [][]byte) (bool, error) {
	if len(scripts) == 0 || f.N() == 0 {
		return false, nil
	}
	ok, err := f.MatchAny(builder.DeriveKey(&block), scripts)
	if err != nil {
		return false, fmt.Errorf("chain: match filter of %v: %w", block, err)
	}
	return ok, nil
}

// headerFromVerbose rebuilds a block header from a node's verbose getblockheader answer and
// checks that it hashes to the hash the node gave.
func headerFromVerbose(res *btcjson.GetBlockHeaderVerboseResult) (Header, error) {
	if res == nil {
		return Header{}, errors.New("empty header")
	}
	hash, err := chainhash.NewHashFromStr(res.Hash)
	if err != nil || len(res.Hash) != 2*chainhash.HashSize {
		return Header{}, fmt.Errorf("header hash %q: bad hash", res.Hash)
	}
	var prev chainhash.Hash
	if res.PreviousHash != "" {
		p, err := chainhash.NewHashFromStr(res.PreviousHash)
		if err != nil || len(res.PreviousHash) != 2*chainhash.HashSize {
			return Header{}, fmt.Errorf("previous hash %q: bad hash", res.PreviousHash)
		}
		prev = *p
	}
	merkle, err := chainhash.NewHashFromStr(res.MerkleRoot)
	if err != nil || len(res.MerkleRoot) != 2*chainhash.HashSize {
		return Header{}, fmt.Errorf("merkle root %q: bad hash", res.MerkleRoot)
	}
	bits, err := strconv.ParseUint(res.Bits, 16, 32)
	if err != nil {
		return Header{}, fmt.Errorf("bits %q: %w", res.Bits, err)
	}
	if res.Nonce > math.MaxUint32 {
		return Header{}, fmt.Errorf("nonce %d out of range", res.Nonce)
	}
	if res.Time < 0 || res.Time > math.MaxUint32 {
		return Header{}, fmt.Errorf("time %d out of range", res.Time)
	}
	if res.Height < 0 {
		return Header{}, fmt.Errorf("negative height %d", res.Height)
	}
	h := Header{
		BlockHeader: wire.BlockHeader{
			Version:    res.Version,
			PrevBlock:  prev,
			MerkleRoot: *merkle,
			Timestamp:  time.Unix(res.Time, 0),
			Bits:       uint32(bits),
			Nonce:      uint32(res.Nonce),
		},
		Hash:   *hash,
		Height: res.Height,
	}
	if got := h.BlockHeader.BlockHash(); got != *hash {
		return Header{}, fmt.Errorf("header fields hash to %v, not to the given %v", got, hash)
	}
	return h, nil
}
