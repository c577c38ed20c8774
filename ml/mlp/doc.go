// Package mlp describes small multilayer perceptrons (dense layers with an activation) and
// writes them as ONNX models, in float32 or in onnxruntime's QDQ int8 form with activation
// ranges calibrated on sample inputs. The fee-model trainer (tools/cmd/feetrain) exports
// with it, and the engine's and onnxruntime agreement tests build their models with it, so
// that what is tested is what ships. Forward is a float64 reference evaluation.
//
// It depends only on ml/onnx (the file format).
package mlp
