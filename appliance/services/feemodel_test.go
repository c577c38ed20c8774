package services

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/anya-edge/anya/node/chain"
)

// statsBackend is a chain backend that reports its mempool (only what modelFee uses).
type statsBackend struct {
	chain.Backend
	st  chain.MempoolStats
	err error
}

func (b statsBackend) MempoolStats(context.Context) (chain.MempoolStats, error) { return b.st, b.err }

// plainBackend reports no mempool.
type plainBackend struct{ chain.Backend }

func TestModelFee(t *testing.T) {
	n := newNodeService(nil, nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n.fees == nil {
		t.Fatal("the shipped fee model did not load")
	}
	calm := chain.MempoolStats{Txs: 40000, VSize: 30_000_000, Median: 2, Mean: 2.5, P10: 1, P90: 3, Max: 150, Std: 2}
	busy := chain.MempoolStats{Txs: 150000, VSize: 250_000_000, Median: 40, Mean: 50, P10: 10, P90: 90, Max: 900, Std: 60}
	cases := []struct {
		name        string
		backend     chain.Backend
		unavailable bool // declines with chain.ErrFeeUnavailable
		lo, hi      chain.FeeRate
	}{
		{"no backend", nil, true, 0, 0},
		{"backend without mempool data", plainBackend{}, true, 0, 0},
		{"mempool unreadable", statsBackend{err: chain.ErrFeeUnavailable}, true, 0, 0},
		{"empty mempool", statsBackend{}, true, 0, 0},
		{"calm mempool", statsBackend{st: calm}, false, 1000, 10_000},
		{"busy mempool", statsBackend{st: busy}, false, 10_000, 200_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n.mu.Lock()
			n.backend = tc.backend
			n.mu.Unlock()
			rate, err := n.modelFee(context.Background(), 1)
			if tc.unavailable {
				if !errors.Is(err, chain.ErrFeeUnavailable) {
					t.Fatalf("rate %v, err %v; want ErrFeeUnavailable", rate, err)
				}
				return
			}
			if err != nil || rate < tc.lo || rate > tc.hi {
				t.Fatalf("rate %v sat/kvB, err %v; want %v…%v", rate, err, tc.lo, tc.hi)
			}
		})
	}
}
