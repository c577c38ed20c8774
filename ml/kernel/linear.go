package kernel

import "fmt"

// LinearF32 sets y[j] = max(bias[j] + Σₖ x[k]·w[k·n+j], floor) for j < n: one row of a
// float32 dense layer whose weights w are K rows of n (n a multiple of 8; pad with zero
// columns); floor 0 applies a ReLU, −Inf none. On
// amd64 with AVX2 and FMA, and on arm64 (NEON), the sums use fused multiply-adds, so
// results may differ from the Go path in the last bits. It panics when the slices are too short.
func LinearF32(y, x, w []float32, n int, bias []float32, floor float32) {
	k := len(x)
	if n%8 != 0 || len(y) < n || len(bias) < n || len(w) < k*n {
		panic(fmt.Sprintf("kernel: LinearF32(n=%d) with len y=%d x=%d w=%d bias=%d", n, len(y), k, len(w), len(bias)))
	}
	if k > 0 && n > 0 && linearVec(y, x, w, n, bias, floor) {
		return
	}
	linearGo(y, x, w, n, bias, floor)
}

func linearGo(y, x, w []float32, n int, bias []float32, floor float32) {
	y = y[:n]
	copy(y, bias)
	for kk, av := range x {
		wr := w[kk*n : (kk+1)*n]
		for j := range y {
			y[j] += av * wr[j]
		}
	}
	for j, v := range y {
		if !(v >= floor) { // as VMAXPS does: below the floor, or NaN, gives the floor
			v = floor
		}
		y[j] = v
	}
}
