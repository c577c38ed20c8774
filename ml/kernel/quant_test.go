package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// quantizeRef is the definition in float64: saturate(round_half_even(x/scale) + zp) − zp,
// with x/scale rounded to float32 first as QuantizeLinear computes it.
func quantizeRef(x, scale, zp, lo, hi float32) float32 {
	q := math.RoundToEven(float64(x/scale)) + float64(zp)
	return float32(min(max(q, float64(lo)), float64(hi)) - float64(zp))
}

func TestQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name              string
		scale, zp, lo, hi float32
		n                 int
		gen               func() float32
	}{
		{"uint8 normal", 0.02, 128, 0, 255, 1000, func() float32 { return float32(r.NormFloat64()) }},
		{"uint8 halves", 0.5, 3, 0, 255, 77, func() float32 { return float32(r.IntN(400)-100) * 0.25 }},
		{"int8 saturating", 0.01, 0, -128, 127, 35, func() float32 { return float32(r.NormFloat64() * 10) }},
		{"huge values", 1e-3, 10, 0, 255, 16, func() float32 { return float32(r.NormFloat64() * 1e30) }},
		{"short", 1, 0, 0, 255, 5, func() float32 { return float32(r.Float64() * 300) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, tc.n)
			for i := range x {
				x[i] = tc.gen()
			}
			got := make([]int16, tc.n)
			QuantizeS16(got, x, tc.scale, tc.zp, tc.lo, tc.hi)
			for i, v := range x {
				want := quantizeRef(v, tc.scale, tc.zp, tc.lo, tc.hi)
				if Quantize1(v, tc.scale, tc.zp, tc.lo, tc.hi) != want {
					t.Fatalf("Quantize1(%v) = %v, want %v", v, Quantize1(v, tc.scale, tc.zp, tc.lo, tc.hi), want)
				}
				if float32(got[i]) != want {
					t.Fatalf("QuantizeS16 element %d (%v) = %d, want %v", i, v, got[i], want)
				}
			}
		})
	}
}

func TestScaleRow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 7, 8, 9, 64, 67} {
		for _, withBias := range []bool{false, true} {
			for _, floor := range []float32{0, float32(math.Inf(-1))} {
				acc := make([]int32, n)
				scale := make([]float32, n)
				var bias []float32
				if withBias {
					bias = make([]float32, n)
				}
				for j := range acc {
					acc[j] = int32(r.IntN(200000) - 100000)
					scale[j] = float32(r.Float64() * 1e-3)
					if bias != nil {
						bias[j] = float32(r.NormFloat64())
					}
				}
				y := make([]float32, n)
				ScaleRow(y, acc, scale, bias, floor)
				for j := range y {
					want := float32(float32(acc[j]) * scale[j]) // rounded, not fused
					if bias != nil {
						want += bias[j]
					}
					want = max(want, floor)
					if y[j] != want {
						t.Fatalf("n=%d bias=%v floor=%v: y[%d] = %v, want %v", n, withBias, floor, j, y[j], want)
					}
				}
			}
		}
	}
}

func BenchmarkQuantize(b *testing.B) {
	x := make([]float32, 256*64)
	for i := range x {
		x[i] = float32(i%97) * 0.1
	}
	dst := make([]int16, len(x))
	for b.Loop() {
		QuantizeS16(dst, x, 0.05, 3, 0, 255)
	}
}
