// Package feemodel estimates the fee rate that the next blocks will need from the state of
// the node's mempool, with a small network trained on real mainnet blocks
// (tools/cmd/feetrain; testdata/report.md has its held-out error against persistence and
// against the mempool median).
//
// The model, testdata/fee-int8.onnx, is embedded in the binary (go:embed): an MLP 8→32→32→3
// in onnxruntime's QDQ int8 form with its first layer in float32, run by ml/engine. Its
// inputs are Snapshot.Features (log1p of mempool size and fee-rate statistics); its outputs
// are log1p of the fee rate (sat/vB) for 1, 3 and 6 blocks. Estimate maps any target to the
// nearest of those at or below it (2 → 1, 4 and 5 → 3, 7 and up → 6: never a slower one),
// and the three are made non-increasing with the target.
//
// It knows nothing of the chain backend: the caller (appliance/services) builds the Snapshot
// from what its backend reports, and falls back to the backend's own estimate when it cannot.
// A Model is safe for concurrent use (a sync.Pool of engine sessions); Estimate allocates
// nothing once warm.
//
// Dependencies: ml/engine only.
package feemodel
