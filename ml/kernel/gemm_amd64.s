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
