package kernel

import (
	"fmt"
	"unsafe"
)

// GemmS16 sets c[i*ldc+j] = Σₖ a[i*lda+k]·b[j*ldb+k] for i < m, j < n, k < kk. kk must be
// a multiple of 16 (pad both operands with zeros); no operand value may be −32768. It
// panics when the slices are too short for the sizes given, like an index out of range.
func GemmS16(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if kk%16 != 0 || kk < 0 || lda < kk || ldb < kk || ldc < n ||
		len(a) < (m-1)*lda+kk || len(b) < (n-1)*ldb+kk || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("kernel: GemmS16(m=%d n=%d k=%d lda=%d ldb=%d ldc=%d) with len a=%d b=%d c=%d",
			m, n, kk, lda, ldb, ldc, len(a), len(b), len(c)))
	}
	if kk == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	gemm(m, n, kk, a, lda, b, ldb, c, ldc)
}

// gemmGo is the portable implementation.
func gemmGo(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	for i := range m {
		ar := a[i*lda : i*lda+kk]
		cr := c[i*ldc : i*ldc+n]
		for j := range cr {
			br := b[j*ldb : j*ldb+kk]
			var s0, s1, s2, s3 int32
			for k := 0; k < len(ar); k += 4 {
				s0 += int32(ar[k]) * int32(br[k])
				s1 += int32(ar[k+1]) * int32(br[k+1])
				s2 += int32(ar[k+2]) * int32(br[k+2])
				s3 += int32(ar[k+3]) * int32(br[k+3])
			}
			cr[j] = s0 + s1 + s2 + s3
		}
	}
}

// gemmBlocked is the blocking the assembly kernels share: row2 computes 2 × 4 blocks of c
// for pairs of rows of a (the four rows of b loaded once for both), row 1 × 4 blocks for an
// odd last row, both over the first n/4·4 columns; gemmGo does the last n mod 4 columns.
func gemmBlocked(row2 func(a *int16, lda int, b *int16, ldb, k, n4 int, c *int32, ldc int),
	row func(a, b *int16, ldb, k, n4 int, c *int32),
	m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int) {
	n4 := n / 4
	i := 0
	if n4 > 0 {
		for ; i+1 < m; i += 2 {
			row2(unsafe.SliceData(a[i*lda:]), lda, unsafe.SliceData(b), ldb, kk, n4, unsafe.SliceData(c[i*ldc:]), ldc)
			if n4*4 < n {
				gemmGo(2, n-n4*4, kk, a[i*lda:], lda, b[n4*4*ldb:], ldb, c[i*ldc+n4*4:], ldc)
			}
		}
	}
	for ; i < m; i++ {
		if n4 > 0 {
			row(unsafe.SliceData(a[i*lda:]), unsafe.SliceData(b), ldb, kk, n4, unsafe.SliceData(c[i*ldc:]))
		}
		if n4*4 < n {
			gemmGo(1, n-n4*4, kk, a[i*lda:], lda, b[n4*4*ldb:], ldb, c[i*ldc+n4*4:], ldc)
		}
	}
}
