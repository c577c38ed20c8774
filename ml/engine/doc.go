// Package engine runs ONNX models (decoded by ml/onnx) on the CPU, in int8 where the model
// allows it, without cgo or any runtime library.
//
// # Execution
//
// Load checks the graph once: every operator must be one of the supported set (Gemm, MatMul,
// Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Softmax, Concat, Reshape, Transpose, Flatten,
// Identity, Constant, QuantizeLinear, DequantizeLinear) in the default domain, or Load fails naming
// the operator and the node. Nodes whose inputs are all constant are evaluated at load
// (constant folding), and nodes whose results nobody reads are dropped.
//
//   - Float models: every Gemm or MatMul with a constant weight matrix is executed in int8 by
//     dynamic quantization, as onnxruntime's quantize_dynamic would: weights quantized
//     symmetrically per output channel at load; activations quantized per tensor at run time
//     to uint8 with a zero point (onnxruntime's DynamicQuantizeLinear rule: range widened to
//     include 0, scale = range/255, round half to even); int32 accumulation in ml/kernel;
//     result scaled back to float32. Options.Float keeps them in float32 (the reference for
//     agreement with onnxruntime's float path).
//   - QDQ models (onnxruntime's static quantization format): a MatMul or Gemm whose
//     activation comes from DequantizeLinear(QuantizeLinear(x)) and whose weight is a
//     DequantizeLinear of a constant int8 tensor runs on the integers directly (the quantized
//     activation minus its zero point times the int8 weights, int32 sums), then scales by
//     the two scales, as onnxruntime's fused QGemm/QLinearMatMul do. In a model with any
//     QuantizeLinear the layers left in float stay float: the model chose them. Other QuantizeLinear and
//     DequantizeLinear nodes are executed as defined (QuantizeLinear divides by the scale,
//     rounds half to even, saturates), so quantized values are identical to onnxruntime's.
//
// Values are float32 tensors; the outputs of QuantizeLinear hold their integer values
// exactly in float32.
//
// # Concurrency and allocation
//
// A Model is immutable after Load and safe for concurrent use. A Session holds the buffers
// of one execution and is not: use one per goroutine (or a sync.Pool). After the first Run
// with a given input shape, Run allocates nothing: buffers only grow when a larger batch
// arrives. The tensors Run returns belong to the session and are overwritten by its next Run.
//
// # Bad input
//
// Load returns an error, never panics, for malformed or truncated files, unsupported
// operators or attributes, and shapes that do not fit together; Run returns an error for
// inputs of the wrong number, rank or size and for NaN or infinite input values. FuzzLoad
// feeds Load (and a run of whatever loads) arbitrary bytes.
//
// Dependencies: ml/onnx (the file format) and ml/kernel (the int8 matrix product) only.
package engine
