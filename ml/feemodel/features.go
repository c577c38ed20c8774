package feemodel

import (
	"errors"
	"fmt"
	"math"
)

// Snapshot is the state the model predicts from: the node's mempool as the block explorer
// data set recorded it (fee rates of the mempool's transactions, sat/vB, each transaction
// counted once) at the time of the latest block.
type Snapshot struct {
	Txs     int     // transactions in the mempool
	VSizeMB float64 // their total virtual size, in millions of vbytes
	Median  float64 // fee-rate statistics over those transactions, sat/vB
	Mean    float64
	P10     float64
	P90     float64
	Max     float64
	Std     float64
}

// NumFeatures is the width of the model's input.
const NumFeatures = 8

// FeatureNames are the inputs in order, for reports.
var FeatureNames = [NumFeatures]string{"log1p(tx count/1000)", "log1p(vsize MB)", "log1p(median)", "log1p(mean)",
	"log1p(p10)", "log1p(p90)", "log1p(max)", "log1p(std)"}

// Targets are the confirmation targets the model's outputs stand for, in blocks.
var Targets = [3]uint32{1, 3, 6}

// Features writes s's model inputs into dst (NumFeatures values). Rates and sizes enter
// as log1p: fee rates span four orders of magnitude.
func (s Snapshot) Features(dst []float32) error {
	if len(dst) != NumFeatures {
		return fmt.Errorf("feemodel: %d feature slots, want %d", len(dst), NumFeatures)
	}
	vals := [NumFeatures]float64{float64(s.Txs) / 1000, s.VSizeMB, s.Median, s.Mean, s.P10, s.P90, s.Max, s.Std}
	for i, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("feemodel: feature %s is %v", FeatureNames[i], v)
		}
		dst[i] = float32(math.Log1p(v))
	}
	if s.Txs == 0 {
		return errors.New("feemodel: empty mempool")
	}
	return nil
}
