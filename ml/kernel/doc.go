// Package kernel holds the integer matrix product that ml/engine's quantized layers spend
// their time in: C = A·Bᵀ with int16 operands holding 8-bit quantized values and int32
// accumulation.
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
//     of the module): gemm_amd64.s, blocks of 1 row × 4 columns of C per pass over K.
//   - everything else (arm64 included, for now): a pure-Go loop. An arm64 NEON kernel
//     (SMLAL) is not written yet.
//
// GemmS16 allocates nothing and keeps no state, so it is safe for concurrent use.
package kernel
