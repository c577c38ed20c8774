package chain

import (
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcjson"
)

// syncStatus decides from getblockchaininfo and getpeerinfo whether a node is still
// catching up. bitcoind says so itself (initialblockdownload) and reports headers ahead of
// blocks; btcd reports neither (its headers always equal its blocks), so the heights its
// peers announce are compared too. The median is used so that one peer claiming an absurd
// height cannot hold the wallet back.
func syncStatus(info *btcjson.GetBlockChainInfoResult, peers []btcjson.GetPeerInfoResult, slack int32) Status {
	st := Status{
		Headers: max(info.Headers, info.Blocks),
		Peers:   len(peers),
	}
	st.Best.Height = info.Blocks
	heights := make([]int32, 0, len(peers))
	for _, p := range peers {
		heights = append(heights, max(p.StartingHeight, p.CurrentHeight))
	}
	if len(heights) > 0 {
		slices.Sort(heights)
		st.PeerHeight = heights[len(heights)/2]
	}
	target := max(st.Headers, st.PeerHeight)
	switch {
	case info.InitialBlockDownload:
		st.Syncing, st.Reason = true, "initial block download"
	case st.Headers-info.Blocks > slack:
		st.Syncing, st.Reason = true, fmt.Sprintf("validating: %d headers ahead of blocks", st.Headers-info.Blocks)
	case st.PeerHeight-info.Blocks > slack:
		st.Syncing, st.Reason = true, fmt.Sprintf("peers are %d blocks ahead", st.PeerHeight-info.Blocks)
	}
	switch {
	case info.VerificationProgress > 0:
		st.Progress = min(info.VerificationProgress, 1)
	case target > 0:
		st.Progress = min(float64(info.Blocks)/float64(target), 1)
	default:
		st.Progress = 1
	}
	return st
}
