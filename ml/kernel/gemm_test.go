package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// impls are the implementations this machine can run, by name.
func impls() map[string]func(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	r := map[string]func(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int){"go": gemmGo}
	addAsm(r)
	return r
}

// naive is the definition, with int64 sums so that it cannot share a bug with the kernels.
func naive(m, n, kk int, a []int16, lda int, b []int16, ldb int) []int32 {
	c := make([]int32, m*n)
	for i := range m {
		for j := range n {
			var s int64
			for k := range kk {
				s += int64(a[i*lda+k]) * int64(b[j*ldb+k])
			}
			c[i*n+j] = int32(s)
		}
	}
	return c
}

func randS16(r *rand.Rand, n int, lo, hi int) []int16 {
	v := make([]int16, n)
	for i := range v {
		v[i] = int16(lo + r.IntN(hi-lo+1))
	}
	return v
}

func TestGemmAgreesWithDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct{ m, n, k, padA, padB int }{
		{1, 1, 16, 0, 0},
		{1, 4, 16, 0, 0},
		{1, 5, 32, 0, 0},
		{3, 7, 48, 16, 0},
		{2, 64, 32, 0, 16},
		{256, 64, 64, 0, 0},
		{17, 33, 160, 32, 48},
		{4, 3, 0, 0, 0},
	}
	for name, gemm := range impls() {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%dx%dx%d", name, tc.m, tc.n, tc.k), func(t *testing.T) {
				lda, ldb := tc.k+tc.padA, tc.k+tc.padB
				// Extremes of the documented range: activations −255…255, weights −127…127.
				a := randS16(r, tc.m*lda, -255, 255)
				b := randS16(r, tc.n*ldb, -127, 127)
				if tc.m*lda > 0 {
					a[0], b[0] = -255, -127
				}
				want := naive(tc.m, tc.n, tc.k, a, lda, b, ldb)
				c := make([]int32, tc.m*tc.n)
				for i := range c {
					c[i] = 12345 // must be overwritten
				}
				if tc.k == 0 {
					GemmS16(tc.m, tc.n, tc.k, a, lda, b, ldb, c, tc.n)
				} else {
					gemm(tc.m, tc.n, tc.k, a, lda, b, ldb, c, tc.n)
				}
				for i := range want {
					if c[i] != want[i] {
						t.Fatalf("c[%d] = %d, want %d", i, c[i], want[i])
					}
				}
			})
		}
	}
}

func TestGemmPanicsOnShortSlices(t *testing.T) {
	cases := []struct {
		name            string
		m, n, k         int
		la, lb, lc, ldc int
	}{
		{"k not a multiple of 16", 1, 1, 8, 8, 8, 1, 1},
		{"short a", 2, 1, 16, 16, 16, 2, 1},
		{"short b", 1, 2, 16, 16, 16, 2, 2},
		{"short c", 2, 2, 16, 32, 32, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			GemmS16(tc.m, tc.n, tc.k, make([]int16, tc.la), tc.k, make([]int16, tc.lb), tc.k, make([]int32, tc.lc), tc.ldc)
		})
	}
}

func TestGemmAllocatesNothing(t *testing.T) {
	a, b, c := make([]int16, 8*64), make([]int16, 64*64), make([]int32, 8*64)
	if n := testing.AllocsPerRun(100, func() { GemmS16(8, 64, 64, a, 64, b, 64, c, 64) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

func BenchmarkGemm(b *testing.B) {
	for name, gemm := range impls() {
		for _, sz := range []struct{ m, n, k int }{{1, 64, 32}, {256, 64, 64}, {256, 64, 32}} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", name, sz.m, sz.n, sz.k), func(b *testing.B) {
				r := rand.New(rand.NewPCG(3, 4))
				a, w, c := randS16(r, sz.m*sz.k, -255, 255), randS16(r, sz.n*sz.k, -127, 127), make([]int32, sz.m*sz.n)
				for b.Loop() {
					gemm(sz.m, sz.n, sz.k, a, sz.k, w, sz.k, c, sz.n)
				}
				b.ReportMetric(float64(sz.m*sz.n*sz.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}

// TestGemmWrapsLikeGo uses the whole operand range (but −32768) and long rows, so that the
// int32 sums overflow: every implementation must wrap exactly as Go's int32 arithmetic does.
func TestGemmWrapsLikeGo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct{ m, n, k int }{
		{1, 4, 4096},
		{2, 8, 4096},
		{3, 9, 2048},
	}
	for name, gemm := range impls() {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%dx%dx%d", name, tc.m, tc.n, tc.k), func(t *testing.T) {
				a := randS16(r, tc.m*tc.k, -32767, 32767)
				b := randS16(r, tc.n*tc.k, -32767, 32767)
				for i := range a[:tc.k] { // one row of a and of b at the extremes: sure overflow
					a[i], b[i] = 32767, 32767
				}
				want := naive(tc.m, tc.n, tc.k, a, tc.k, b, tc.k)
				c := make([]int32, tc.m*tc.n)
				gemm(tc.m, tc.n, tc.k, a, tc.k, b, tc.k, c, tc.n)
				for i := range want {
					if c[i] != want[i] {
						t.Fatalf("c[%d] = %d, want %d", i, c[i], want[i])
					}
				}
			})
		}
	}
}
