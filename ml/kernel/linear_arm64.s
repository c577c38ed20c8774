#include "textflag.h"
#include "neon_arm64.h"

// func linearNEON(y, x *float32, k int, w *float32, n int, bias *float32, floor float32)
// k > 0, n a positive multiple of 8: blocks of 8 columns, fused multiply-adds (VFMLA).
TEXT ·linearNEON(SB), NOSPLIT, $0-52
	MOVD  y+0(FP), R0
	MOVD  x+8(FP), R1
	MOVD  k+16(FP), R2
	MOVD  w+24(FP), R3
	MOVD  n+32(FP), R4
	MOVD  bias+40(FP), R5
	MOVWU floor+48(FP), R6
	VDUP  R6, V5.S4
	LSL   $2, R4, R7          // row stride of w in bytes

c8:
	CBZ    R4, done
	VLD1.P 32(R5), [V0.S4, V1.S4]
	MOVD   R3, R8
	MOVD   R1, R9
	MOVD   R2, R10

k8:
	VLD1R  (R9), [V4.S4]
	ADD    $4, R9, R9
	VLD1   (R8), [V6.S4, V7.S4]
	ADD    R7, R8, R8
	VFMLA  V4.S4, V6.S4, V0.S4
	VFMLA  V4.S4, V7.S4, V1.S4
	SUBS   $1, R10, R10
	BNE    k8
	FMAXNM4S(0, 0, 5)
	FMAXNM4S(1, 1, 5)
	VST1.P [V0.S4, V1.S4], 32(R0)
	ADD    $32, R3, R3
	SUB    $8, R4, R4
	B      c8

done:
	RET
