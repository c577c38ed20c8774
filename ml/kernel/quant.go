package kernel

// Quantize1 is QuantizeLinear for one value, minus the zero point:
// saturate(round_half_even(x / scale) + zp, lo, hi) − zp. Rounding adds and subtracts
// 1.5·2²³ in float32, which rounds half to even for the |t| < 2²² it is given (larger
// values saturate anyway).
func Quantize1(x, scale, zp, lo, hi float32) float32 {
	const magic = 12582912 // 1.5·2²³
	t := min(max(x/scale, -1<<21), 1<<21)
	r := float32(t + magic) // explicit conversions: each step rounds to float32
	q := float32(r-magic) + zp
	return min(max(q, lo), hi) - zp
}

// QuantizeS16 sets dst[i] = Quantize1(x[i], scale, zp, lo, hi) for the len(x) values,
// as int16 (the operand form of GemmS16). lo and hi must lie within ±32767 of zp.
func QuantizeS16(dst []int16, x []float32, scale, zp, lo, hi float32) {
	dst = dst[:len(x)]
	n8 := quantizeVec(dst, x, scale, zp, lo, hi)
	for i := n8; i < len(x); i++ {
		dst[i] = int16(Quantize1(x[i], scale, zp, lo, hi))
	}
}

// ScaleRow sets y[j] = max(float32(acc[j])·scale[j] + bias[j], floor) for j < len(y): the
// dequantization of a GemmS16 row. bias may be nil (zero); floor 0 applies a ReLU, and
// −Inf none.
func ScaleRow(y []float32, acc []int32, scale, bias []float32, floor float32) {
	n := len(y)
	acc, scale = acc[:n], scale[:n]
	if bias != nil {
		bias = bias[:n]
	}
	n8 := scaleVec(y, acc, scale, bias, floor)
	for j := n8; j < n; j++ {
		// The explicit conversion rounds the product before the add: without it the
		// compiler fuses them on arm64 (FMADDS), and the results would differ from amd64's.
		v := float32(float32(acc[j]) * scale[j])
		if bias != nil {
			v += bias[j]
		}
		y[j] = max(v, floor)
	}
}
