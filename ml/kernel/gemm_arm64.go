package kernel

import "unsafe"

// Advanced SIMD (NEON) is part of every arm64 CPU Go supports (ARMv8-A makes it
// mandatory), so the NEON kernels need no run-time feature check.
//
// hasNEON is a variable only so that tests could switch it; it is read-only otherwise.
var hasNEON = true

// Impl names the implementation in use: "neon" or "go".
func Impl() string {
	if hasNEON {
		return "neon"
	}
	return "go"
}

// gemmRowNEON computes n4 groups of 4 dot products of the k int16 at a with the rows at b
// (ldb elements apart), storing 4·n4 int32 at c. k is a positive multiple of 8.
//
//go:noescape
func gemmRowNEON(a, b *int16, ldb, k, n4 int, c *int32)

// gemm2RowNEON does the same for two rows of a (lda apart) into two rows of c (ldc apart).
//
//go:noescape
func gemm2RowNEON(a *int16, lda int, b *int16, ldb, k, n4 int, c *int32, ldc int)

func gemm(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	if !hasNEON {
		gemmGo(m, n, kk, a, lda, b, ldb, c, ldc)
		return
	}
	gemmNEON(m, n, kk, a, lda, b, ldb, c, ldc)
}

// gemmNEON runs the NEON kernels with the blocking gemmBlocked describes.
func gemmNEON(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	gemmBlocked(gemm2RowNEON, gemmRowNEON, m, n, kk, a, lda, b, ldb, c, ldc)
}

//go:noescape
func quantizeNEON(dst *int16, x *float32, n8 int, p *[4]float32)

// quantizeVec quantizes the first multiple of 8 values with NEON and returns how many.
func quantizeVec(dst []int16, x []float32, scale, zp, lo, hi float32) int {
	n8 := len(x) &^ 7
	if !hasNEON || n8 == 0 {
		return 0
	}
	p := [4]float32{scale, zp, lo, hi}
	quantizeNEON(unsafe.SliceData(dst), unsafe.SliceData(x), n8, &p)
	return n8
}

//go:noescape
func scaleNEON(y *float32, acc *int32, scale, bias *float32, n4 int, floor float32)

// scaleVec is ScaleRow's vector part; it returns how many values it did.
func scaleVec(y []float32, acc []int32, scale, bias []float32, floor float32) int {
	n4 := len(y) &^ 3
	if !hasNEON || n4 == 0 {
		return 0
	}
	scaleNEON(unsafe.SliceData(y), unsafe.SliceData(acc), unsafe.SliceData(scale), unsafe.SliceData(bias), n4, floor)
	return n4
}

//go:noescape
func linearNEON(y, x *float32, k int, w *float32, n int, bias *float32, floor float32)

// linearVec runs LinearF32 with NEON fused multiply-adds.
func linearVec(y, x, w []float32, n int, bias []float32, floor float32) bool {
	if !hasNEON {
		return false
	}
	linearNEON(unsafe.SliceData(y), unsafe.SliceData(x), len(x), unsafe.SliceData(w), n, unsafe.SliceData(bias), floor)
	return true
}

//go:noescape
func tanhNEON(dst, x *float32, n4 int, c *[13]float32)

// tanhVec does the first multiple of 4 values of Tanh with NEON and returns how many.
func tanhVec(dst, x []float32, c *[13]float32) int {
	n4 := len(x) &^ 3
	if !hasNEON || n4 == 0 {
		return 0
	}
	tanhNEON(unsafe.SliceData(dst), unsafe.SliceData(x), n4, c)
	return n4
}
