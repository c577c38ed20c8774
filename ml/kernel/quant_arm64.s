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

// func scaleNEON(y *float32, acc *int32, scale, bias *float32, n4 int, floor float32)
// bias may be nil. n4 is a positive multiple of 4. Multiply and add are separate
// instructions (rounded twice, as ScaleRow's Go loop and scaleAVX2 are), and a NaN lane
// gives the floor (FMAXNM), as VMAXPS does.
TEXT ·scaleNEON(SB), NOSPLIT, $0-44
	MOVD  y+0(FP), R0
	MOVD  acc+8(FP), R1
	MOVD  scale+16(FP), R2
	MOVD  bias+24(FP), R3
	MOVD  n4+32(FP), R4
	MOVWU floor+40(FP), R5
	VDUP  R5, V3.S4
	CBZ   R3, nobias

sloop:
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VLD1.P 16(R3), [V2.S4]
	SCVTF4S(0, 0)
	FMUL4S(0, 0, 1)
	FADD4S(0, 0, 2)
	FMAXNM4S(0, 0, 3)
	VST1.P [V0.S4], 16(R0)
	SUBS   $4, R4, R4
	BNE    sloop
	RET

nobias:
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	SCVTF4S(0, 0)
	FMUL4S(0, 0, 1)
	FMAXNM4S(0, 0, 3)
	VST1.P [V0.S4], 16(R0)
	SUBS   $4, R4, R4
	BNE    nobias
	RET
