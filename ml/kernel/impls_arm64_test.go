package kernel

import "testing"

func addAsm(r map[string]func(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int)) {
	if hasNEON {
		r["neon"] = gemmNEON
	}
}

func TestImplIsNEON(t *testing.T) {
	if got := Impl(); got != "neon" {
		t.Fatalf("Impl() = %q on arm64, want %q", got, "neon")
	}
}
