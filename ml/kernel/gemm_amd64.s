#include "textflag.h"

// func gemmRowAVX2(a, b *int16, ldb, k, n4 int, c *int32)
TEXT ·gemmRowAVX2(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ ldb+16(FP), R8
	SHLQ $1, R8              // row stride of b in bytes
	MOVQ k+24(FP), CX
	MOVQ n4+32(FP), DX
	MOVQ c+40(FP), R9
	LEAQ (R8)(R8*2), R10     // 3 rows
	MOVQ R8, R11
	SHLQ $2, R11             // 4 rows

group:
	TESTQ DX, DX
	JZ    done
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	MOVQ  SI, AX
	MOVQ  DI, BX
	MOVQ  CX, R12

inner:
	VMOVDQU  (AX), Y4
	VPMADDWD (BX), Y4, Y5
	VPADDD   Y5, Y0, Y0
	VPMADDWD (BX)(R8*1), Y4, Y6
	VPADDD   Y6, Y1, Y1
	VPMADDWD (BX)(R8*2), Y4, Y7
	VPADDD   Y7, Y2, Y2
	VPMADDWD (BX)(R10*1), Y4, Y8
	VPADDD   Y8, Y3, Y3
	ADDQ     $32, AX
	ADDQ     $32, BX
	SUBQ     $16, R12
	JNZ      inner

	VPHADDD      Y1, Y0, Y0
	VPHADDD      Y3, Y2, Y2
	VPHADDD      Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VMOVDQU      X0, (R9)
	ADDQ         $16, R9
	ADDQ         R11, DI
	DECQ         DX
	JMP          group

done:
	VZEROUPPER
	RET

// func gemm2RowAVX2(a *int16, lda int, b *int16, ldb, k, n4 int, c *int32, ldc int)
// Two rows of a (lda elements apart) against n4 groups of 4 rows of b: 2×4 blocks of c
// (rows ldc elements apart). k is a positive multiple of 16.
TEXT ·gemm2RowAVX2(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R13
	SHLQ $1, R13
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R8
	SHLQ $1, R8
	MOVQ k+32(FP), CX
	MOVQ n4+40(FP), DX
	MOVQ c+48(FP), R9
	MOVQ ldc+56(FP), R14
	SHLQ $2, R14
	LEAQ (R8)(R8*2), R10
	MOVQ R8, R11
	SHLQ $2, R11

group2:
	TESTQ DX, DX
	JZ    done2
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	MOVQ  SI, AX
	MOVQ  DI, BX
	MOVQ  CX, R12

inner2:
	VMOVDQU  (AX), Y12
	VMOVDQU  (AX)(R13*1), Y13
	VMOVDQU  (BX), Y8
	VMOVDQU  (BX)(R8*1), Y9
	VMOVDQU  (BX)(R8*2), Y10
	VMOVDQU  (BX)(R10*1), Y11
	VPMADDWD Y8, Y12, Y14
	VPADDD   Y14, Y0, Y0
	VPMADDWD Y9, Y12, Y15
	VPADDD   Y15, Y1, Y1
	VPMADDWD Y10, Y12, Y14
	VPADDD   Y14, Y2, Y2
	VPMADDWD Y11, Y12, Y15
	VPADDD   Y15, Y3, Y3
	VPMADDWD Y8, Y13, Y14
	VPADDD   Y14, Y4, Y4
	VPMADDWD Y9, Y13, Y15
	VPADDD   Y15, Y5, Y5
	VPMADDWD Y10, Y13, Y14
	VPADDD   Y14, Y6, Y6
	VPMADDWD Y11, Y13, Y15
	VPADDD   Y15, Y7, Y7
	ADDQ     $32, AX
	ADDQ     $32, BX
	SUBQ     $16, R12
	JNZ      inner2

	VPHADDD      Y1, Y0, Y0
	VPHADDD      Y3, Y2, Y2
	VPHADDD      Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VMOVDQU      X0, (R9)
	VPHADDD      Y5, Y4, Y4
	VPHADDD      Y7, Y6, Y6
	VPHADDD      Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD       X5, X4, X4
	VMOVDQU      X4, (R9)(R14*1)
	ADDQ         $16, R9
	ADDQ         R11, DI
	DECQ         DX
	JMP          group2

done2:
	VZEROUPPER
	RET
