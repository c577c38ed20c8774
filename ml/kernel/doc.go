// Package kernel holds the loops that ml/engine's quantized layers spend their time in: the
// integer matrix product C = A·Bᵀ (GemmS16: int16 operands holding 8-bit quantized values,
// int32 accumulation), the quantization of a float row into those operands (QuantizeS16,
// onnxruntime's QuantizeLinear rule) and the scaling of the int32 results back to float
// (ScaleRow, with an optional ReLU); plus the float loops of the layers kept in float
// (LinearF32, Tanh).
//
// # Why int16 operands
//
// The operands are 8-bit values (activations u8 minus their zero point, so −255…255; weights
// int8), widened to int16 once: activations when a layer quantizes them, weights when the
// model loads. On amd64 the inner loop is then AVX2's VPMADDWD (16 exact multiply-adds per
// instruction into int32 lanes). The faster-looking VPMADDUBSW (u8×s8) saturates its int16
// pair sums (255·127·2 > 32767), which silently breaks exactness; onnxruntime avoids it with
// 7-bit weights or VNNI, which this CPU lacks. With VPMADDWD every path (assembly, pure Go)
// gives the same int32 results bit for bit, so the tests compare them exactly.
//
// # Implementations
//
//   - amd64 with AVX2 (checked at start through golang.org/x/sys/cpu, already a dependency
//     of the module): gemm_amd64.s, blocks of 2 rows × 4 columns of C per pass over K (the
//     four rows of B loaded once for both rows of A), 1 × 4 for an odd last row, Go for
//     the last N mod 4 columns; quant_amd64.s vectorises QuantizeS16 (VDIVPS, VROUNDPS to
//     nearest even, clamp, pack) and ScaleRow.
//   - arm64 (NEON is mandatory in ARMv8-A, so there is no feature check): gemm_arm64.s,
//     the same 2 × 4 / 1 × 4 blocking with SMLAL/SMLAL2 (8 int16·int16 → int32
//     multiply-adds per pair, wrapping like Go's int32), hand-encoded as WORDs because Go's
//     assembler has no mnemonic for them. quant_arm64.s vectorises QuantizeS16 with the
//     steps of the AVX2 version (FDIV, FRINTN to nearest even, clamp, FCVTZS, XTN; also
//     hand-encoded), bit-identical to Quantize1; linear_arm64.s does LinearF32 in blocks
//     of 8 columns with VFMLA (fused, like the AVX2+FMA version, so checked against a
//     float64 sum within 1e-6, not bit for bit); tanh_arm64.s evaluates Tanh's rational
//     approximation 4 values at a time, as tanh_amd64.s does (fused, checked against
//     math.Tanh); scaleNEON does ScaleRow (SCVTF, FMUL, FADD: rounded twice like the Go
//     loop, which converts explicitly so that the compiler cannot fuse it on arm64, and
//     like scaleAVX2, so dequantized outputs are the same bits on both architectures).
//     The hand encodings are in neon_arm64.h. The arm64 tests run under qemu-user
//     (make test-arm64 runs ./ml/... that way: GOARCH=arm64 go test -exec qemu-aarch64); its
//     speed on real arm64 hardware has not been measured.
//   - everything else: a pure-Go loop.
//
// The tests check every implementation against a definition written independently: the
// integer results (GemmS16, QuantizeS16) and ScaleRow bit for bit, the fused float loops
// (LinearF32, Tanh) within the stated tolerances. Nothing here allocates or keeps state, so all of it is safe for concurrent use.
package kernel
