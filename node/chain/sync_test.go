package chain

import (
	"testing"

	"github.com/btcsuite/btcd/btcjson"
)

func TestSyncStatus(t *testing.T) {
	peers := func(heights ...int32) []btcjson.GetPeerInfoResult {
		var ps []btcjson.GetPeerInfoResult
		for _, h := range heights {
			ps = append(ps, btcjson.GetPeerInfoResult{StartingHeight: h})
		}
		return ps
	}
	for _, tc := range []struct {
		name     string
		info     btcjson.GetBlockChainInfoResult
		peers    []btcjson.GetPeerInfoResult
		syncing  bool
		progress float64
	}{
		{"fresh regtest, no peers", btcjson.GetBlockChainInfoResult{Blocks: 0, Headers: 0}, nil, false, 1},
		{"btcd at tip with peers", btcjson.GetBlockChainInfoResult{Blocks: 800000, Headers: 800000}, peers(800000, 799990, 800001), false, 1},
		{"bitcoind IBD flag", btcjson.GetBlockChainInfoResult{Blocks: 100, Headers: 100, InitialBlockDownload: true, VerificationProgress: 0.01}, nil, true, 0.01},
		{"bitcoind headers far ahead", btcjson.GetBlockChainInfoResult{Blocks: 500000, Headers: 800000, VerificationProgress: 0.4}, nil, true, 0.4},
		{"headers one ahead (block in flight)", btcjson.GetBlockChainInfoResult{Blocks: 799999, Headers: 800000}, nil, false, 799999.0 / 800000},
		{"btcd behind its peers", btcjson.GetBlockChainInfoResult{Blocks: 200000, Headers: 200000}, peers(800000, 800000, 800000), true, 0.25},
		{"one lying peer is outvoted", btcjson.GetBlockChainInfoResult{Blocks: 800000, Headers: 800000}, peers(800000, 800001, 9999999), false, 800000.0 / 800001},
		{"peers slightly ahead", btcjson.GetBlockChainInfoResult{Blocks: 799998, Headers: 799998}, peers(800000), false, 799998.0 / 800000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := syncStatus(&tc.info, tc.peers, 6)
			if st.Syncing != tc.syncing {
				t.Errorf("syncing = %v (%s), want %v", st.Syncing, st.Reason, tc.syncing)
			}
			if st.Syncing && st.Reason == "" {
				t.Error("no reason given")
			}
			if st.Progress != tc.progress {
				t.Errorf("progress = %v, want %v", st.Progress, tc.progress)
			}
			if st.Best.Height != tc.info.Blocks || st.Peers != len(tc.peers) {
				t.Errorf("status %+v", st)
			}
		})
	}
}
