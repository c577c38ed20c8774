package coinselect

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/wallet/txsize"
)

// benchCoins is a wallet of n coins with log-uniform values from 1,000 sat to 1 BTC, of
// mixed input types.
func benchCoins(n int) []Coin {
	rng := rand.New(rand.NewPCG(42, 42))
	coins := make([]Coin, n)
	for i := range coins {
		v := int64(math.Exp(rng.Float64()*math.Log(100_000)) * 1000)
		coins[i] = Coin{Value: v, InputVSize: []int{58, 68, 91}[rng.IntN(3)]}
	}
	return coins
}

// largestFirst is the anchor: the naive selection wallets used before BnB. It sorts by
// effective value and takes the largest coins until the target and change are covered.
func largestFirst(req Request, coins []Coin) int {
	type ev struct {
		eff int64
		i   int
	}
	evs := make([]ev, 0, len(coins))
	for i, c := range coins {
		if e := c.Value - req.FeeRate.Fee(c.InputVSize); e > 0 {
			evs = append(evs, ev{e, i})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return cmpInt(b.eff, a.eff) })
	need := req.Target + req.FeeRate.Fee(req.BaseVSize+req.ChangeOutputVSize)
	var sum int64
	for n, e := range evs {
		sum += e.eff
		if sum >= need {
			return n + 1
		}
	}
	return 0
}

// BenchmarkSelect selects 0.5 BTC at 12 sat/vB from 10,000 coins (the case of issue #4) and,
// in the same run, times the largest-first anchor on the same coins; x-anchor is
// Select's time over the anchor's.
func BenchmarkSelect(b *testing.B) {
	coins := benchCoins(10_000)
	req := baseRequest(50_000_000)
	req.FeeRate = txsize.SatPerVByte(12)
	req.LongTermFeeRate = txsize.SatPerVByte(10)
	req.Rand = rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := Select(req, coins); err != nil {
			b.Fatal(err)
		}
	}
	sel := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if largestFirst(req, coins) == 0 {
			b.Fatal("anchor found nothing")
		}
	}
	anchor := time.Since(start)
	b.ReportMetric(float64(anchor.Nanoseconds())/float64(b.N), "anchor-ns/op")
	b.ReportMetric(float64(sel)/float64(anchor), "x-anchor")
}

// BenchmarkBnBExhaust is the worst case of branch-and-bound: 100,000 tries with no solution.
func BenchmarkBnBExhaust(b *testing.B) {
	pool, target := makeHardCase(17)
	for i := 0; i < b.N; i++ {
		if _, err := bnbCore(pool, target, 1); err == nil {
			b.Fatal("unexpected solution")
		}
	}
}
