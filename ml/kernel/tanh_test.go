package kernel

import (
	"math"
	"testing"
)

func TestTanh(t *testing.T) {
	var x []float32
	for i := -120000; i <= 120000; i++ {
		x = append(x, float32(i)*1e-4)
	}
	x = append(x, 50, -50, float32(math.Inf(1)), float32(math.Inf(-1)), 1e-30, -1e-30)
	y := make([]float32, len(x))
	Tanh(y, x)
	for i, v := range x {
		want := math.Tanh(float64(v))
		if d := math.Abs(float64(y[i]) - want); d > 4e-7 || d > 4e-7*math.Abs(want)+1e-37 && math.Abs(want) < 1 && d > 1e-6*math.Abs(want) {
			t.Fatalf("Tanh(%v) = %v, want %v", v, y[i], want)
		}
	}
}

func BenchmarkTanh(b *testing.B) {
	x, y := make([]float32, 8192), make([]float32, 8192)
	for i := range x {
		x[i] = float32(i%200-100) * 0.05
	}
	for b.Loop() {
		Tanh(y, x)
	}
}

func BenchmarkMathTanh(b *testing.B) {
	x, y := make([]float32, 8192), make([]float32, 8192)
	for i := range x {
		x[i] = float32(i%200-100) * 0.05
	}
	for b.Loop() {
		for i, v := range x {
			y[i] = float32(math.Tanh(float64(v)))
		}
	}
}
