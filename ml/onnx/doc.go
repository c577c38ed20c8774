// Package onnx reads and writes the subset of the ONNX file format (onnx.proto, IR version
// 3 and later) that small inference models use: the model's opsets, one graph with its
// nodes, attributes, initializers and typed inputs and outputs. It only decodes; running a
// graph is package ml/engine's job.
//
// # Why its own decoder
//
// The issue asked for github.com/owulveryck/onnx-go for the graph. onnx-go v0.5.0 (archived
// upstream) was measured here (shared notes, ml.md): its tensor decoder lives in an internal
// package and loads only bool, float32, float64, int32 and int64, so any model with int8 or
// uint8 initializers (every model quantized in onnxruntime's QDQ form) fails at load whatever
// backend is plugged into it, and that decoder cannot be reached to fix it. A second decoder
// for QDQ models would have been needed anyway; one decoder for both keeps a single code path
// to test and fuzz, and it avoids linking onnx-go's gogo-protobuf types, gonum graph and
// gorgonia tensor into anyad (the appliance binary must stay small and static).
//
// Decoding uses google.golang.org/protobuf/encoding/protowire, the wire-format layer of the
// official Go protobuf module (already in the build through other dependencies): it parses
// tags and varints with bounds checks and no reflection, and needs no generated code from
// onnx.proto. Fields this package does not know are skipped, as protobuf requires.
//
// # Safety
//
// Decode never panics on any input (FuzzDecode): every length is checked against the
// remaining bytes, tensor element counts must match their dims (with overflow checks and a
// size limit), and external tensor data, sparse initializers and subgraph attributes are
// rejected with an error naming what was found.
//
// Encode writes the same subset (tensors as raw_data), for the training tool and for tests
// that build models in Go.
package onnx
