#include "textflag.h"
#include "neon_arm64.h"

// func tanhNEON(dst, x *float32, n4 int, c *[13]float32)
// c: -9, 9, a11, a9, a7, a5, a3, a1, b4, b2, b0, a13, b6. n4 a positive multiple of 4.
// The evaluation of tanhFMA: clamp, Horner in x² with fused multiply-adds (VFMLA adds
// into its destination, so each step copies the next coefficient first), p·x / q.
TEXT ·tanhNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD x+8(FP), R1
	MOVD n4+16(FP), R2
	MOVD c+24(FP), R3
	VLD1R (R3), [V2.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V3.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V4.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V5.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V6.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V7.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V8.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V9.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V10.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V11.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V12.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V13.S4]
	ADD   $4, R3, R3
	VLD1R (R3), [V14.S4]
	ADD   $4, R3, R3

tloop:
	VLD1.P 16(R1), [V0.S4]
	FMAX4S(0, 0, 2)
	FMIN4S(0, 0, 3)
	FMUL4S(1, 0, 0)                  // x²
	VORR   V4.B16, V4.B16, V16.B16   // a11
	VFMLA  V1.S4, V13.S4, V16.S4     // + a13·x²
	VORR   V5.B16, V5.B16, V15.B16   // a9
	VFMLA  V1.S4, V16.S4, V15.S4
	VORR   V6.B16, V6.B16, V16.B16   // a7
	VFMLA  V1.S4, V15.S4, V16.S4
	VORR   V7.B16, V7.B16, V15.B16   // a5
	VFMLA  V1.S4, V16.S4, V15.S4
	VORR   V8.B16, V8.B16, V16.B16   // a3
	VFMLA  V1.S4, V15.S4, V16.S4
	VORR   V9.B16, V9.B16, V15.B16   // a1
	VFMLA  V1.S4, V16.S4, V15.S4
	FMUL4S(15, 15, 0)                // p·x
	VORR   V10.B16, V10.B16, V17.B16 // b4
	VFMLA  V1.S4, V14.S4, V17.S4     // + b6·x²
	VORR   V11.B16, V11.B16, V18.B16 // b2
	VFMLA  V1.S4, V17.S4, V18.S4
	VORR   V12.B16, V12.B16, V17.B16 // b0
	VFMLA  V1.S4, V18.S4, V17.S4
	FDIV4S(15, 15, 17)
	VST1.P [V15.S4], 16(R0)
	SUBS   $4, R2, R2
	BNE    tloop
	RET
