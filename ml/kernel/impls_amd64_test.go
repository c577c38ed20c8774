package kernel

func addAsm(r map[string]func(m, n, kk int, a []int16, lda int, b []int16, ldb int, c []int32, ldc int)) {
	if hasAVX2 {
		r["avx2"] = gemmAVX2
	}
}
