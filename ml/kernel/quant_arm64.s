#include "textflag.h"
#include "neon_arm64.h"

// func quantizeNEON(dst *int16, x *float32, n8 int, p *[4]float32)
// p: scale, zp, lo, hi. n8 is a positive multiple of 8. The steps of quantizeAVX2: divide,
// round half to even (FRINTN), add zp, clamp to [lo, hi], subtract zp; the result is an
// integer within int16, so truncating conversion and narrowing are exact.
TEXT ·quantizeNEON(SB), NOSPLIT, $0-32
	MOVD   dst+0(FP), R0
	MOVD   x+8(FP), R1
	MOVD   n8+16(FP), R2
	MOVD   p+24(FP), R3
	VLD1R  (R3), [V2.S4]
	ADD    $4, R3, R4
	VLD1R  (R4), [V3.S4]
	ADD    $8, R3, R4
	VLD1R  (R4), [V4.S4]
	ADD    $12, R3, R4
	VLD1R  (R4), [V5.S4]

qloop:
	VLD1.P 32(R1), [V0.S4, V1.S4]
	FDIV4S(0, 0, 2)
	FDIV4S(1, 1, 2)
	FRINTN4S(0, 0)
	FRINTN4S(1, 1)
	FADD4S(0, 0, 3)
	FADD4S(1, 1, 3)
	FMAX4S(0, 0, 4)
	FMAX4S(1, 1, 4)
	FMIN4S(0, 0, 5)
	FMIN4S(1, 1, 5)
	FSUB4S(0, 0, 3)
	FSUB4S(1, 1, 3)
	FCVTZS4S(0, 0)
	FCVTZS4S(1, 1)
	XTN4H(16, 0)
	XTN2H8(16, 1)
	VST1.P [V16.H8], 16(R0)
	SUBS   $8, R2, R2
	BNE    qloop
	RET
