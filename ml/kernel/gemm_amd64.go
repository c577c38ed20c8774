package kernel

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasAVX2 is read-only after package initialisation.
var hasAVX2 = cpu.X86.HasAVX2

// Impl names the implementation in use: "avx2" or "go".
func Impl() string {
	if hasAVX2 {
		return "avx2"
	}
	return "go"
}

// gemmRowAVX2 computes n4 groups of 4 dot products of the k int16 at a with the rows at b
// (ldb elements apart), storing 4·n4 int32 at c. k is a positive multiple of 16.
//
//go:noescape
func gemmRowAVX2(a, b *int16, ldb, k, n4 int, c *int32)

func gemm(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	if !hasAVX2 {
		gemmGo(m, n, kk, a, lda, b, ldb, c, ldc)
		return
	}
	gemmAVX2(m, n, kk, a, lda, b, ldb, c, ldc)
}

//go:noescape
func gemm2RowAVX2(a *int16, lda int, b *int16, ldb, k, n4 int, c *int32, ldc int)

func gemmAVX2(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	gemmBlocked(gemm2RowAVX2, gemmRowAVX2, m, n, kk, a, lda, b, ldb, c, ldc)
}

//go:noescape
func quantizeAVX2(dst *int16, x *float32, n8 int, p *[4]float32)

//go:noescape
func scaleAVX2(y *float32, acc *int32, scale, bias *float32, n8 int, floor float32)

// quantizeVec quantizes the first multiple of 8 values with AVX2 and returns how many.
func quantizeVec(dst []int16, x []float32, scale, zp, lo, hi float32) int {
	n8 := len(x) &^ 7
	if !hasAVX2 || n8 == 0 {
		return 0
	}
	p := [4]float32{scale, zp, lo, hi}
	quantizeAVX2(unsafe.SliceData(dst), unsafe.SliceData(x), n8, &p)
	return n8
}

// scaleVec is ScaleRow's vector part; it returns how many values it did.
func scaleVec(y []float32, acc []int32, scale, bias []float32, floor float32) int {
	n8 := len(y) &^ 7
	if !hasAVX2 || n8 == 0 {
		return 0
	}
	scaleAVX2(unsafe.SliceData(y), unsafe.SliceData(acc), unsafe.SliceData(scale), unsafe.SliceData(bias), n8, floor)
	return n8
}

// hasFMA is read-only after package initialisation.
var hasFMA = cpu.X86.HasFMA

//go:noescape
func linearFMA(y, x *float32, k int, w *float32, n int, bias *float32, floor float32)

// linearVec runs LinearF32 with AVX2 and FMA when the CPU has them.
func linearVec(y, x, w []float32, n int, bias []float32, floor float32) bool {
	if !hasAVX2 || !hasFMA {
		return false
	}
	linearFMA(unsafe.SliceData(y), unsafe.SliceData(x), len(x), unsafe.SliceData(w), n, unsafe.SliceData(bias), floor)
	return true
}

//go:noescape
func tanhFMA(dst, x *float32, n8 int, c *[13]float32)

func tanhVec(dst, x []float32, c *[13]float32) int {
	n8 := len(x) &^ 7
	if !hasAVX2 || !hasFMA || n8 == 0 {
		return 0
	}
	tanhFMA(unsafe.SliceData(dst), unsafe.SliceData(x), n8, c)
	return n8
}
