#include "textflag.h"

// func quantizeAVX2(dst *int16, x *float32, n8 int, p *[4]float32)
// p: scale, zp, lo, hi. n8 is a positive multiple of 8.
TEXT ·quantizeAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n8+16(FP), CX
	MOVQ         p+24(FP), R8
	VBROADCASTSS 0(R8), Y1
	VBROADCASTSS 4(R8), Y2
	VBROADCASTSS 8(R8), Y3
	VBROADCASTSS 12(R8), Y4

qloop:
	VMOVUPS      (SI), Y0
	VDIVPS       Y1, Y0, Y0
	VROUNDPS     $0, Y0, Y0
	VADDPS       Y2, Y0, Y0
	VMAXPS       Y3, Y0, Y0
	VMINPS       Y4, Y0, Y0
	VSUBPS       Y2, Y0, Y0
	VCVTPS2DQ    Y0, Y0
	VEXTRACTI128 $1, Y0, X5
	VPACKSSDW    X5, X0, X0
	VMOVDQU      X0, (DI)
	ADDQ         $32, SI
	ADDQ         $16, DI
	SUBQ         $8, CX
	JNZ          qloop
	VZEROUPPER
	RET

// func scaleAVX2(y *float32, acc *int32, scale, bias *float32, n8 int, floor float32)
// bias may be nil. n8 is a positive multiple of 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-44
	MOVQ         y+0(FP), DI
	MOVQ         acc+8(FP), SI
	MOVQ         scale+16(FP), R8
	MOVQ         bias+24(FP), R9
	MOVQ         n8+32(FP), CX
	VBROADCASTSS floor+40(FP), Y3
	TESTQ        R9, R9
	JZ           nobias

sloop:
	VCVTDQ2PS (SI), Y0
	VMULPS    (R8), Y0, Y0
	VADDPS    (R9), Y0, Y0
	VMAXPS    Y3, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $32, R8
	ADDQ      $32, R9
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       sloop
	VZEROUPPER
	RET

nobias:
	VCVTDQ2PS (SI), Y0
	VMULPS    (R8), Y0, Y0
	VMAXPS    Y3, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $32, R8
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       nobias
	VZEROUPPER
	RET
