package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/anya-edge/anya/ml/feemodel"
)

// block is one row of the data set.
type block struct {
	time      time.Time
	height    int
	snap      feemodel.Snapshot
	medianFee float64 // block_median_fee_rate
}

// columns the trainer reads, by header name.
var columns = []string{"block_time", "block_height", "tx_count", "mempool_size_mb", "max_fee_rate", "avg_fee_rate",
	"median_fee_rate", "fee_rate_10th", "fee_rate_90th", "fee_rate_std", "block_median_fee_rate"}

func readBlocks(r io.Reader) ([]block, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	idx := map[string]int{}
	for i, h := range head {
		idx[h] = i
	}
	for _, c := range columns {
		if _, ok := idx[c]; !ok {
			return nil, fmt.Errorf("column %q missing", c)
		}
	}
	var out []block
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		var v [11]float64
		for i, c := range columns[2:] {
			v[i], err = strconv.ParseFloat(rec[idx[c]], 64)
			if err != nil || math.IsNaN(v[i]) || math.IsInf(v[i], 0) || v[i] < 0 {
				return nil, fmt.Errorf("line %d: %s = %q", line, c, rec[idx[c]])
			}
		}
		t, err := time.Parse("2006-01-02 15:04:05", rec[idx["block_time"]])
		if err != nil {
			return nil, fmt.Errorf("line %d: block_time: %w", line, err)
		}
		h, err := strconv.Atoi(rec[idx["block_height"]])
		if err != nil {
			return nil, fmt.Errorf("line %d: block_height: %w", line, err)
		}
		out = append(out, block{time: t, height: h, medianFee: v[8], snap: feemodel.Snapshot{
			Txs: int(v[0]), VSizeMB: v[1], Max: v[2], Mean: v[3], Median: v[4], P10: v[5], P90: v[6], Std: v[7]}})
	}
	return out, nil
}

// sample is one training example: features, log1p targets, and the baselines' raw
// predictions with the raw targets for the report.
type sample struct {
	x           []float32
	y           [3]float64 // log1p of the targets
	raw         [3]float64 // targets, sat/vB
	persistence float64
	mempool     float64
	time        time.Time
}

// samples pairs each block with the next six; blocks without all six are skipped.
func samples(blocks []block) ([]sample, error) {
	byHeight := map[int]*block{}
	for i := range blocks {
		byHeight[blocks[i].height] = &blocks[i]
	}
	var out []sample
	for _, b := range blocks {
		if b.snap.Txs == 0 {
			continue
		}
		s := sample{x: make([]float32, feemodel.NumFeatures), persistence: b.medianFee, mempool: b.snap.Median, time: b.time}
		if err := b.snap.Features(s.x); err != nil {
			return nil, fmt.Errorf("block %d: %w", b.height, err)
		}
		low, ok := math.Inf(1), true
		for k := 1; k <= 6 && ok; k++ {
			nb, found := byHeight[b.height+k]
			if !found {
				ok = false
				break
			}
			low = min(low, nb.medianFee)
			for ti, t := range feemodel.Targets {
				if int(t) == k {
					s.raw[ti] = low
					s.y[ti] = math.Log1p(low)
				}
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}
