// Package onnxgo loads float ONNX models through github.com/owulveryck/onnx-go's public API
// and runs them in ml/engine (int8 by dynamic quantization, or float32 with
// engine.Options.Float).
//
// # The two load paths
//
//   - Float models, this package: onnx-go v0.5.0 parses the file (its own protobuf code,
//     internal to it) and builds the graph in a Backend of ours: onnx-go's Backend interface
//     is an OperationCarrier (ApplyOperation, called once per ONNX node in file order with
//     the node's output values) plus a gonum graph.DirectedWeightedBuilder (one graph node per
//     value, edges from an operator's outputs to its inputs, weight = input position, and
//     initializers handed over as gorgonia tensors through SetTensor). Backend records all
//     of that and Model translates it into an ml/onnx Model, which engine.Compile checks and
//     compiles exactly as it does a model decoded by ml/onnx. Nothing of gorgonia runs: its
//     tensors only carry the constants across.
//   - Quantized models (QDQ, int8/uint8 initializers), ml/onnx + engine.Load: onnx-go's
//     tensor decoder knows only bool, float32, float64, int32 and int64 and fails on any
//     int8 or uint8 initializer ("Unknown type int8") whatever backend receives the graph,
//     so those models are decoded by ml/onnx's own protowire reader. engine.Load handles
//     float models too; this package exists for code that wants onnx-go as the parser.
//
// # What onnx-go's public API loses, and what Load does about it
//
//   - The opset: Operation carries only the operator name and attributes. Options.Opset
//     says which to assume (default 13); operators whose meaning changed between opsets
//     (Softmax's axis before 13, for example) follow that assumption.
//   - Node names and domains: nodes are named "onnxgo<i>:<OpType>" in error messages, and
//     every operator is taken to be in the default domain.
//   - Symbolic dimensions: onnx-go keeps only the fixed dimensions of a declared input
//     shape, so [N, 32] arrives as [32]. Options.Inputs gives an input's shape (−1 for a
//     dimension of any size); without it the fixed dimensions are used, and an input of the
//     wrong rank is refused by Session.Run, not silently misread.
//   - Nodes without inputs (Constant): onnx-go invents an input value for them, which Model
//     drops again.
//
// Load recovers a panic inside onnx-go (its decoder is not hardened against malformed
// files) and returns it as an error.
//
// # Binary size, and why anyad does not use this package
//
// onnx-go pulls in gogo/protobuf, gorgonia's tensor package (with flatbuffers and its
// math packages) and gonum's graph packages. Linked into appliance/cmd/anyad
// (CGO_ENABLED=0 go build -trimpath -ldflags='-s -w', amd64, 2026-11-26) they add
// 6,676,480 bytes: 30,978,210 without, 37,654,690 with (+21.6%). anyad therefore loads
// its models with engine.Load (ml/onnx) and never imports this package: only host tools
// and tests do. TestAnyadDoesNotImportOnnxGo keeps it that way.
package onnxgo
