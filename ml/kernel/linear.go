package kernel

import "fmt"

// LinearF32 sets y[j] = bias[j] + Σₖ x[k]·w[k·n+j] for j < n: one row of a float32 dense
// layer whose weights w are K rows of n (n a multiple of 8; pad with zero columns). On
// amd64 with AVX2 and FMA the sums use fused multiply-adds, so results may differ from the
// Go path in the last bits. It panics when the slices are too short.
func LinearF32(y, x, w []float32, n int, bias []float32) {
	k := len(x)
	if n%8 != 0 || len(y) < n || len(bias) < n || len(w) < k*n {
		panic(fmt.Sprintf("kernel: LinearF32(n=%d) with len y=%d x=%d w=%d bias=%d", n, len(y), k, len(w), len(bias)))
	}
	if k == 0 || n == 0 {
		copy(y[:n], bias)
		return
	}
	if linearVec(y, x, w, n, bias) {
		return
	}
	linearGo(y, x, w, n, bias)
}

func linearGo(y, x, w []float32, n int, bias []float32) {
	y = y[:n]
	copy(y, bias)
	for kk, av := range x {
		wr := w[kk*n : (kk+1)*n]
		for j := range y {
			y[j] += av * wr[j]
		}
	}
}
