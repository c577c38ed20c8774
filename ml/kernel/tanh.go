package kernel

// Tanh sets dst[i] = tanh(x[i]) in float32 with the rational approximation that Eigen and
// onnxruntime's MLAS use (odd polynomial of degree 13 over even of degree 6, input clamped
// to ±9): at most 4e-7 from the exact value; the Go loop is about four times faster than math.Tanh
// in float64. On amd64 with AVX2 and FMA eight values go at once (fused multiply-adds,
// so the last bit may differ from the Go loop's), some 50 times faster than math.Tanh; on
// arm64, NEON does four at a time the same way (speed there not measured).
func Tanh(dst, x []float32) {
	const (
		a1  = 4.89352455891786e-03
		a3  = 6.37261928875436e-04
		a5  = 1.48572235717979e-05
		a7  = 5.12229709037114e-08
		a9  = -8.60467152213735e-11
		a11 = 2.00018790482477e-13
		a13 = -2.76076847742355e-16
		b0  = 4.89352518554385e-03
		b2  = 2.26843463243900e-03
		b4  = 1.18534705686654e-04
		b6  = 1.19825839466702e-06
	)
	dst = dst[:len(x)]
	c := [13]float32{-9, 9, a11, a9, a7, a5, a3, a1, b4, b2, b0, a13, b6}
	n8 := tanhVec(dst, x, &c)
	for i := n8; i < len(x); i++ {
		v := x[i]
		v = min(max(v, -9), 9)
		x2 := v * v
		p := float32(a13)
		p = p*x2 + a11
		p = p*x2 + a9
		p = p*x2 + a7
		p = p*x2 + a5
		p = p*x2 + a3
		p = p*x2 + a1
		q := float32(b6)
		q = q*x2 + b4
		q = q*x2 + b2
		q = q*x2 + b0
		dst[i] = p * v / q
	}
}
