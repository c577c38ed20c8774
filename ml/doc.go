// Package ml runs small quantized (int8) ONNX models on the box's CPU, statically linked, for
// features such as fee-rate estimation (issue #6). It knows nothing of HTTP or PID 1.
package ml
