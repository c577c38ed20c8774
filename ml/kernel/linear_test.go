package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestLinearF32(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, sz := range []struct{ k, n int }{{1, 8}, {3, 8}, {8, 32}, {32, 64}, {7, 40}, {64, 72}, {5, 0}, {0, 16}} {
		t.Run(fmt.Sprintf("%dx%d", sz.k, sz.n), func(t *testing.T) {
			x, w, bias := make([]float32, sz.k), make([]float32, sz.k*sz.n), make([]float32, sz.n)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			for i := range bias {
				bias[i] = float32(r.NormFloat64())
			}
			y := make([]float32, sz.n)
			LinearF32(y, x, w, sz.n, bias, float32(math.Inf(-1)))
			relu := make([]float32, sz.n)
			LinearF32(relu, x, w, sz.n, bias, 0)
			for j := range y {
				if relu[j] != max(y[j], 0) {
					t.Fatalf("with ReLU y[%d] = %v, want %v", j, relu[j], max(y[j], 0))
				}
				want, mag := float64(bias[j]), math.Abs(float64(bias[j]))
				for kk := range x {
					want += float64(x[kk]) * float64(w[kk*sz.n+j])
					mag += math.Abs(float64(x[kk]) * float64(w[kk*sz.n+j]))
				}
				if math.Abs(float64(y[j])-want) > 1e-6*mag {
					t.Fatalf("y[%d] = %v, want %v", j, y[j], want)
				}
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("n not a multiple of 8 accepted")
		}
	}()
	LinearF32(make([]float32, 4), make([]float32, 1), make([]float32, 4), 4, make([]float32, 4), 0)
}

func BenchmarkLinearF32(b *testing.B) {
	x, w, bias, y := make([]float32, 64), make([]float32, 64*64), make([]float32, 64), make([]float32, 64)
	for b.Loop() {
		LinearF32(y, x, w, 64, bias, 0)
	}
	b.ReportMetric(64*64*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}
