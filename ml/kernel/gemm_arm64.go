package kernel

// Advanced SIMD (NEON) is part of every arm64 CPU Go supports (ARMv8-A makes it
// mandatory), so the NEON GEMM needs no run-time feature check; the float loops
// (quantize, scale, linear, tanh) have no NEON version yet and use the Go code.
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

func quantizeVec([]int16, []float32, float32, float32, float32, float32) int { return 0 }

func scaleVec([]float32, []int32, []float32, []float32, float32) int { return 0 }

func linearVec([]float32, []float32, []float32, int, []float32, float32) bool { return false }

func tanhVec([]float32, []float32, *[13]float32) int { return 0 }
