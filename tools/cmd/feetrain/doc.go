// Command feetrain trains the fee-rate model that ml/feemodel ships (issue #6), on the block
// explorer data set in ../shared/data (mainnet-fees-*.csv, real mainnet blocks with the
// mempool state at each block).
//
// For each block h it builds the features ml/feemodel computes on the box (mempool size and
// fee-rate statistics, feemodel.Snapshot) and three targets: the median fee rate of block
// h+1, and the lowest block median among the next 3 and the next 6 blocks (the rate that
// would have entered one of them at the median). Blocks whose next six are missing from the
// file are skipped. The last two weeks of the file are held out: training never sees them,
// and the report gives the mean absolute error there (sat/vB) of the float model, of the
// shipped int8 model run through ml/engine, of persistence (block h's median) and of the
// mempool median at h.
//
// The network is a small ReLU MLP (8→32→32→3) on log1p of features and targets, trained in
// pure Go (Adam, Huber loss, fixed seed: a run is reproducible). The input standardisation is
// folded into the first layer, so the exported model takes feemodel.Snapshot.Features as is.
// It writes fee-f32.onnx, fee-int8.onnx (QDQ, calibrated on the training rows, 7-bit weights
// so that onnxruntime on AVX2 computes it exactly too) and report.md to -out.
//
//	go run ./tools/cmd/feetrain -data ../shared/data/mainnet-fees-2024-09-16_2024-11-30.csv -out ml/feemodel/testdata
//
// Dependencies: ml/mlp (export), ml/engine (evaluating the int8 model), ml/feemodel (the
// features), ml/onnx (encoding); nothing outside the standard library otherwise.
package main
