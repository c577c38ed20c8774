package wallet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/anya-edge/anya/node/chain"
)

// DefaultTarget is the confirmation target, in blocks, when a request names none.
const DefaultTarget = 6

// feeTimeout bounds each fee source.
const feeTimeout = 15 * time.Second

type feeSource struct {
	name string
	fn   func(ctx context.Context, target uint32) (chain.FeeRate, error)
}

// EstimateFee suggests a fee rate to confirm within target blocks (0: DefaultTarget). The
// sources are asked together; the first that answers, in the order Config.FeeModel
// ("model"), the backend's estimator ("backend"), the backend's mempool ("mempool", when
// it implements chain.MempoolFeeEstimator) and the minimum relay fee ("minimum"), gives
// Rate, and the others' answers are listed in Others. Answers below the minimum relay fee
// are raised to it; answers above chain.MaxSaneFeeRate are ignored.
func (w *Wallet) EstimateFee(ctx context.Context, target uint32) (FeeEstimate, error) {
	if target == 0 {
		target = DefaultTarget
	}
	var srcs []feeSource
	if w.cfg.FeeModel != nil {
		srcs = append(srcs, feeSource{"model", w.cfg.FeeModel})
	}
	if b := w.currentBackend(); b != nil {
		srcs = append(srcs, feeSource{"backend", b.EstimateFee})
		if m, ok := b.(chain.MempoolFeeEstimator); ok {
			srcs = append(srcs, feeSource{"mempool", m.MempoolFeeRate})
		}
	}
	answers := make([]*FeeEstimate, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, feeTimeout)
			defer cancel()
			r, err := s.fn(cctx, target)
			switch {
			case err != nil:
				w.log.Debug("fee source failed", "source", s.name, "err", err)
				return
			case r <= 0 || r > chain.MaxSaneFeeRate:
				w.log.Debug("fee source answered an implausible rate", "source", s.name, "rate", r)
				return
			}
			answers[i] = &FeeEstimate{Target: target, Rate: max(r, chain.MinRelayFeeRate), Source: s.name}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return FeeEstimate{}, fmt.Errorf("wallet: estimate fee: %w", err)
	}
	var all []FeeEstimate
	for _, a := range answers {
		if a != nil {
			all = append(all, *a)
		}
	}
	all = append(all, FeeEstimate{Target: target, Rate: chain.MinRelayFeeRate, Source: "minimum"})
	best := all[0]
	if len(all) > 1 {
		best.Others = all[1:]
	}
	return best, nil
}

// feeRateOf is fee/vsize in sat/kvB, rounded down.
func feeRateOf(fee, vsize int64) chain.FeeRate {
	if vsize <= 0 {
		return 0
	}
	return chain.FeeRate(fee * 1000 / vsize)
}
