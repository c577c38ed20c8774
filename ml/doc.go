// Package ml runs small quantized (int8) ONNX models on the box's CPU, statically linked, for
// features such as fee-rate estimation (issue #6). It knows nothing of HTTP or PID 1.
//
// Its packages, each with one job:
//   - ml/onnx: reads and writes the ONNX file format (its own protowire decoder; the doc
//     says why not onnx-go's).
//   - ml/kernel: the int8 loops (GEMM, quantize, dequantize), AVX2 assembly and pure Go.
//   - ml/engine: compiles and runs a graph: float models by dynamic int8 quantization,
//     onnxruntime QDQ models on their integers.
//   - ml/mlp: writes multilayer perceptrons as ONNX (float and QDQ), for the trainer and
//     the tests.
//   - ml/feemodel: the shipped fee-rate model and its features.
//   - ml/ortcheck: a separate cgo module comparing all of it with onnxruntime (make test-ml,
//     make bench-ml); never part of anyad.
//
// Nothing in ml/ imports other packages of this module.
package ml
