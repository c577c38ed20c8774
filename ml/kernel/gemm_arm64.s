#include "textflag.h"
#include "neon_arm64.h"

// func gemmRowNEON(a, b *int16, ldb, k, n4 int, c *int32)
// The k int16 at a against n4 groups of 4 rows of b (ldb elements apart): 4·n4 int32 at c.
// k is a positive multiple of 8.
TEXT ·gemmRowNEON(SB), NOSPLIT, $0-48
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD ldb+16(FP), R2
	LSL  $1, R2               // row stride of b in bytes
	MOVD k+24(FP), R3
	MOVD n4+32(FP), R4
	MOVD c+40(FP), R5
	LSL  $2, R2, R6           // 4 rows

group:
	CBZ  R4, done
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	MOVD R0, R7
	MOVD R1, R8
	ADD  R2, R8, R9
	ADD  R2, R9, R10
	ADD  R2, R10, R11
	MOVD R3, R12

inner:
	VLD1.P 16(R7), [V4.H8]
	VLD1.P 16(R8), [V5.H8]
	VLD1.P 16(R9), [V6.H8]
	VLD1.P 16(R10), [V7.H8]
	VLD1.P 16(R11), [V16.H8]
	SMLAL(0, 4, 5)
	SMLAL2(20, 4, 5)
	SMLAL(1, 4, 6)
	SMLAL2(21, 4, 6)
	SMLAL(2, 4, 7)
	SMLAL2(22, 4, 7)
	SMLAL(3, 4, 16)
	SMLAL2(23, 4, 16)
	SUBS   $8, R12, R12
	BNE    inner

	VADD  V20.S4, V0.S4, V0.S4
	VADD  V21.S4, V1.S4, V1.S4
	VADD  V22.S4, V2.S4, V2.S4
	VADD  V23.S4, V3.S4, V3.S4
	VADDP V1.S4, V0.S4, V0.S4 // [row0 pairs, row1 pairs]
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4 // [Σrow0, Σrow1, Σrow2, Σrow3]
	VST1.P [V0.S4], 16(R5)
	ADD   R6, R1, R1
	SUB   $1, R4, R4
	B     group

done:
	RET

// func gemm2RowNEON(a *int16, lda int, b *int16, ldb, k, n4 int, c *int32, ldc int)
// Two rows of a (lda elements apart) against n4 groups of 4 rows of b: 2×4 blocks of c
// (rows ldc elements apart). k is a positive multiple of 8.
TEXT ·gemm2RowNEON(SB), NOSPLIT, $0-64
	MOVD a+0(FP), R0
	MOVD lda+8(FP), R13
	LSL  $1, R13
	MOVD b+16(FP), R1
	MOVD ldb+24(FP), R2
	LSL  $1, R2
	MOVD k+32(FP), R3
	MOVD n4+40(FP), R4
	MOVD c+48(FP), R5
	MOVD ldc+56(FP), R14
	LSL  $2, R14
	LSL  $2, R2, R6

group2:
	CBZ  R4, done2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	MOVD R0, R7
	ADD  R13, R0, R15
	MOVD R1, R8
	ADD  R2, R8, R9
	ADD  R2, R9, R10
	ADD  R2, R10, R11
	MOVD R3, R12

inner2:
	VLD1.P 16(R7), [V4.H8]
	VLD1.P 16(R15), [V17.H8]
	VLD1.P 16(R8), [V5.H8]
	VLD1.P 16(R9), [V6.H8]
	VLD1.P 16(R10), [V7.H8]
	VLD1.P 16(R11), [V16.H8]
	SMLAL(0, 4, 5)
	SMLAL(1, 4, 6)
	SMLAL(2, 4, 7)
	SMLAL(3, 4, 16)
	SMLAL(20, 17, 5)
	SMLAL(21, 17, 6)
	SMLAL(22, 17, 7)
	SMLAL(23, 17, 16)
	SMLAL2(0, 4, 5)
	SMLAL2(1, 4, 6)
	SMLAL2(2, 4, 7)
	SMLAL2(3, 4, 16)
	SMLAL2(20, 17, 5)
	SMLAL2(21, 17, 6)
	SMLAL2(22, 17, 7)
	SMLAL2(23, 17, 16)
	SUBS   $8, R12, R12
	BNE    inner2

	VADDP V1.S4, V0.S4, V0.S4
	VADDP V3.S4, V2.S4, V2.S4
	VADDP V2.S4, V0.S4, V0.S4
	VADDP V21.S4, V20.S4, V20.S4
	VADDP V23.S4, V22.S4, V22.S4
	VADDP V22.S4, V20.S4, V20.S4
	VST1   [V0.S4], (R5)
	ADD    R14, R5, R16
	VST1   [V20.S4], (R16)
	ADD    $16, R5, R5
	ADD    R6, R1, R1
	SUB    $1, R4, R4
	B      group2

done2:
	RET
