//go:build !amd64 && !arm64

package kernel

// Impl names the implementation in use.
func Impl() string { return "go" }

func gemm(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	gemmGo(m, n, kk, a, lda, b, ldb, c, ldc)
}

func quantizeVec([]int16, []float32, float32, float32, float32, float32) int { return 0 }

func scaleVec([]float32, []int32, []float32, []float32, float32) int { return 0 }

func linearVec([]float32, []float32, []float32, int, []float32, float32) bool { return false }

func tanhVec([]float32, []float32, *[13]float32) int { return 0 }
