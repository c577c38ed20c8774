#include "textflag.h"

// func linearFMA(y, x *float32, k int, w *float32, n int, bias *float32, floor float32)
// k > 0, n a positive multiple of 8: blocks of 32 columns, then of 8.
TEXT ·linearFMA(SB), NOSPLIT, $0-52
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ k+16(FP), CX
	MOVQ w+24(FP), R8
	MOVQ n+32(FP), BX
	MOVQ bias+40(FP), R9
	VBROADCASTSS floor+48(FP), Y5
	MOVQ BX, R11
	SHLQ $2, R11             // row stride of w in bytes
	XORQ R10, R10            // column offset in bytes

c32:
	CMPQ    BX, $32
	JLT     c8
	VMOVUPS (R9)(R10*1), Y0
	VMOVUPS 32(R9)(R10*1), Y1
	VMOVUPS 64(R9)(R10*1), Y2
	VMOVUPS 96(R9)(R10*1), Y3
	LEAQ    (R8)(R10*1), AX
	MOVQ    SI, R12
	MOVQ    CX, R13

k32:
	VBROADCASTSS (R12), Y4
	VFMADD231PS  (AX), Y4, Y0
	VFMADD231PS  32(AX), Y4, Y1
	VFMADD231PS  64(AX), Y4, Y2
	VFMADD231PS  96(AX), Y4, Y3
	ADDQ         $4, R12
	ADDQ         R11, AX
	DECQ         R13
	JNZ          k32
	VMAXPS       Y5, Y0, Y0
	VMAXPS       Y5, Y1, Y1
	VMAXPS       Y5, Y2, Y2
	VMAXPS       Y5, Y3, Y3
	VMOVUPS      Y0, (DI)(R10*1)
	VMOVUPS      Y1, 32(DI)(R10*1)
	VMOVUPS      Y2, 64(DI)(R10*1)
	VMOVUPS      Y3, 96(DI)(R10*1)
	ADDQ         $128, R10
	SUBQ         $32, BX
	JMP          c32

c8:
	CMPQ    BX, $8
	JLT     done
	VMOVUPS (R9)(R10*1), Y0
	LEAQ    (R8)(R10*1), AX
	MOVQ    SI, R12
	MOVQ    CX, R13

k8:
	VBROADCASTSS (R12), Y4
	VFMADD231PS  (AX), Y4, Y0
	ADDQ         $4, R12
	ADDQ         R11, AX
	DECQ         R13
	JNZ          k8
	VMAXPS       Y5, Y0, Y0
	VMOVUPS      Y0, (DI)(R10*1)
	ADDQ         $32, R10
	SUBQ         $8, BX
	JMP          c8

done:
	VZEROUPPER
	RET
